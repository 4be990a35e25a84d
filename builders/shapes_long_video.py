"""Long-video layouts of the synthetic benchmark: each frame of a synthetic question held as a *shot*.

A synthetic question (:func:`vqa_shap.builders.shapes.sample_items`) has one frame per content;
a layout holds each of them for several frames with per-frame pixel noise
(:func:`vqa_shap.synthetic_inputs.hold_frames`), so the video is a sequence of shots with known evidence frames.
Consecutive identical shots (two blank ones) form one detected shot, as a real detector would see them.

* ``held``: each of the question's 8 frames held for a random 2-6 frames, ~32 frames;
* ``short_evidence``: 12 shots in 64 frames, the one evidence shot 1-2 frames long and the others 3
  or more, so the 8 frames a uniform sampler keeps usually skip the evidence (a gap of 9 frames
  between them) while it is among the 64 candidates.

:func:`held_items` yields them in memory (demo-model training on long videos);
:func:`long_video_items` / :func:`short_evidence_items` write them as videos for the long-video
benchmarks (``vqa_shap.measure.long_video``). Both draw the same items for the same seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vqa_shap.builders.shapes import DISTRACTOR_P, TEMPLATES, SyntheticItem, sample_items

__all__ = ["LongItem", "held_items", "long_video_items", "short_evidence_items", "LAYOUTS", "HOLD", "NOISE",
           "SHORT_TOTAL", "SHORT_SHOTS", "SHORT_EVIDENCE", "MIN_SHOT"]

#: ``held``: range of frames each of the 8 synthetic frames is held for.
HOLD = (2, 6)
#: Standard deviation of the per-frame pixel noise.
NOISE = 3.0
#: ``short_evidence``: frames per video, shots per video, evidence shot length range, other shots' minimum.
SHORT_TOTAL = 64
SHORT_SHOTS = 12
SHORT_EVIDENCE = (1, 2)
MIN_SHOT = 3


@dataclass(frozen=True)
class LongItem:
    """One long-video question written to a file: the question (its input is the long video), the
    source frames of its evidence shots, and the video length."""

    question: object
    evidence: frozenset
    n_frames: int


def held_items(n_questions: int, seed: int, layout: str = "short_evidence", *, n_total: int = SHORT_TOTAL,
               n_shots: int = SHORT_SHOTS, distractor_p: float = DISTRACTOR_P,
               templates: Sequence[str] = TEMPLATES) -> Iterator[SyntheticItem]:
    """Synthetic questions as long videos in memory (see the module docstring).

    Each item's ``frames`` are the held frames, ``evidence_frames`` the frames of its evidence shots,
    and its question's ``extra`` (``frames``, ``evidence_frames``, ``n_frames``) describes the long
    video. ``n_total`` and ``n_shots`` apply to ``short_evidence``; ``distractor_p`` and ``templates``
    are :func:`~vqa_shap.builders.shapes.sample_items`'.

    Raises:
        ValueError: an unknown layout, or ``short_evidence`` sizes that leave no inner evidence shot.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown long-video layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    if layout == "short_evidence" and (n_shots < 3 or n_total - SHORT_EVIDENCE[1] - MIN_SHOT * (n_shots - 1) < 0):
        # the evidence needs an inner shot
        raise ValueError(f"need >= 3 shots, the others >= {MIN_SHOT} frames, in {n_total} frames; got {n_shots} shots")
    return _held_items(n_questions, seed, layout, n_total, n_shots, distractor_p, templates)


