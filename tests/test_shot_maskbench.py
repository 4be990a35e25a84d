"""``mask-bench`` and ``rank`` on ``explain --players shots`` attributions, with the demo model.

Two synthetic videos with known cuts (tests/test_shot_players.py's 4-shot video, and a 3-shot one
whose shots hold 3, 1 and 4 of the 8 sampled frames) are explained with shot players and the exact
estimator; the masks mask-bench sends to the model are checked against frame masks computed here
from the known cuts, and the images rank shows Gemini against the decoded frames.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_ranking import FakeClient
from test_shot_players import FPS, _question

from vqa_shap.schema.records import Question, VisualInput
from vqa_shap.synthetic_inputs import shot_frames, write_video

#: 18 frames; linspace keeps 0,2,4 | 7 | 9,12,14,17: shots of 3, 1 and 4 sampled frames.
LENGTHS_2 = [6, 3, 9]
CONFIG = "demo__long"
N_FRAMES = 8


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    import torch

    from vqa_shap.cli import main
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.hub.folder import write_questions

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("shot_maskbench")
    q1, cuts1 = _question(root)
    frames2, cuts2 = shot_frames(LENGTHS_2, size=(64, 64), seed=11)
    write_video(root / "videos" / "long2.mp4", frames2, FPS)
    q2 = Question("shots-2", "synthetic", "shape", "Which shape?", ("circle", "square"), 0,
                  inputs=(VisualInput("video", "long2.mp4"),))
    write_questions(root / "questions", "long", [q1, q2])
    argv = ["explain", str(root / "questions"), "--config", "long", "--model", DEMO_MODEL,
            "--video-root", str(root / "videos"), "--out", str(root / "out"), "--frames", str(N_FRAMES),
            "--sampler", "linspace", "--estimator", "exact", "--budget", "512", "--players", "shots",
            "--shot-detector", "diff", "--no-progress", "--device", "cpu", "--dtype", "float32"]
    assert main(argv) == 0
    yield {"root": root, "questions": {q1.qid: q1, q2.qid: q2}, "cuts": {q1.qid: cuts1, q2.qid: cuts2},
           "attributions": root / "out", "videos": root / "videos"}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def demo_loader():
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.loaders import resolve_model

    cls, checkpoint = resolve_model(DEMO_MODEL)
    return cls.load(checkpoint, device="cpu", dtype="float32")


def _attributions(ws):
    from vqa_shap.hub.folder import load_attributions

    attrs = {a.qid: a for a in load_attributions(ws["attributions"], CONFIG)}
    assert all(a.error is None for a in attrs.values())
    return attrs


def _plan_and_shots(ws, qid, loader):
    """The plan explain used and each sampled frame's shot, from the known cuts (not the detector)."""
    from vqa_shap.protocol import get_protocol

    q = ws["questions"][qid]
    plan = get_protocol().plan_frames(q, ws["videos"], N_FRAMES, sampler="linspace", loader_family=loader.family)
    return plan, np.searchsorted(ws["cuts"][qid], [f.index for f in plan.frames], side="right")


def _video_signal(phi: np.ndarray, answer: int, signal: str) -> np.ndarray:
    """ψ = φ / max|φ| per option column (over every player), reduced to one signal."""
    psi = phi / np.abs(phi).max(axis=0, keepdims=True)
    others = [k for k in range(phi.shape[1]) if k != answer]
    return {"ground_truth": psi[:, answer], "false": psi[:, others].mean(axis=1), "all": psi.mean(axis=1)}[signal]


class RecordingLoader:
    """The demo loader, recording every mask batch it scores and the scores."""

    def __init__(self, loader):
        self.loader, self.family, self.temporal_unit = loader, loader.family, loader.temporal_unit
        self.calls = []

    def prepare(self, *args):
        return self.loader.prepare(*args)

    def score(self, prepared, masks):
        out = np.asarray(self.loader.score(prepared, masks))
        self.calls.append((np.asarray(masks).copy(), out))
        return out


