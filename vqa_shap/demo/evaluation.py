"""Held-out accuracy of the demo model through the real inference path (files, builder, loader).

Imports torch and transformers only inside functions.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqa_shap.demo.architecture import REALISTIC_FRAME_SIZE, REALISTIC_FRAMES, REALISTIC_TILES, TRAIN_LAYOUTS
from vqa_shap.loaders.demo_models import demo_model_dir


@dataclass(frozen=True)
class Evaluation:
    """Held-out accuracy of a model on synthetic questions, through files, loader and protocol.

    Attributes:
        n_questions: questions evaluated.
        seed: their generation seed.
        accuracy: share answered correctly (argmax of the option-letter logits).
        per_task: accuracy per question template.
        seconds: wall time (generation, decoding, scoring).
        masked_changes: of the questions answered correctly, the share whose answer changes when the
            evidence frames are masked (``evidence_frames``), when as many other frames are masked
            instead (``other_frames``, the control) and when every question word is masked
            (``question_words``): the answer depends on the evidence and on the question.
    """

    n_questions: int
    seed: int
    accuracy: float
    per_task: dict[str, float]
    seconds: float
    masked_changes: dict[str, float] | None = None


def evaluate(model: str | os.PathLike | None = None, n_questions: int = 60, *, seed: int = 12345,
             workdir: str | os.PathLike | None = None, loader=None, threads: int | None = None,
             layout: str = "frames", n_frames: int | None = None) -> Evaluation:
    """Accuracy of the demo model (or ``model``) on freshly generated synthetic questions.

    The questions are written as videos, built with the ``synthetic`` builder, decoded and scored with
    the ``llava_onevision`` loader (``score`` of the all-kept coalition) — the path ``explain`` uses.

    Args:
        model: a model folder (default :func:`demo_model_dir`).
        n_questions: questions to generate.
        seed: their seed. Training draws step ``i``'s questions from seed ``1_000_003 * seed + i``, so
            with seed 0 it uses seeds below its step count; the default 12345 is held out.
        workdir: where to write the videos (default: a temporary folder, removed afterwards).
        loader: an already loaded loader (then ``model`` is ignored).
        threads: torch CPU threads (default: leave as is).
        layout: ``"frames"`` (the benchmark's videos, built with the ``synthetic`` builder) or
            ``"short_evidence"`` (long videos of :mod:`vqa_shap.builders.shapes_long_video`, every frame shown).
        n_frames: frames shown (``frames``: the benchmark's 8) or per long video (``short_evidence``: 64).
    """
    import torch

    from vqa_shap.loaders import get_loader
    from vqa_shap.protocol import get_protocol

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    if loader is None:
        loader = get_loader("llava_onevision").load(str(model or demo_model_dir()), device="cpu", dtype="float32")
    protocol = get_protocol("pollard2025")
    tmp = None if workdir is not None else tempfile.mkdtemp(prefix="vqa_shap_eval_")
    root = Path(workdir or tmp)
    try:
        questions, n_frames = _write_questions(root, n_questions, seed, layout, n_frames)
        right: dict[str, list[bool]] = {}
        changes: dict[str, list[bool]] = {name: [] for name in _MASKINGS}
        rng = np.random.default_rng(seed)
        for question in questions:
            plan = protocol.plan_frames(question, root, n_frames, loader_family=loader.family)
            frames = protocol.load_frames(question, root, plan)
            prepared = loader.prepare(question, frames, plan, protocol)
            coalitions = _masked_coalitions(prepared, plan, question, rng)
            predicted = loader.score(prepared, coalitions).argmax(1)
            right.setdefault(question.task, []).append(int(predicted[0]) == question.answer)
            if predicted[0] == question.answer:
                for name, changed in zip(_MASKINGS, predicted[1:] != predicted[0]):
                    changes[name].append(bool(changed))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    flat = [r for rs in right.values() for r in rs]
    return Evaluation(len(flat), seed, float(np.mean(flat)), {t: float(np.mean(r)) for t, r in right.items()},
                      time.perf_counter() - started,
                      {name: float(np.mean(c)) if c else float("nan") for name, c in changes.items()})


#: The maskings of :attr:`Evaluation.masked_changes`, in the order of :func:`_masked_coalitions`' rows.
_MASKINGS = ("evidence_frames", "other_frames", "question_words")


def _masked_coalitions(prepared, plan, question, rng: np.random.Generator) -> np.ndarray:
    """Rows: everything kept, then the maskings of :data:`_MASKINGS` (one frame per video player)."""
    from vqa_shap.builders.shapes import evidence_frames

    evidence = set(evidence_frames(question))
    is_evidence = np.array([plan.frames[p].index in evidence for p in range(prepared.n_video)])
    others = np.flatnonzero(~is_evidence)
    rows = np.ones((1 + len(_MASKINGS), prepared.n_features), dtype=bool)
    rows[1, :prepared.n_video] = ~is_evidence
    rows[2, rng.choice(others, size=min(int(is_evidence.sum()), len(others)), replace=False)] = False
    rows[3] = [feature.modality != "question" for feature in prepared.features]
    return rows


def _write_questions(root: Path, n_questions: int, seed: int, layout: str, n_frames: int | None):
    """Write ``layout``'s questions and videos under ``root``; the questions and the frames to show."""
    from vqa_shap.builders import get_builder
    from vqa_shap.builders.shapes import N_FRAMES, generate_source
    from vqa_shap.builders.shapes_long_video import SHORT_TOTAL, short_evidence_items

    if layout == "short_evidence":
        n_frames = n_frames or SHORT_TOTAL
        return [item.question for item in short_evidence_items(n_questions, seed, root, n_total=n_frames)], n_frames
    if layout not in TRAIN_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(TRAIN_LAYOUTS)}")
    if layout == "realistic":
        n_frames = n_frames or REALISTIC_FRAMES
        generate_source(root, n_questions, seed=seed, n_frames=n_frames, size=REALISTIC_FRAME_SIZE, wording="long",
                        tiles=REALISTIC_TILES)
        return get_builder("synthetic").build(root).configs["synthetic"], n_frames
    generate_source(root, n_questions, seed=seed)
    return get_builder("synthetic").build(root).configs["synthetic"], n_frames or N_FRAMES
