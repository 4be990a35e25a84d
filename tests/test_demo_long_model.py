"""The long-video demo model (``--model demo-long``): the in-memory long-video layout it is trained on
equals the written benchmark videos, training on that layout runs, and the committed model answers
fresh 64-frame questions through the real inference path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vqa_shap.loaders.demo_models import DEMO_LONG_MODEL, demo_model_dir
from vqa_shap.demo.architecture import TRAINING_FILE

#: Accuracy the committed model must reach on fresh 64-frame short_evidence questions (every frame
#: shown); chance is about 1/4.
MIN_LONG_ACCURACY = 0.8


def test_in_memory_layout_equals_the_written_videos(tmp_path):
    from vqa_shap.builders.shapes_long_video import SHORT_TOTAL, held_items, short_evidence_items
    from vqa_shap.video import read_frames

    memory = list(held_items(4, 77, "short_evidence"))
    written = short_evidence_items(4, 77, tmp_path)
    for item, long_item in zip(memory, written):
        assert item.question.qid == long_item.question.qid and len(item.frames) == long_item.n_frames == SHORT_TOTAL
        assert set(item.evidence_frames) == long_item.evidence and 1 <= len(item.evidence_frames) <= 2
        decoded = read_frames(tmp_path / long_item.question.inputs[0].path, list(range(SHORT_TOTAL))).astype(float)
        assert np.abs(decoded - item.frames.astype(float)).mean() < 3.0  # the same frames, through H.264
        # the question's extra describes the long video: one content per frame, the evidence frames showing
        # the asked-about shape (what the training targets read)
        extra = item.question.extra
        assert extra["n_frames"] == len(extra["frames"]) == SHORT_TOTAL
        assert extra["evidence_frames"] == list(item.evidence_frames)
        target = extra["frames"][item.evidence_frames[0]]
        assert target is not None and all(extra["frames"][t] == target for t in item.evidence_frames)
        blank = [t for t, c in enumerate(extra["frames"]) if c is None]
        shown = [t for t, c in enumerate(extra["frames"]) if c is not None]
        assert item.frames[blank].std() < item.frames[shown].std()  # blank frames are flat (noise only)
    with pytest.raises(ValueError, match="unknown long-video layout 'nope'; valid: held, short_evidence"):
        held_items(1, 0, "nope")
    with pytest.raises(ValueError, match="need >= 3 shots"):
        held_items(1, 0, "short_evidence", n_total=20, n_shots=8)


def test_training_on_long_videos_marks_the_evidence_shot_and_saves(tmp_path):
    from vqa_shap.demo.batches import BatchEncoder
    from vqa_shap.demo.training import TrainConfig, train
    from vqa_shap.demo.architecture import build_demo_model
    from vqa_shap.demo.training import layout_items

    with pytest.raises(ValueError, match="unknown 'clips'; valid: frames, short_evidence"):
        TrainConfig(layout="clips")
    config = TrainConfig(steps=2, batch_size=2, eval_every=1, eval_questions=2, layout="short_evidence",
                         n_frames=36, warmup=1)
    items = layout_items(config, 2, 5)
    model, processor = build_demo_model()
    batch = BatchEncoder(model, processor, 36)(items)
    per_frame = (batch["n_video"] - 1) // 36
    for row, item in zip(batch["evidence"], items):
        frames = sorted({int(i) // per_frame for i in np.flatnonzero(row.numpy())})
        assert frames == list(item.evidence_frames)
    assert batch["pixel_values_videos"].shape[1] == 36

    result = train(tmp_path / "long", config, progress=False)
    assert result.steps == 2 and len(result.history) == 2
    info = json.loads((tmp_path / "long" / TRAINING_FILE).read_text())
    assert info["runs"][-1]["train_config"]["layout"] == "short_evidence"
    assert info["runs"][-1]["train_config"]["n_frames"] == 36


def test_demo_model_names():
    from vqa_shap.errors import VqaShapError
    from vqa_shap.loaders import resolve_model

    with pytest.raises(VqaShapError, match="unknown demo model 'demo-short'; valid: demo, demo-long, demo-realistic"):
        demo_model_dir("demo-short")
    cls, checkpoint = resolve_model(DEMO_LONG_MODEL)
    assert cls.__name__ == "LlavaOnevisionLoader" and checkpoint == str(demo_model_dir(DEMO_LONG_MODEL))
    assert checkpoint != str(demo_model_dir())


def test_committed_long_model_answers_fresh_64_frame_questions(tmp_path):
    from helpers import evaluate_committed_model

    folder = demo_model_dir(DEMO_LONG_MODEL)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 20_000_000
    info = json.loads((folder / TRAINING_FILE).read_text())
    assert info["runs"][-1]["train_config"]["layout"] == "short_evidence"
    assert info["evaluation"]["accuracy"] >= MIN_LONG_ACCURACY
    # fresh questions (a seed used neither in training nor for the recorded evaluation), all 64 frames shown
    evaluation = evaluate_committed_model(DEMO_LONG_MODEL, n_questions=24, seed=50_000_011, workdir=tmp_path,
                                          layout="short_evidence")
    assert evaluation.n_questions == 24 and evaluation.accuracy >= MIN_LONG_ACCURACY, evaluation


def test_doc_figures_match_the_training_record():
    from pathlib import Path

    info = json.loads((demo_model_dir(DEMO_LONG_MODEL) / TRAINING_FILE).read_text())
    text = (Path(__file__).resolve().parents[1] / "docs" / "demo.md").read_text()
    run, evaluation = info["runs"][-1], info["evaluation"]
    per_task = ", ".join(f"{task} {acc:.2f}" for task, acc in sorted(evaluation["per_task"].items()))
    assert f"| fine-tuning | {run['steps']} steps of {run['train_config']['batch_size']} questions, " \
           f"**{run['train_seconds'] / 60:.1f} min wall time on {run['train_config']['threads']} thread**" in text
    assert f"({evaluation['n_questions']} fresh 64-frame questions" in text
    assert f"**{evaluation['accuracy']:.2f}** ({per_task})" in text
    assert run["stopped"] == "target" and run["train_config"]["steps"] == 2500 and run["train_config"]["lr"] == 1e-3


@pytest.mark.slow
def test_explain_demo_long_with_shot_players_finds_a_64_frame_video(tmp_path):
    """``vqa-shap explain --model demo-long --frames 64 --players shots`` on a written short_evidence
    question: one row, shot players covering all 64 frames, efficiency holds."""
    import datasets
    import torch

    from vqa_shap.builders.shapes_long_video import SHORT_TOTAL, short_evidence_items
    from vqa_shap.cli import main
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.long_video.shots import parse_shot_name

    torch.set_num_threads(1)
    (item,) = short_evidence_items(1, 31, tmp_path / "videos")
    write_questions(tmp_path / "questions", "long", [item.question])
    out = tmp_path / "out"
    argv = ["explain", str(tmp_path / "questions"), "--config", "long", "--model", DEMO_LONG_MODEL,
            "--video-root", str(tmp_path / "videos"), "--out", str(out), "--frames", str(SHORT_TOTAL),
            "--sampler", "linspace", "--budget", "64", "--players", "shots", "--shot-detector", "diff",
            "--no-progress", "--device", "cpu", "--dtype", "float32"]
    assert main(argv) == 0
    (row,) = datasets.load_dataset(str(out), name="demo-long__long", split="test", download_mode="force_redownload")
    assert row["error"] is None, row["error"]
    shots = [parse_shot_name(f["name"]) for f in row["features"] if f["modality"] == "video"]
    assert all(s is not None for s in shots) and 3 <= len(shots) <= 12
    assert shots[0][1] == 0 and shots[-1][2] == SHORT_TOTAL  # the shots cover the whole video (1 fps)
    phi = np.asarray(row["shapley"])
    np.testing.assert_allclose(phi.sum(0), np.asarray(row["value_full"]) - np.asarray(row["value_empty"]), atol=1e-4)