@pytest.mark.slow
@pytest.mark.parametrize("qid", ["shots-1", "shots-2"])
def test_a_masked_shot_masks_exactly_its_sampled_frames(explained, demo_loader, qid):
    from vqa_shap.analysis.masking.experiment import MaskBenchOptions, evaluate_question
    from vqa_shap.analysis.masking.masks import keep_matrix, mask_settings
    from vqa_shap.analysis.masking.summary import summarize
    from vqa_shap.protocol import get_protocol

    ws, proto = explained, get_protocol()
    attr, q = _attributions(ws)[qid], ws["questions"][qid]
    plan, shot = _plan_and_shots(ws, qid, demo_loader)
    n_shots = int(shot.max()) + 1
    assert [f.name.startswith("shot_") for f in attr.features[:n_shots + 1]] == [True] * n_shots + [False]
    recording = RecordingLoader(demo_loader)
    rows = evaluate_question(attr, q, recording, proto, ws["videos"], N_FRAMES,
                             MaskBenchOptions(sampler="linspace", shot_detector="diff"))
    ((masks, scores),) = recording.calls  # every setting in one batch
    assert masks.shape == (29, N_FRAMES + attr.n_features - n_shots)
    # the same input, prepared here: a direct loader.score of frame masks built from the known cuts
    prepared = demo_loader.prepare(q, proto.load_frames(q, ws["videos"], plan), plan, proto)
    phi = np.asarray(attr.shapley, dtype=np.float64)
    partial = 0
    for row, mask, score in zip(rows, masks, scores):
        if row.mode != "video":
            continue
        if row.setting == "everything":
            keep_shot = np.zeros(n_shots, dtype=bool)
        else:
            metric = _video_signal(phi, q.answer, row.signal)[:n_shots]
            keep_shot = metric > 0 if row.setting == "negative" else metric < 0
        expected = np.concatenate([keep_shot[shot], np.ones(attr.n_features - n_shots, dtype=bool)])
        assert (mask == expected).all(), row.key
        assert row.n_masked == int((~keep_shot).sum()) and row.n_features == attr.n_features
        direct = np.asarray(demo_loader.score(prepared, expected[None]))[0]
        np.testing.assert_allclose(score, direct, atol=1e-5)
        assert row.prediction == int(np.argmax(direct)) and row.correct == (row.prediction == q.answer)
        partial += 0 < row.n_masked < n_shots
    assert partial, "no video setting masked some shots but not all: the check above proved little"
    # every setting: a shot's frames are kept or masked together, as the player-level coalition says
    keep = keep_matrix(mask_settings(), attr.features, phi, q.answer)
    assert (masks[:, :N_FRAMES] == keep[:, :n_shots][:, shot]).all()
    assert (masks[:, N_FRAMES:] == keep[:, n_shots:]).all()
    assert rows[0].key == "nothing" and rows[0].prediction == attr.prediction
    np.testing.assert_allclose(scores[0], attr.value_full, atol=1e-4)  # explain's v(all) again
    by, row_of = {s.key: s for s in summarize(rows)}, {r.key: r for r in rows}
    assert len(by) == 29 and all(by[r.key].accuracy == float(r.correct) for r in rows)
    assert by["everything/video"].diff == float(row_of["everything/video"].correct) - float(row_of["nothing"].correct)


