"""Side-by-side speed of the scoring paths of a loader (used by ``scripts/bench_loader.py``).

Four ways to score the same coalitions of one question, timed in one run, round-robin:

* ``pixels_one_by_one`` — the paper's way: mask pixels, full processor and full forward per coalition;
* ``cached_one_by_one`` — cached vision features, one coalition per forward;
* ``cached_batched`` — cached vision features, ``batch_size`` coalitions per forward;
* ``cached_batched_prefix`` — the same plus prefix sharing (one key/value cache per video part).

Every path's scores are compared with the pixel path's (``max_abs_diff``), so a speed-up is only
reported for identical numbers.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

MODES = ("pixels_one_by_one", "cached_one_by_one", "cached_batched", "cached_batched_prefix")


@dataclass(frozen=True)
class ModeResult:
    """Timing of one scoring path.

    Attributes:
        mode: one of :data:`MODES`.
        evals_per_s: coalitions scored per second (median over repeats).
        seconds: median wall time of one pass over the workload.
        speedup: ``evals_per_s`` relative to ``pixels_one_by_one``.
        max_abs_diff: largest difference of its scores from the pixel path's.
    """

    mode: str
    evals_per_s: float
    seconds: float
    speedup: float
    max_abs_diff: float


def benchmark_question(realistic: bool = True, seed: int = 0):
    """An EgoSchema-style question with realistic proportions (32 frames, ~150 text tokens)."""
    from vqa_shap.protocol import FramePlan, FrameRef
    from vqa_shap.schema import Question, VisualInput

    n_frames = 32 if realistic else 4
    question = Question(
        "bench", "egoschema", "bench",
        "What is the goal of c in this video, and how does the knife help?",
        ("C is cooking and cuts food", "C is cleaning the kitchen", "C is looking for a cup",
         "C is moving objects to the fridge", "C is washing the bowl and the pan"),
        0, inputs=(VisualInput("video", "bench.mp4"),))
    plan = FramePlan(tuple(FrameRef(0, 4 * i, 0.5 * i) for i in range(n_frames)))
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (n_frames, 96, 128, 3), dtype=np.uint8)]
    return question, plan, frames


def workload(n_features: int, n_video: int, kind: str, size: int, seed: int = 0) -> np.ndarray:
    """Coalitions to time.

    ``permutation``: antithetic permutation sampling as the paper's shap (all masked, add the players one
    by one in a random order, then remove them in the same order), ``size`` rows of it. ``grouped``: a
    few video parts, each with many text masks (what text-side sweeps produce); ``random``: i.i.d. rows.
    """
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.random((size, n_features)) < 0.5
    if kind == "grouped":
        parts = max(1, size // 16)
        rows = rng.random((size, n_features)) < 0.5
        videos = rng.random((parts, n_video)) < 0.5
        rows[:, :n_video] = videos[np.arange(size) % parts]
        return rows[np.argsort(np.arange(size) % parts, kind="stable")]
    if kind == "permutation":
        rows = []
        while len(rows) < size:
            order = rng.permutation(n_features)
            mask = np.zeros(n_features, bool)
            rows.append(mask.copy())
            for i in order:
                mask[i] = True
                rows.append(mask.copy())
            for i in order:
                mask[i] = False
                rows.append(mask.copy())
        return np.array(rows[:size])
    raise ValueError(f"unknown workload {kind!r}; valid: permutation, grouped, random")


def run(loader, prepared, masks: np.ndarray, *, batch_size: int = 8, repeats: int = 3,
        pixel_rows: int | None = None) -> list[ModeResult]:
    """Time the four paths on ``masks`` (round-robin over ``repeats``; the first pass is a warm-up).

    Args:
        pixel_rows: score only the first ``pixel_rows`` coalitions on the (slow) pixel path; its rate is
            per coalition, so the ratio stays comparable.
    """
    pixel_masks = masks[:pixel_rows] if pixel_rows else masks
    settings = (loader.batch_size, loader.prefix_sharing)
    configs = {
        "pixels_one_by_one": (pixel_masks, lambda m: loader.score_pixels(prepared, m), 1, False),
        "cached_one_by_one": (masks, lambda m: loader.score(prepared, m), 1, False),
        "cached_batched": (masks, lambda m: loader.score(prepared, m), batch_size, False),
        "cached_batched_prefix": (masks, lambda m: loader.score(prepared, m), batch_size, True),
    }
    times: dict[str, list[float]] = {m: [] for m in MODES}
    scores: dict[str, np.ndarray] = {}
    try:
        for rep in range(repeats + 1):
            for mode in MODES:
                rows, fn, loader.batch_size, loader.prefix_sharing = configs[mode]
                start = time.perf_counter()
                scores[mode] = fn(rows)
                if rep:  # the first round warms caches (tokenisation, allocator)
                    times[mode].append(time.perf_counter() - start)
    finally:
        loader.batch_size, loader.prefix_sharing = settings
    reference = scores["pixels_one_by_one"]
    results = []
    base_rate = len(pixel_masks) / statistics.median(times["pixels_one_by_one"])
    for mode in MODES:
        rows = configs[mode][0]
        seconds = statistics.median(times[mode])
        rate = len(rows) / seconds
        diff = float(np.abs(scores[mode][:len(reference)] - reference).max())
        results.append(ModeResult(mode, rate, seconds, rate / base_rate, diff))
    return results


def as_dict(results: list[ModeResult]) -> list[dict]:
    return [asdict(r) for r in results]
