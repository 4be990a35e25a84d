"""``--players shots``: one video player per shot, end to end with the demo model."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from vqa_shap.schema.records import Question, VisualInput
from vqa_shap.long_video.shots import parse_shot_name, shot_name, shot_players
from vqa_shap.synthetic_inputs import shot_frames, write_video

#: 4 shots; 8 frames sampled by linspace from 18 -> indices 0,2,4,7,9,12,14,17 -> 2 frames per shot.
LENGTHS = [4, 4, 5, 5]
FPS = 2.0


def _question(tmp_path, qid="shots-1"):
    frames, cuts = shot_frames(LENGTHS, size=(64, 64), seed=7)
    write_video(tmp_path / "videos" / "long.mp4", frames, FPS)
    q = Question(qid, "synthetic", "colour", "Which colour?", ("red", "blue"), 1,
                 inputs=(VisualInput("video", "long.mp4"),))
    return q, cuts


def test_shot_names_round_trip():
    assert shot_name(3, 1.5, 4.0) == "shot_3@1.5-4s"
    assert parse_shot_name("shot_3@1.5-4s") == (3, 1.5, 4.0)
    assert parse_shot_name("frame_3") is None and parse_shot_name("shot") is None


def test_shot_players_group_the_plan_by_shot(tmp_path):
    from vqa_shap.protocol import get_protocol

    q, cuts = _question(tmp_path)
    proto = get_protocol()
    plan = proto.plan_frames(q, tmp_path / "videos", 8, sampler="linspace")
    assert [f.index for f in plan.frames] == [0, 2, 4, 7, 9, 12, 14, 17]
    features, groups = shot_players(q, plan, proto.frame_groups(plan), tmp_path / "videos", detector="diff",
                                    cache_dir=tmp_path / "cache")
    assert groups == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [f.name for f in features] == ["shot_0@0-2s", "shot_1@2-4s", "shot_2@4-6.5s", "shot_3@6.5-9s"]
    assert [f.time for f in features] == [0.0, 2.0, 4.0, 6.5] and {f.modality for f in features} == {"video"}
    # with 2 frames per video feature (temporal_unit 2) a feature joins the shot of its first frame
    features, groups = shot_players(q, plan, proto.frame_groups(plan, 3), tmp_path / "videos", detector="diff")
    assert groups == [[0], [1], [2]] and [parse_shot_name(f.name)[0] for f in features] == [0, 1, 2]


def _brute_force_shapley(values, n):
    """Exact Shapley values by the definition; ``values[bits]``: value of the coalition whose
    player ``j`` is present iff bit ``j`` of ``bits`` is set."""
    out = []
    for i in range(n):
        phi = 0.0
        others = [j for j in range(n) if j != i]
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                bits = sum(1 << j for j in subset)
                phi = phi + w * (values[bits | (1 << i)] - values[bits])
        out.append(phi)
    return np.stack(out)


@pytest.mark.slow
def test_explain_players_shots_end_to_end_with_the_demo_model(tmp_path):
    import datasets
    import torch

    from vqa_shap.cli import main
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    torch.set_num_threads(1)
    q, cuts = _question(tmp_path)
    write_questions(tmp_path / "questions", "long", [q])
    out = tmp_path / "out"
    argv = ["explain", str(tmp_path / "questions"), "--config", "long", "--model", DEMO_MODEL,
            "--video-root", str(tmp_path / "videos"), "--out", str(out), "--frames", "8", "--sampler", "linspace",
            "--estimator", "exact", "--budget", "512", "--players", "shots", "--shot-detector", "diff",
            "--no-progress", "--device", "cpu", "--dtype", "float32"]
    assert main(argv) == 0
    (row,) = datasets.load_dataset(str(out), name="demo__long", split="test", download_mode="force_redownload")
    assert row["error"] is None, row["error"]
    names = [f["name"] for f in row["features"]]
    assert names[:4] == ["shot_0@0-2s", "shot_1@2-4s", "shot_2@4-6.5s", "shot_3@6.5-9s"]
    assert names[4:] == [f.name for f in get_protocol().text_features(q)]
    phi = np.asarray(row["shapley"])
    full, empty = np.asarray(row["value_full"]), np.asarray(row["value_empty"])
    np.testing.assert_allclose(phi.sum(0), full - empty, atol=1e-4)  # efficiency over 9 players
    assert list((out / ".work" / "demo__long" / "shots").iterdir())  # the cuts were cached
    # the metrics read shot players as video players
    assert main(["metrics", str(out), "--bootstrap", "10", "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    (gt,) = [m for m in metrics if m["signal"] == "Ground Truth"]
    column = np.abs(phi[:, q.answer])
    assert gt["mc_v"] == pytest.approx(column[:4].sum() / column.sum(), rel=1e-4)  # the 4 shots are the video part

    # the same game built by hand: frame features, shot groups from the known cuts, Shapley by definition
    cls, checkpoint = resolve_model(DEMO_MODEL)
    loader = cls.load(checkpoint, device="cpu", dtype="float32")
    proto = get_protocol()
    plan = proto.plan_frames(q, tmp_path / "videos", 8, sampler="linspace", loader_family=loader.family)
    prepared = loader.prepare(q, proto.load_frames(q, tmp_path / "videos", plan), plan, proto)
    shot = np.searchsorted(cuts, [f.index for f in plan.frames], side="right")
    n_words = prepared.n_features - 8

    n = 4 + n_words
    players = (np.arange(2**n)[:, None] >> np.arange(n)) & 1 == 1  # row = bits
    masks = np.concatenate([players[:, :4][:, shot], players[:, 4:]], axis=1)
    expected = _brute_force_shapley(loader.score(prepared, masks), n)
    np.testing.assert_allclose(phi, expected, atol=2e-4)
    assert np.abs(phi[:4]).max() > 1e-3  # the shots matter to the model


def test_features_command_lists_shot_players_and_refuses_aks(tmp_path, capsys):
    from vqa_shap.cli import main
    from vqa_shap.hub.folder import write_questions

    q, _ = _question(tmp_path)
    write_questions(tmp_path / "questions", "long", [q])
    base = ["features", str(tmp_path / "questions"), "--config", "long", "--video-root", str(tmp_path / "videos"),
            "--frames", "8", "--sampler", "linspace", "--json", str(tmp_path / "f.json")]
    assert main(base + ["--players", "shots", "--shot-detector", "diff"]) == 0
    (entry,) = json.loads((tmp_path / "f.json").read_text())["questions"]
    names = [f["name"] for f in entry["features"]]
    assert names[:5] == ["shot_0@0-2s", "shot_1@2-4s", "shot_2@4-6.5s", "shot_3@6.5-9s", "Which"]
    assert main(base) == 0  # the default stays one player per frame
    (entry,) = json.loads((tmp_path / "f.json").read_text())["questions"]
    assert [f["name"] for f in entry["features"]][:8] == [f"frame_{i}" for i in range(8)]
    capsys.readouterr()
    assert main(base[:-4] + ["--sampler", "aks", "--json", str(tmp_path / "g.json")]) == 2
    assert "--sampler aks scores frames with a model" in capsys.readouterr().err