@pytest.mark.slow
def test_rank_shot_players_shapley_uniform_and_gemini(explained, demo_loader, tmp_path, monkeypatch):
    import sys

    from PIL import Image
    from scipy import stats

    from vqa_shap.analysis.rankers import GeminiRanker, ShapleyRanker, UniformRanker
    from vqa_shap.analysis.ranking import rank_questions
    from vqa_shap.analysis.question_report import frame_images
    from vqa_shap.protocol import get_protocol

    monkeypatch.setitem(sys.modules, "google", None)  # the plain-dict request config, as CI
    monkeypatch.setitem(sys.modules, "google.genai", None)
    ws = explained
    attrs = list(_attributions(ws).values())
    results = rank_questions(attrs, ShapleyRanker(), UniformRanker(), progress=False)
    for r, attr in zip(results, attrs):
        n_shots = len(ws["cuts"][attr.qid]) + 1
        assert r.error is None and r.n == n_shots and len(r.ranking) == len(r.reference_ranking) == n_shots
        values = np.abs(np.asarray(attr.shapley)[:n_shots, attr.answer])
        assert r.reference_ranking == tuple(range(n_shots))
        assert r.ranking == tuple(np.argsort(-values, kind="stable"))
        ranks = np.empty(n_shots)
        ranks[np.argsort(-values, kind="stable")] = np.arange(n_shots)
        assert r.spearman == pytest.approx(stats.spearmanr(ranks, np.arange(n_shots)).statistic)
    # Gemini sees one image per shot: the middle of the shot's sampled frames
    client = FakeClient(["frame_3, frame_1", "frame_2"])
    gemini = GeminiRanker(client=client, cache_dir=tmp_path / "cache")
    results = rank_questions(attrs, gemini, ShapleyRanker(), questions=ws["questions"], video_root=ws["videos"],
                             n_frames=N_FRAMES, sampler="linspace", shot_detector="diff", progress=False)
    assert [r.error for r in results] == [None, None]
    assert [r.ranking for r in results] == [(3, 1, 0, 2), (2, 0, 1)]
    proto = get_protocol()
    middles = {"shots-1": [0, 2, 4, 6], "shots-2": [1, 3, 5]}  # positions in the plan (groups 2,2,2,2 / 3,1,4)
    for attr, request in zip(attrs, client.models.requests):
        q = ws["questions"][attr.qid]
        plan, _ = _plan_and_shots(ws, attr.qid, demo_loader)
        decoded = [f for per_input in proto.load_frames(q, ws["videos"], plan) for f in per_input]
        sent = [np.asarray(c) for c in request["contents"] if isinstance(c, Image.Image)]
        assert len(sent) == len(middles[attr.qid]) == len(ws["cuts"][attr.qid]) + 1
        assert all((a == decoded[p]).all() for a, p in zip(sent, middles[attr.qid]))
        assert f"Respond with exactly {len(sent)} frame ids" in request["config"]["system_instruction"]
        # the report's and the viewer's thumbnails are the same images
        images, note = frame_images(attr, q, None, ws["videos"], n_frames=N_FRAMES, sampler="linspace",
                                    shot_detector="diff")
        assert note is None and all((a == b).all() for a, b in zip(images, sent)) and len(images) == len(sent)


def _mask_bench(ws, out, *extra):
    from vqa_shap.cli import main

    return main(["mask-bench", str(ws["attributions"]), "--config", CONFIG, "--questions", str(ws["root"] / "questions"),
                 "--video-root", str(ws["videos"]), "--out", str(out), "--no-progress", "--device", "cpu",
                 "--dtype", "float32", "--threads", "1", *extra])


@pytest.mark.slow
def test_mask_bench_and_rank_commands_on_shot_attributions(explained, tmp_path, capsys):
    from vqa_shap.cli import main

    ws = explained
    attrs = _attributions(ws)
    # the shot detector and the frames are read from the attributions card
    assert _mask_bench(ws, tmp_path / "mb", "--json", str(tmp_path / "mb.json")) == 0
    printed = capsys.readouterr().out
    assert "2 questions, 0 failed" in printed and "Δ accuracy (pt)" in printed
    report = json.loads((tmp_path / "mb.json").read_text())
    assert report["n_failed"] == 0 and report["errors"] == [] and report["n_frames"] == N_FRAMES
    nothing, everything = report["settings"][0], report["settings"][1]
    assert nothing["accuracy"] == np.mean([a.prediction == a.answer for a in attrs.values()])
    assert everything["mode"] == "joint" and everything["accuracy"] == np.mean(
        [int(np.argmax(a.value_empty)) == a.answer for a in attrs.values()])
    assert all(s["accuracy"] is not None and s["n_questions"] == 2 for s in report["settings"])

    assert main(["rank", str(ws["attributions"]), "--config", CONFIG, "--ranker", "uniform",
                 "--json", str(tmp_path / "rank.json"), "--no-progress"]) == 0
    ranked = json.loads((tmp_path / "rank.json").read_text())
    assert ranked["summary"]["n_errors"] == 0 and ranked["summary"]["spearman"]["n"] == 2
    for row in ranked["questions"]:
        n_shots = len(ws["cuts"][row["qid"]]) + 1
        assert row["n"] == n_shots and row["ranking"] == list(range(n_shots)) and row["spearman"] is not None

    # aks frames cannot be re-planned: a one-line error, exit 2
    capsys.readouterr()
    assert _mask_bench(ws, tmp_path / "aks", "--sampler", "aks") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"config {CONFIG!r}: mask-bench cannot re-plan --sampler aks frames "
                                                 "(AKS picks them with its relevance scorer)")


