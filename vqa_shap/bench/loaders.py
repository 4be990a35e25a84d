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
    by one in a random order, then remove them in the same order), ``size`` rows of it, sorted by video
    part as :class:`vqa_shap.game.Game` sends them. ``grouped``: a
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
        rows = np.array(rows[:size])
        keys = [r[:n_video].tobytes() for r in rows]
        return rows[sorted(range(size), key=keys.__getitem__)]  # the Game sorts by video part
    raise ValueError(f"unknown workload {kind!r}; valid: permutation, grouped, random")


def run(loader, prepared, masks: np.ndarray, *, batch_size: int = 8, repeats: int = 3,
        pixel_rows: int | None = None, chunk: int = 16) -> list[ModeResult]:
    """Time the four paths on ``masks``, interleaved finely so that load drift on a shared machine
    hits every path alike.

    The coalitions are cut into chunks of ``chunk`` rows (as the Game sends batches); every chunk is
    scored by each path in turn, and each path's time is summed over the chunks. A first pass over the
    first chunk warms caches and is not timed.

    Args:
        pixel_rows: coalitions scored on the (slow) pixel path in total, spread over the chunks; its
            rate is per coalition, so the ratios stay comparable.
        repeats: passes over the workload; the median pass time is reported.
    """
    chunks = [masks[i:i + chunk] for i in range(0, len(masks), chunk)]
    per_chunk = max(1, -(-(pixel_rows or len(masks)) // len(chunks)))
    settings = (loader.batch_size, loader.prefix_sharing)
    configs = {  # mode -> (score function, batch size, prefix sharing, rows of a chunk it scores)
        "pixels_one_by_one": (loader.score_pixels, 1, False, per_chunk),
        "cached_one_by_one": (loader.score, 1, False, None),
        "cached_batched": (loader.score, batch_size, False, None),
        "cached_batched_prefix": (loader.score, batch_size, True, None),
    }
    totals = {m: [0.0] * repeats for m in MODES}
    counts = dict.fromkeys(MODES, 0)
    diffs = dict.fromkeys(MODES, 0.0)
    try:
        for rep in range(-1, repeats):
            for c, rows in enumerate(chunks if rep >= 0 else chunks[:1]):
                reference = None
                for mode in MODES:
                    fn, loader.batch_size, loader.prefix_sharing, limit = configs[mode]
                    part = rows[:limit]
                    start = time.perf_counter()
                    scores = fn(prepared, part)
                    elapsed = time.perf_counter() - start
                    if rep < 0:
                        continue
                    totals[mode][rep] += elapsed
                    if rep == 0:
                        counts[mode] += len(part)
                    if reference is None:
                        reference = scores
                    n = min(len(reference), len(scores))
                    diffs[mode] = max(diffs[mode], float(np.abs(scores[:n] - reference[:n]).max()))
    finally:
        loader.batch_size, loader.prefix_sharing = settings
    rates = {m: counts[m] / statistics.median(totals[m]) for m in MODES}
    return [ModeResult(m, rates[m], statistics.median(totals[m]), rates[m] / rates["pixels_one_by_one"], diffs[m])
            for m in MODES]


def as_dict(results: list[ModeResult]) -> list[dict]:
    return [asdict(r) for r in results]
