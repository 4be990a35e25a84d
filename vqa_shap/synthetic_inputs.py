"""Synthetic videos, frame folders and images for tests and demos (the real videos are not
redistributable).

Videos are written with PyAV as H.264 in 4:4:4 at constant quality 0 (lossless VP9 for ``.webm``):
blocky random frames decode within a few levels of the written pixels, identically with decord and PyAV.
:func:`synthesize_inputs` creates every file a list of questions names under a video root.
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from vqa_shap.protocol.pollard2025 import FRAME_FOLDER_FPS
from vqa_shap.schema.records import Question

__all__ = ["write_video", "write_frame_folder", "write_image", "random_frames", "hold_frames", "shot_frames", "synthesize_inputs"]

#: Codec and options per file suffix (default: the ``.mp4`` entry); both near lossless.
_CODECS = {
    ".mp4": ("libx264", {"crf": "0", "preset": "ultrafast"}),
    ".webm": ("libvpx-vp9", {"lossless": "1", "deadline": "realtime", "cpu-used": "8"}),
}

#: Side of the flat colour blocks of :func:`random_frames` (big blocks survive compression).
BLOCK = 8


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write uint8 ``[T, H, W, 3]`` RGB frames as a video: H.264 4:4:4 at quality 0, or lossless VP9
    for ``.webm`` (MVBench has WebM files); the container follows the suffix.

    Args:
        path: output file; parent folders are created.
        frames: the frames; H and W must be even.
        fps: frame rate (may be fractional, e.g. 0.5 or 30000/1001).

    Returns:
        The path written.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"frame height and width must be even, got {frames.shape[1:3]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        codec, options = _CODECS.get(path.suffix.lower(), _CODECS[".mp4"])
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv444p"
        stream.options = dict(options)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_frame_folder(path: str | Path, frames: np.ndarray, quality: int = 95) -> Path:
    """Write frames as ``00001.jpg``, ``00002.jpg``, … (MVBench's frame-folder layout)."""
    from PIL import Image

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(np.asarray(frames), start=1):
        Image.fromarray(frame).save(path / f"{k:05d}.jpg", quality=quality, subsampling=0)
    return path


def write_image(path: str | Path, frame: np.ndarray) -> Path:
    """Write one uint8 ``[H, W, 3]`` frame as an image (format from the suffix)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(frame)).save(path)
    return path


def random_frames(n: int, size: tuple[int, int] = (64, 64), seed: int = 0) -> np.ndarray:
    """``n`` random frames of flat ``BLOCK``-pixel colour blocks (every frame distinct)."""
    height, width = size
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (n, math.ceil(height / BLOCK), math.ceil(width / BLOCK), 3), dtype=np.uint8)
    frames = blocks.repeat(BLOCK, axis=1).repeat(BLOCK, axis=2)
    return np.ascontiguousarray(frames[:, :height, :width])


def hold_frames(keys: np.ndarray, lengths: Iterable[int], seed: int = 0,
                noise: float = 4.0) -> tuple[np.ndarray, tuple[int, ...]]:
    """Frames made of shots: shot ``k`` holds ``keys[k]`` for ``lengths[k]`` frames, each frame with its
    own Gaussian pixel noise (standard deviation ``noise``) so a shot is not frozen.

    Returns:
        (uint8 ``[sum(lengths), H, W, 3]`` frames, the cuts: first frame of every shot after the first).
    """
    lengths = [int(n) for n in lengths]
    keys = np.asarray(keys)
    if not lengths or min(lengths) < 1 or len(lengths) != len(keys):
        raise ValueError(f"need one positive length per key frame, got {lengths} for {len(keys)} keys")
    rng = np.random.default_rng(seed)
    frames = np.repeat(keys, lengths, axis=0).astype(np.float64)
    frames += rng.normal(0.0, noise, frames.shape)
    cuts = tuple(int(c) for c in np.cumsum(lengths)[:-1])
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), cuts


def shot_frames(lengths: Iterable[int], size: tuple[int, int] = (64, 64), seed: int = 0,
                noise: float = 4.0) -> tuple[np.ndarray, tuple[int, ...]]:
    """Shots of distinct random-block frames (:func:`random_frames`) held ``lengths`` frames each
    (:func:`hold_frames`): a video whose cuts are known."""
    lengths = [int(n) for n in lengths]
    return hold_frames(random_frames(len(lengths), size, seed), lengths, seed, noise)


def synthesize_inputs(questions: Iterable[Question], video_root: str | Path, *, n_frames: int = 16,
                      size: tuple[int, int] = (64, 64), fps: float = 1.0, seed: int = 0,
                      overwrite: bool = False) -> list[Path]:
    """Create every file the questions' ``inputs`` name under ``video_root``.

    Videos get at least ``n_frames`` frames at ``fps`` and are long enough to cover every window end
    and image time that any input gives for the same path; frame folders get ``n_frames`` files (at
    least enough to cover their window at their own fps); image files one frame. Content is random
    blocks seeded from ``seed`` and the path, so the same call always writes the same files.

    Args:
        questions: the questions.
        video_root: the folder input paths are relative to.
        n_frames: minimum frames per video / frame folder.
        size: ``(height, width)`` of every frame (even numbers).
        fps: frame rate of the videos.
        seed: base random seed.
        overwrite: rewrite files that exist (default: keep them).

    Returns:
        The paths written (existing files that were kept are not listed).
    """
    from vqa_shap.video import is_image_file

    root = Path(video_root)
    counts: dict[tuple[str, str], int] = {}  # (kind, path) -> frames needed
    for question in questions:
        for inp in question.inputs:
            kind = "frames" if inp.kind == "frames" else ("image" if is_image_file(inp.path) else "video")
            reach = max([t for t in (inp.end, inp.start, inp.time) if t is not None] + [0.0])
            rate = (inp.fps or FRAME_FOLDER_FPS) if kind == "frames" else fps
            key = (kind, inp.path)
            counts[key] = max(counts.get(key, 1), n_frames, math.ceil((reach + 1.0) * rate))
    written = []
    for (kind, rel), count in sorted(counts.items(), key=lambda kv: kv[0][1]):
        path = root / rel
        if path.exists() and not overwrite:
            continue
        frames = random_frames(1 if kind == "image" else count, size, seed + zlib.crc32(rel.encode()))
        if kind == "image":
            written.append(write_image(path, frames[0]))
        elif kind == "frames":
            written.append(write_frame_folder(path, frames))
        else:
            written.append(write_video(path, frames, fps))
    return written