def _held_items(n_questions, seed, layout, n_total, n_shots, distractor_p, templates) -> Iterator[SyntheticItem]:
    rng = np.random.default_rng(seed)
    if layout == "held":
        for item in sample_items(n_questions, seed=seed, distractor_p=distractor_p, templates=templates):
            lengths = rng.integers(HOLD[0], HOLD[1] + 1, len(item.frames))
            yield _hold(item, lengths, item.evidence_frames, rng)
        return
    for item in sample_items(n_questions, seed=seed, n_frames=n_shots, n_evidence=1, distractor_p=distractor_p,
                             templates=templates):
        shot, order = item.evidence_frames[0], np.arange(n_shots)
        if shot in (0, n_shots - 1):  # an inner shot: a uniform sampler always keeps the first and last frames
            inner = int(rng.integers(1, n_shots - 1))
            order[[shot, inner]], shot = order[[inner, shot]], inner
        contents = item.question.extra["frames"]
        item = replace(item, frames=item.frames[order], evidence_frames=(shot,),
                       question=replace(item.question, extra={**item.question.extra,
                                                              "frames": [contents[i] for i in order]}))
        lengths = np.zeros(n_shots, dtype=np.int64)
        lengths[shot] = rng.integers(SHORT_EVIDENCE[0], SHORT_EVIDENCE[1] + 1)
        others = [i for i in range(n_shots) if i != shot]
        rest = n_total - int(lengths[shot]) - MIN_SHOT * len(others)
        lengths[others] = MIN_SHOT + rng.multinomial(rest, rng.dirichlet(np.ones(len(others))))
        yield _hold(item, lengths, [shot], rng)


def _hold(item: SyntheticItem, lengths, evidence_shots, rng: np.random.Generator) -> SyntheticItem:
    """``item`` with frame ``k`` held ``lengths[k]`` frames (noise seeded from ``rng``)."""
    from vqa_shap.synthetic_inputs import hold_frames

    frames, _ = hold_frames(item.frames, lengths, seed=int(rng.integers(2**31)), noise=NOISE)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    evidence = tuple(int(t) for k in sorted(evidence_shots) for t in range(starts[k], starts[k] + lengths[k]))
    contents = [c for c, n in zip(item.question.extra["frames"], lengths) for _ in range(int(n))]
    extra = {**item.question.extra, "frames": contents, "evidence_frames": list(evidence), "n_frames": len(contents)}
    return SyntheticItem(replace(item.question, extra=extra), frames, evidence)


def _write(items: Iterator[SyntheticItem], folder: str, root: str | os.PathLike) -> list[LongItem]:
    """Write each item's frames as ``root/folder/<qid>.mp4`` (1 fps); the questions re-pointed at them."""
    from vqa_shap.schema.records import VisualInput
    from vqa_shap.synthetic_inputs import write_video

    written = []
    for item in items:
        rel = f"{folder}/{item.question.qid}.mp4"
        write_video(Path(root) / rel, item.frames, 1.0)
        question = replace(item.question, inputs=(VisualInput("video", rel),))
        written.append(LongItem(question, frozenset(item.evidence_frames), len(item.frames)))
    return written


def long_video_items(n_questions: int, seed: int, root: str | os.PathLike) -> list[LongItem]:
    """The ``held`` layout written under ``root/long/`` (see the module docstring)."""
    return _write(held_items(n_questions, seed, "held"), "long", root)


def short_evidence_items(n_questions: int, seed: int, root: str | os.PathLike, *, n_total: int = SHORT_TOTAL,
                         n_shots: int = SHORT_SHOTS) -> list[LongItem]:
    """The ``short_evidence`` layout written under ``root/short/``: ``n_total``-frame videos of
    ``n_shots`` shots, one evidence shot of 1-2 frames where the question's single evidence frame
    stands (swapped with a random inner shot when it is the first or last), the other shots at least
    :data:`MIN_SHOT` frames with random lengths (a uniform random split of the rest). Deterministic
    given ``seed``; :attr:`LongItem.evidence` lists the evidence shot's frames."""
    return _write(held_items(n_questions, seed, "short_evidence", n_total=n_total, n_shots=n_shots), "short", root)


#: Layout name -> function writing its items (``scripts/bench_long_video.py --layout``).
LAYOUTS = {"held": long_video_items, "short_evidence": short_evidence_items}
