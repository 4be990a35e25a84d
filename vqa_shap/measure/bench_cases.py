"""The pipeline benchmark's questions: each a question with its decoded frames and frame plan
(:class:`BenchCase`), in the sets :mod:`vqa_shap.measure.pipeline` measures — synthetic questions
(the demo models' layouts), the long-video ``short_evidence`` layout, and questions of realistic
proportions for the random-weight LLaVA-OneVision — and the digest that names a question's game."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqa_shap.builders.shapes import LONG_ACTIVITIES, LONG_TOOLS

__all__ = ["BenchCase", "case_digest", "synthetic_cases", "long_video_cases", "realistic_question",
           "realistic_cases"]


@dataclass(frozen=True)
class BenchCase:
    """One question with its decoded frames and frame plan."""

    question: object
    frames: tuple
    plan: object


def case_digest(case: BenchCase) -> str:
    """12 hex digits naming a question and its decoded frames (a stored reference's game, with the model's)."""
    h = hashlib.sha256(json.dumps([case.question.qid, case.question.question, list(case.question.options)]).encode())
    for frame in case.frames:
        h.update(np.ascontiguousarray(frame).tobytes())
    return h.hexdigest()[:12]


def synthetic_cases(n_questions: int, *, seed: int, workdir, n_frames: int | None = None, start: int = 0,
                    realistic: bool = False, loader_family: str = "llava_onevision", protocol=None) -> list[BenchCase]:
    """Synthetic questions ``start .. start + n_questions - 1`` written as videos, built, planned and
    decoded as ``explain`` does; ``realistic``: the realistic layout ``demo-realistic`` is trained on
    (long wording, 32 tiled frames, :mod:`vqa_shap.demo.architecture`)."""
    from vqa_shap.builders import get_builder
    from vqa_shap.builders.shapes import FRAME_SIZE, N_FRAMES, generate_source
    from vqa_shap.demo.architecture import REALISTIC_FRAME_SIZE, REALISTIC_FRAMES, REALISTIC_TILES
    from vqa_shap.protocol import get_protocol

    layout = (dict(n_frames=REALISTIC_FRAMES, size=REALISTIC_FRAME_SIZE, wording="long", tiles=REALISTIC_TILES)
              if realistic else dict(n_frames=N_FRAMES, size=FRAME_SIZE))
    root = generate_source(workdir, start + n_questions, seed=seed, **layout)
    questions = list(get_builder("synthetic").build(root).configs["synthetic"])[start:]
    return _planned_cases(questions, root, n_frames or layout["n_frames"], loader_family,
                          protocol or get_protocol("pollard2025"))


def _planned_cases(questions, root, n_frames: int, loader_family: str, protocol) -> list[BenchCase]:
    """Each question's frames planned and decoded from ``root`` as ``explain --frames n_frames`` does."""
    cases = []
    for question in questions:
        plan = protocol.plan_frames(question, Path(root), n_frames, loader_family=loader_family)
        cases.append(BenchCase(question, tuple(protocol.load_frames(question, Path(root), plan)), plan))
    return cases


def long_video_cases(n_questions: int, *, seed: int, workdir, start: int = 0, loader_family: str = "llava_onevision",
                     protocol=None) -> list[BenchCase]:
    """Questions ``start .. start + n_questions - 1`` of the ``short_evidence`` long-video layout
    (:mod:`vqa_shap.builders.shapes_long_video`: 64 frames, the evidence one short shot) written as
    videos, all 64 frames planned and decoded as ``explain --frames 64`` does."""
    from vqa_shap.builders.shapes_long_video import SHORT_TOTAL, short_evidence_items
    from vqa_shap.protocol import get_protocol

    items = short_evidence_items(start + n_questions, seed, workdir)[start:]
    return _planned_cases([item.question for item in items], workdir, SHORT_TOTAL, loader_family,
                          protocol or get_protocol("pollard2025"))


#: The realistic questions' activities and tools are the long wording's (builders/shapes.py owns them), with
#: one word kept as the committed benchmark questions (benchmarks/bench_pipeline*.json) have it: "zip bag"
#: where the builder says "bag" (its tokenizer vocabulary is derived from the list), so a rerun asks them again.
_ACTIVITIES = LONG_ACTIVITIES
_TOOLS = tuple("zip bag" if tool == "bag" else tool for tool in LONG_TOOLS)
_TEMPLATES = (
    "What is the overall goal of c in this video, and how does the {tool} help c to reach it?",
    "Summarise the main steps c takes while {activity}, and explain why c picks up the {tool} near the end.",
    "Which of the following best describes how the actions of c change over the video, from the first use "
    "of the {tool} to the last one?",
    "Taking the whole video into account, why does c keep returning to the {tool} while {activity}?",
)


def realistic_question(index: int):
    """An EgoSchema-like question of realistic length (~150 text tokens), distinct for every ``index``.

    Returns:
        ``(question, plan, frames)``: 32 frames of seeded noise (the text differs per index too).
    """
    from vqa_shap.measure.loaders import benchmark_question
    from vqa_shap.schema.records import Question

    base, plan, frames = benchmark_question(realistic=True, seed=index)
    rng = np.random.default_rng(index)
    picks = rng.permutation(len(_ACTIVITIES))[:5]
    activity, tool = _ACTIVITIES[picks[0]], _TOOLS[rng.integers(len(_TOOLS))]
    text = _TEMPLATES[index % len(_TEMPLATES)].format(activity=activity, tool=tool)
    options = [f"C is {_ACTIVITIES[p]} and uses the {_TOOLS[(p + k) % len(_TOOLS)]} to finish the task carefully"
               for k, p in enumerate(picks)]
    answer = int(rng.integers(5))
    options[0], options[answer] = options[answer], options[0]
    question = Question(f"bench-{index}", base.benchmark, base.task, text, tuple(options), answer,
                        inputs=base.inputs)
    return question, plan, frames


def realistic_cases(n_questions: int, start: int = 0) -> list[BenchCase]:
    """Questions with realistic proportions (32 frames, ~150 text tokens), distinct texts and videos
    (indices ``start`` … ``start + n_questions - 1``)."""
    cases = []
    for i in range(start, start + n_questions):
        question, plan, frames = realistic_question(i)
        cases.append(BenchCase(question, tuple(frames), plan))
    return cases
