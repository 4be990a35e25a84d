"""The committed demo model: loads as a llava_onevision checkpoint (``--model demo``), is small, really
answers held-out synthetic questions, and its attributions find the evidence frames; the full-flow
``vqa-shap demo``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.loaders.demo_models import DEMO_MODEL, demo_model_dir
from vqa_shap.demo.architecture import TRAINING_FILE
from vqa_shap.demo.evaluation import evaluate

#: Held-out accuracy the committed model must have reached on its 300-question evaluation (the issue
#: asks >= 90%; it measured 0.98).
MIN_ACCURACY = 0.95
#: Accuracy a fresh 60-question sample must reach, overall and per template (20 questions each).
MIN_SAMPLE_ACCURACY = 0.9
MIN_TEMPLATE_ACCURACY = 0.85


@pytest.fixture(scope="module")
def loader():
    import torch

    from vqa_shap.loaders import resolve_model

    torch.set_num_threads(1)
    cls, checkpoint = resolve_model(DEMO_MODEL)
    return cls.load(checkpoint, device="cpu", dtype="float32")


def test_committed_folder_is_small_safetensors_with_tokenizer_and_processor():
    folder = demo_model_dir()
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "processor_config.json", TRAINING_FILE} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 20_000_000
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llava_onevision"
    info = json.loads((folder / TRAINING_FILE).read_text())
    assert info["evaluation"]["accuracy"] >= MIN_ACCURACY and info["train_seconds"] > 0


def test_demo_resolves_to_the_llava_onevision_loader(loader):
    from vqa_shap.errors import VqaShapError
    from vqa_shap.loaders import resolve_model
    from vqa_shap.loaders.llava_onevision import LlavaOnevisionLoader

    assert isinstance(loader, LlavaOnevisionLoader)
    assert type(loader.model).__name__ == "LlavaOnevisionForConditionalGeneration"
    with pytest.raises(VqaShapError, match="does not match"):
        resolve_model(DEMO_MODEL, "qwen2_5_vl")


def test_held_out_accuracy(loader, tmp_path):
    # fresh questions (a seed never used in training), through videos, builder, protocol and loader
    evaluation = evaluate(n_questions=60, seed=50_000_001, workdir=tmp_path, loader=loader)
    assert evaluation.n_questions == 60
    assert evaluation.accuracy >= MIN_SAMPLE_ACCURACY, evaluation
    assert len(evaluation.per_task) == 3 and min(evaluation.per_task.values()) >= MIN_TEMPLATE_ACCURACY, evaluation


def test_cached_masking_is_exact_on_the_demo_model(loader, tmp_path):
    from vqa_shap.measure.bench_cases import synthetic_cases
    from vqa_shap.protocol import get_protocol

    case = synthetic_cases(1, seed=50_000_002, workdir=tmp_path)[0]
    prepared = loader.prepare(case.question, case.frames, case.plan, get_protocol())
    masks = np.random.default_rng(1).random((6, prepared.n_features)) < 0.5
    np.testing.assert_allclose(loader.score(prepared, masks), loader.score_pixels(prepared, masks), atol=1e-4)


def test_masking_the_evidence_frames_hurts_the_answer(loader, tmp_path):
    """The model uses the video: hiding the evidence frames lowers the right answer's margin more than
    hiding the same number of other frames."""
    from vqa_shap.measure.bench_cases import synthetic_cases
    from vqa_shap.builders.shapes import evidence_frames
    from vqa_shap.protocol import get_protocol

    worse = []
    for case in synthetic_cases(6, seed=50_000_003, workdir=tmp_path):
        prepared = loader.prepare(case.question, case.frames, case.plan, get_protocol())
        evidence = set(evidence_frames(case.question))
        frames = [f.index for f in case.plan.frames]
        keep_all = np.ones(prepared.n_features, bool)
        no_evidence, no_other = keep_all.copy(), keep_all.copy()
        others = [j for j, f in enumerate(frames) if f not in evidence]
        for j, f in enumerate(frames):
            no_evidence[j] = f not in evidence
        for j in others[:len(evidence)]:
            no_other[j] = False
        scores = loader.score(prepared, np.stack([no_evidence, no_other]))
        answer = case.question.answer

        def margin(s):
            return s[answer] - np.delete(s, answer).max()

        worse.append(margin(scores[0]) < margin(scores[1]))
    assert np.mean(worse) >= 5 / 6


def test_faithfulness_top_frame_is_evidence(loader, tmp_path):
    from vqa_shap.measure.bench_cases import synthetic_cases
    from vqa_shap.analysis.faithfulness import evidence_scores, format_table, frame_ranking, run_faithfulness

    assert frame_ranking(np.array([[0.1, 0.0], [-0.5, 0.2], [0.3, 0.9]]), 0, [4, 5, 6]) == [5, 6, 4]
    assert evidence_scores([5, 6, 4], [5]) == (1.0, 1.0)
    assert evidence_scores([6, 5, 4], [5, 4]) == (0.0, 0.5)
    cases = synthetic_cases(6, seed=50_000_004, workdir=tmp_path)
    rows = run_faithfulness(loader, cases, estimators=["cyclic"], budgets=[256], progress=False)
    ours, chance = rows
    assert ours.estimator == "cyclic" and ours.n_questions == 6 and chance.estimator == "random ranking"
    assert ours.top1 > chance.top1 and ours.precision_at_k > chance.precision_at_k, rows
    assert sum(n for n, _ in ours.top1_by_evidence.values()) == 6 and set(ours.top1_by_evidence) <= {1, 2}
    weighted = sum(n * hit for n, hit in ours.top1_by_evidence.values()) / 6
    assert weighted == pytest.approx(ours.top1)
    assert "| cyclic | 256 | 6 |" in format_table(rows) and "top-1, 1 evidence frame |" in format_table(rows)


@pytest.mark.slow
def test_demo_command_runs_the_whole_flow(tmp_path):
    from vqa_shap.hub import folder as hub
    from vqa_shap.cli import main

    out = tmp_path / "demo"
    script = Path(sys.executable).with_name("vqa-shap")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "vqa_shap.cli"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*command, "demo", "--out", str(out), "--questions", "4", "--budget", "128"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    for line in ("[1/5] generate the synthetic", "[3/5] explain every question with the demo model",
                 "[4/5] modality metrics", "[5/5] report image", "accuracy", "Done in"):
        assert line in done.stdout, done.stdout
    assert hub.list_configs(out / "questions") == ["synthetic"]
    assert hub.list_configs(out / "attributions") == ["demo__synthetic"]
    attributions = hub.load_config(out / "attributions", "demo__synthetic")
    assert len(attributions) == 4 and not any(attributions["error"])
    assert len(json.loads((out / "metrics.json").read_text())) > 0
    assert list((out / "report").rglob("questions/*.png"))
    # the demo can be re-run on its own output
    assert main(["demo", "--out", str(out), "--questions", "2", "--budget", "64"]) == 0


def test_training_is_deterministic_saves_a_loadable_folder_and_restores_torch_state(tmp_path):
    """A few real steps of ``train`` (the code path of scripts/train_demo_model.py), twice."""
    import torch

    from vqa_shap.demo.training import TrainConfig, record_evaluation, train

    config = TrainConfig(steps=3, batch_size=3, warmup=1, eval_every=2, eval_questions=6)
    threads = torch.get_num_threads()
    first = train(tmp_path / "a", config, progress=False)
    second = train(tmp_path / "b", config, progress=False)
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    assert first.steps == 3 and first.stopped == "steps" and [h["step"] for h in first.history] == [2, 3]
    assert set(first.history[-1]["per_task"]) == {"colour_of_shape", "shape_of_colour", "shape_shown"}
    assert first.history == [{**h, "seconds": f["seconds"]} for h, f in zip(second.history, first.history)]
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    # the folder loads through the llava_onevision loader and scores the full pipeline
    evaluation = evaluate(tmp_path / "a", 3, workdir=tmp_path / "eval")
    assert evaluation.n_questions == 3 and 0.0 <= evaluation.accuracy <= 1.0
    record_evaluation(tmp_path / "a", evaluation)
    info = json.loads((tmp_path / "a" / TRAINING_FILE).read_text())
    assert info["total_steps"] == 3 and info["evaluation"]["n_questions"] == 3
    assert info["runs"][0]["train_config"]["templates"] == list(config.templates)


def test_train_config_rejects_unknown_templates():
    from vqa_shap.demo.training import TrainConfig

    with pytest.raises(ValueError, match="valid: colour_of_shape, shape_of_colour, shape_shown"):
        TrainConfig(templates=("colour_of_shape", "size_of_shape"))
    with pytest.raises(ValueError, match="curriculum"):
        TrainConfig(curriculum=(0.3, 0.3))
