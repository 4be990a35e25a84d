"""Frame samplers: pure functions of numbers, one formula per model or benchmark of the paper.

:data:`SAMPLERS` maps each sampler name to a function over ONE visual input,
``f(n_total, fps, n, benchmark) -> (frame indices, timestamps in seconds)``, with indices in
``[0, n_total)``. A protocol applies it to each input of a question; two samplers have a fuller form
the protocol uses when the record asks for it: ``mvbench_bounds`` narrowed to a record's
``(start, end)`` bound (:func:`mvbench_bounds`) and ``hd_epic_windows`` spreading one frame budget
over all inputs of a question (:func:`hd_epic_windows`). docs/protocol.md lists which model and
benchmark uses which. ``aks`` (Adaptive Keyframe Sampling) gives its *candidates*, uniformly; explain
scores them and keeps the requested frames with :func:`vqa_shap.long_video.aks.plan_aks` (docs/shots.md).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

#: ``f(n_total, fps, n, benchmark) -> (frame indices, timestamps in seconds)`` over one input.
Sampler = Callable[[int, float, int, str], tuple[list[int], list[float]]]


def linspace(n_total: int, n: int, last: int | None = None) -> list[int]:
    """``linspace(0, last, n)`` cast to int; ``last`` defaults to ``n_total - 1``.

    L-V / LVA on EgoSchema (``last = n_total - 1``); LVBench uses ``last = n_total - 2``
    (``max_frame - 1`` with ``max_frame = len - 1``, so the last frame is never used).
    """
    last = n_total - 1 if last is None else last
    return [int(v) for v in np.linspace(0, max(last, 0), n).astype(int)]


def segment_midpoints(n_total: int, n: int) -> list[int]:
    """VideoLLaMA2: ``seg = (n_total - 1) / n``; frame_k = ``round(seg*k + seg/2 + 1e-6)``."""
    seg = (n_total - 1) / n
    return [int(round(seg * k + seg / 2 + 1e-6)) for k in range(n)]


def uniform_edges(n_total: int, n: int) -> list[int]:
    """InternVideo: ``edges = int(linspace(0, n_total, n + 1))``; frame_k = ``(e_k + e_{k+1} - 1) // 2``."""
    edges = np.linspace(0, n_total, n + 1).astype(int)
    return [int((edges[k] + edges[k + 1] - 1) // 2) for k in range(n)]


def fps1_capped(n_total: int, fps: float, n: int) -> tuple[list[int], list[float]]:
    """VideoLLaMA3: frames at 1 fps (rounded down), at most ``n`` of them by linspace.

    Second ``k`` (``k = 0 … floor(n_total / fps) - 1``) shows source frame ``floor(k * fps)``; when
    more than ``n`` seconds result, keep positions ``int(linspace(0, len - 1, n))``.

    Returns:
        (source frame indices, timestamps in seconds ``k``).
    """
    seconds = max(1, int(n_total / fps + 1e-6))  # 250 frames at 25/3 fps last 30 s, not 29.999…
    ks = list(range(seconds))
    if len(ks) > n:
        ks = [ks[i] for i in np.linspace(0, len(ks) - 1, n).astype(int)]
    return [min(n_total - 1, int(k * fps + 1e-6)) for k in ks], [float(k) for k in ks]


def mvbench_bounds(n: int, fps: float, max_frame: int, bound: tuple[float, float] | None = None,
                   first_idx: int = 0) -> list[int]:
    """MVBench ``get_indices``: ``n`` segment centres between the bound's frames.

    ``start_idx = max(first_idx, round(start*fps))``, ``end_idx = min(round(end*fps), max_frame)``,
    ``seg = (end_idx - start_idx) / n``, frame_k = ``int(start_idx + seg/2 + round(seg*k))``
    (half-to-even rounding). Without a bound, ``(-1e5, 1e5)``. Videos: ``max_frame = len - 1``,
    ``first_idx = 0``; frame folders: ``max_frame`` = number of files, ``first_idx = 1``.
    """
    start, end = bound if bound is not None else (-1e5, 1e5)
    start_idx = max(first_idx, round(start * fps))
    end_idx = min(round(end * fps), max_frame)
    seg = (end_idx - start_idx) / n
    return [int(start_idx + seg / 2 + np.round(seg * k)) for k in range(n)]


def hd_epic_windows(windows: Sequence[tuple[float, float]], n_images: int, n: int,
                    fps: float = 1.0) -> tuple[list[tuple[int, int]], float]:
    """HD-EPIC multi-input sampling (the paper's ``calculate_frame_idxs``), for the video inputs.

    Args:
        windows: per video input, its resolved window ``(a, b)`` in seconds: candidates are the local
            frame indices ``arange(a*fps, b*fps)`` and the window lasts ``b - a`` seconds.
        n_images: number of image inputs (each takes one frame of the budget).
        n: requested total number of frames.
        fps: the videos' frame rate (the paper's videos are at 1 fps).

    Returns:
        (chosen ``(video position, local frame index)`` pairs in order, stride). The ``n - n_images``
        video frames (capped at the candidate count) sit at ``int(linspace(0, (len_s - 1)*fps, n_video))``
        of the concatenated candidates; ``stride = len_s / n_video`` seconds per sampled frame, or -1
        when there is no video frame (as the paper).
    """
    candidates = [(v, int(i)) for v, (a, b) in enumerate(windows)
                  for i in np.arange(a * fps, b * fps)]
    video_len = float(sum(b - a for a, b in windows))
    n_video = min(max(n - n_images, 0), len(candidates))
    if not windows or n_video == 0:
        return [], -1.0
    positions = np.linspace(0, (video_len - 1) * fps, n_video).astype(int)
    return [candidates[p] for p in positions], video_len / n_video


# ---------------------------------------------------------------------------------------------
# The table: every sampler as a function over one input
# ---------------------------------------------------------------------------------------------


def _times(idx: list[int], fps: float) -> tuple[list[int], list[float]]:
    return idx, [k / fps for k in idx]


def _linspace(n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    # LVBench's loader never uses the last frame (see linspace)
    return _times(linspace(n_total, n, n_total - 2 if benchmark == "lvbench" else None), fps)


def _segment_midpoints(n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    return _times(segment_midpoints(n_total, n), fps)


def _uniform_edges(n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    return _times(uniform_edges(n_total, n), fps)


def _fps1_capped(n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    return fps1_capped(n_total, fps, n)


def _mvbench_bounds(n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    return _times(mvbench_bounds(n, fps, n_total - 1), fps)  # the whole input: no bound


def _hd_epic_windows(n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    chosen, stride = hd_epic_windows([(0.0, n_total / fps)], 0, n, fps)  # one whole video, no image
    return [i for _, i in chosen], [i / stride for _, i in chosen]


def _aks_candidates(n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    return _times(linspace(n_total, n), fps)  # scored and pruned by vqa_shap.long_video.aks.plan_aks


#: Sampler name -> its function over one input (see the module docstring).
SAMPLERS: dict[str, Sampler] = {
    "linspace": _linspace,
    "segment_midpoints": _segment_midpoints,
    "uniform_edges": _uniform_edges,
    "fps1_capped": _fps1_capped,
    "mvbench_bounds": _mvbench_bounds,
    "hd_epic_windows": _hd_epic_windows,
    "aks": _aks_candidates,
}


def get_sampler(name: str) -> Sampler:
    """The sampler registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]
