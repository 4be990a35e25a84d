"""Plots and per-question report images: files exist with sane sizes, frames decoded or placeholders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vqa_shap.schema.records import Attribution, Question, VisualInput

CONFIG = "tiny-random-llava_onevision__mini"
QUESTIONS_CONFIG = "mini"
N_FRAMES = 4


def _questions() -> list[Question]:
    return [
        Question(qid="ego_1", benchmark="egoschema", task="summary",
                 question="What is the main activity of c in the video",
                 options=("C washes the dishes", "C cooks pasta", "C reads a book"), answer=1,
                 inputs=(VisualInput("video", "ego_1.mp4"),)),
        Question(qid="mv_2", benchmark="mvbench", task="action_count",
                 question="How many times did the person jump?", options=("One", "Two", "Three", "Four"),
                 answer=3, inputs=(VisualInput("video", "mv_2.mp4"),)),
        Question(qid="broken", benchmark="mvbench", task="action_count", question="Where?",
                 options=("Here", "There"), answer=0, inputs=(VisualInput("video", "missing.mp4"),)),
    ]


def write_attributions(root: Path, *, with_videos: bool = True, seed: int = 0) -> dict:
    """A Hub-style questions folder, synthesised videos and an attributions folder whose players are
    exactly the protocol's for those videos (values random: the report does not need a model)."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.protocol import get_protocol
    from vqa_shap.schema.arrow import attribution_features
    from vqa_shap.synthetic_inputs import synthesize_inputs

    proto = get_protocol("pollard2025")
    questions = _questions()
    hub.write_questions(root / "questions", QUESTIONS_CONFIG, questions)
    videos = root / "videos"
    synthesize_inputs(questions[:2], videos, n_frames=12, size=(48, 64), seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for q in questions:
        common = dict(qid=q.qid, benchmark=q.benchmark, task=q.task, variant=q.variant,
                      model="tiny-random/llava_onevision", loader="llava_onevision", protocol="pollard2025",
                      answer=q.answer, estimator="permutation", budget=64, seed=0)
        if q.qid == "broken":
            rows.append(Attribution(features=(), shapley=[], error="missing.mp4: file not found", **common).to_row())
            continue
        plan = proto.plan_frames(q, videos, N_FRAMES, loader_family="llava_onevision")
        feats = proto.features(q, plan)
        phi = rng.normal(size=(len(feats), q.n_options))
        full = rng.normal(size=q.n_options)
        rows.append(Attribution(features=feats, shapley=phi, value_full=full, value_empty=full - phi.sum(0),
                                prediction=int(np.argmax(full)), **common).to_row())
    hub.write_config(root / "attributions", CONFIG, rows, features=attribution_features(), kind="attributions",
                     card_vars={"model": "tiny-random/llava_onevision", "questions_config": QUESTIONS_CONFIG,
                                "n_frames": N_FRAMES, "sampler": None})
    return {"questions": root / "questions", "videos": videos if with_videos else None,
            "attributions": root / "attributions", "rows": rows}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return write_attributions(tmp_path_factory.mktemp("report"))


def _png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_report_cli_writes_every_figure_with_decoded_frames(folders, tmp_path, capsys):
    from vqa_shap.cli import main

    out = tmp_path / "report"
    code = main(["report", str(folders["attributions"]), "--questions", str(folders["questions"]),
                 "--video-root", str(folders["videos"]), "--out", str(out), "--bootstrap", "50", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 attribution bar plots, 2 question reports, 1 error rows skipped" in printed
    assert "placeholder" not in printed  # every frame was decoded
    for name in ("modality_shares.png", "modality_violins.png"):
        w, h = _png_size(out / name)
        assert w >= 350 and h >= 300
    for qid in ("ego_1", "mv_2"):
        w, h = _png_size(out / CONFIG / "questions" / f"{qid}.png")
        assert w == 1400 and 400 <= h <= 2000
        w, h = _png_size(out / CONFIG / "bars" / f"{qid}.png")
        assert w >= 600 and h >= 300
    assert not (out / CONFIG / "questions" / "broken.png").exists()
    index = (out / "index.md").read_text()
    assert "questions/ego_1.png" in index and "broken" in index


def test_question_report_shows_the_frames(folders, tmp_path):
    """The frame tiles of the report are the decoded frames (not placeholders)."""
    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.analysis.question_report import frame_images, plot_question_report

    attr = next(a for a in load_attributions(folders["attributions"], CONFIG) if a.qid == "mv_2")
    question = _questions()[1]
    frames, note = frame_images(attr, question, None, folders["videos"], n_frames=N_FRAMES)
    assert note is None and len(frames) == N_FRAMES and frames[0].shape == (48, 64, 3)
    path = plot_question_report(attr, tmp_path / "mv_2.png", frames=frames)
    grey = plot_question_report(attr, tmp_path / "mv_2_placeholder.png", frames=None, note="no videos")
    from PIL import Image

    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(grey).convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape
    # only the frame tiles differ (synthesised random blocks vs grey tiles)
    assert (np.abs(a - b).sum(axis=2) > 30).mean() > 0.02


def test_report_without_videos_draws_placeholders(folders, tmp_path, capsys):
    from vqa_shap.cli import main

    out = tmp_path / "report"
    assert main(["report", str(folders["attributions"]), "--config", CONFIG, "--out", str(out),
                 "--bootstrap", "0", "--max-questions", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "1 question report(s) with placeholder frames (no videos given" in printed
    assert _png_size(out / CONFIG / "questions" / "ego_1.png")[0] == 1400
    assert not (out / CONFIG / "questions" / "mv_2.png").exists()  # --max-questions 1


def test_mismatched_frames_fall_back_to_placeholders_with_the_reason(folders):
    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.analysis.question_report import frame_images

    attr = next(a for a in load_attributions(folders["attributions"], CONFIG) if a.qid == "ego_1")
    frames, note = frame_images(attr, _questions()[0], None, folders["videos"], n_frames=N_FRAMES + 2)
    assert frames is None and "the protocol gives" in note


def test_share_rows_match_the_metrics(folders):
    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.analysis.metrics import subset_metrics
    from vqa_shap.analysis.plots import share_rows

    attrs = load_attributions(folders["attributions"], CONFIG)
    (row,) = share_rows({"m · b": attrs}, bootstrap=0)
    gt = subset_metrics(attrs, bootstrap=0)[0]
    assert row.mc == pytest.approx((gt.values["mc_v"], gt.values["mc_q"], gt.values["mc_a"]))
    assert row.pf == pytest.approx((gt.values["pf_v"], gt.values["pf_q"], gt.values["pf_a"]))
    assert sum(row.mc) == pytest.approx(1.0) and row.n_questions == 2


def test_rank_violins(tmp_path):
    from vqa_shap.analysis.plots import plot_rank_violins

    path = plot_rank_violins({"a": [0.1, -0.3, 0.5], "b": [None, 0.2], "empty": []}, tmp_path / "r.png")
    w, h = _png_size(path)
    assert w == 700 and h > 100


def test_analysis_modules_import_cheaply():
    import subprocess
    import sys

    code = ("import sys, vqa_shap.analysis.masking.experiment, vqa_shap.analysis.ranking, vqa_shap.analysis.report, vqa_shap.commands.mask_bench,"
            " vqa_shap.commands.rank, vqa_shap.commands.report;"
            "print(','.join(m for m in ('torch', 'transformers', 'datasets', 'matplotlib', 'scipy', 'pandas')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_each_config_reads_its_own_questions_config(folders, tmp_path, capsys):
    """Variants share qids: a config's frames come from the questions config its card records, not from
    whichever config loaded last."""
    import dataclasses
    import shutil

    from vqa_shap.hub import folder as hub
    from vqa_shap.cli import main
    from vqa_shap.schema.arrow import attribution_features

    questions, attributions = tmp_path / "questions", tmp_path / "attributions"
    shutil.copytree(folders["questions"], questions)
    shutil.copytree(folders["attributions"], attributions)
    # the original questions config now points ego_1 at a missing video; the variant's (loaded last in
    # name order, so a merge by qid would hide the difference) keeps the real one
    broken = [dataclasses.replace(q, inputs=(VisualInput("video", "missing.mp4"),)) if q.qid == "ego_1" else q
              for q in _questions()]
    assert QUESTIONS_CONFIG < "variant_qc"
    shutil.rmtree(questions)
    hub.write_questions(questions, QUESTIONS_CONFIG, broken)
    hub.write_questions(questions, "variant_qc", _questions())
    hub.write_config(attributions, "variant_cfg", folders["rows"], features=attribution_features(),
                     kind="attributions", card_vars={"model": "tiny-random/llava_onevision",
                                                     "questions_config": "variant_qc", "n_frames": N_FRAMES,
                                                     "sampler": None})
    assert main(["report", str(attributions), "--questions", str(questions), "--video-root", str(folders["videos"]),
                 "--out", str(tmp_path / "out"), "--bootstrap", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 question report(s) with placeholder frames" in out and "missing.mp4" in out, out