@pytest.mark.slow
def test_a_changed_video_names_the_question_and_the_first_differing_shot(explained, tmp_path, caplog):
    ws = dict(explained)
    ws["videos"] = tmp_path / "videos"
    shutil.copytree(explained["videos"], ws["videos"])
    frames, _ = shot_frames([3, 5, 5, 5], size=(64, 64), seed=7)  # the first cut moves from 2 s to 1.5 s
    write_video(ws["videos"] / "long.mp4", frames, FPS)
    assert _mask_bench(ws, tmp_path / "mb", "--json", str(tmp_path / "mb.json")) == 0  # the other question runs
    report = json.loads((tmp_path / "mb.json").read_text())
    assert report["n_failed"] == 1 and report["settings"][0]["n_questions"] == 1
    (error,) = report["errors"]
    assert error.startswith("shots-1: question 'shots-1': feature 0 differs: protocol 'shot_0@0-1.5s'")
    assert "vs attribution 'shot_0@0-2s'" in error and "the video changed" in error
    (logged,) = [r.getMessage() for r in caplog.records if "feature 0 differs" in r.getMessage()]  # said once
    assert logged == f"mask-bench: {error}"


def test_the_shot_detector_comes_from_the_card_and_falls_back_loudly(caplog):
    from vqa_shap.analysis.masking.masks import MaskBenchError
    from vqa_shap.analysis.masking.players import frame_count, shot_detector_of
    from vqa_shap.schema.records import Attribution, Feature
    from vqa_shap.long_video.shot_detector import ShotError
    from vqa_shap.long_video.shots import default_detector

    def attribution(*names):
        features = tuple(Feature(n, "video", input=0, time=0.0) for n in names) + (Feature("Which", "question"),)
        return Attribution(qid="q", benchmark="b", task="t", variant="", model="m", loader="llava_onevision",
                           protocol="pollard2025", features=features, shapley=np.zeros((len(features), 2)), answer=0)

    shots, frames = [attribution("shot_0@0-2s", "shot_1@2-4s")], [attribution("frame_0", "frame_1")]
    assert shot_detector_of(frames, {"shot_detector": "diff"}) is None  # frame players need none
    assert shot_detector_of(shots, {"players": "shots", "shot_detector": "diff"}) == "diff"
    assert shot_detector_of(shots, {"shot_detector": "diff"}, override="adaptive") == "adaptive"
    assert not caplog.records
    assert shot_detector_of(shots, {}) == default_detector()
    (record,) = caplog.records
    assert "records no shot detector" in record.getMessage() and "--shot-detector" in record.getMessage()
    with pytest.raises(ShotError, match="unknown shot detector 'nope'; valid shot detectors: diff, content"):
        shot_detector_of(shots, {"shot_detector": "nope"})
    # the shot count does not tell the frame count: ask for it
    assert frame_count(frames) == 2
    with pytest.raises(MaskBenchError, match="question 'q' has shot players.*pass --frames"):
        frame_count(shots)
