"""Frames from video files, frame folders and images, as uint8 ``[T, H, W, 3]`` RGB arrays.

Video files are decoded with decord where it is installed (Linux x86-64, as the paper) and with
PyAV otherwise; ``backend="decord"|"pyav"`` forces one. Both give identical frames (tested).
A frame's *index* is its position in presentation order; a frame folder's index is its file number
(``%05d.jpg``, first file 1, as MVBench's TVQA folders); an image file has the single index 0.

Resizing (``size=(height, width)``) squashes to exactly that size without keeping the aspect ratio,
as the paper's decord loaders do; video frames are resized with bicubic interpolation (FFmpeg's
default scaler), frame-folder images with Lanczos (as the paper's MVBench folder loader). Resizing
happens after decoding, so both backends give the same pixels.

Missing or undecodable files raise :class:`VideoError`, which names the path. decord 0.6 fails on
some files PyAV reads (e.g. 48-pixel-wide H.264); without a forced backend those fall back to PyAV.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vqa_shap.errors import VqaShapError

logger = logging.getLogger(__name__)

__all__ = [
    "VideoError", "VideoInfo", "BACKENDS", "available_backends", "default_backend", "video_info",
    "read_frames", "read_frames_at", "read_folder", "count_folder_frames", "read_image",
    "read_input", "is_image_file", "IMAGE_SUFFIXES",
]

#: Video decoding backends, in order of preference.
BACKENDS = ("decord", "pyav")
#: File suffixes read as single images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Frame files of a frame folder: ``00001.jpg`` …
_FOLDER_FRAME = re.compile(r"^(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


class VideoError(VqaShapError):
    """A video, frame folder or image is missing or cannot be decoded.

    Args:
        path: the file or folder.
        reason: what went wrong.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of a video file.

    Attributes:
        n_frames: number of decodable frames.
        fps: average frame rate.
        duration: ``n_frames / fps`` seconds (the same for both backends).
        width: frame width in pixels.
        height: frame height in pixels.
    """

    n_frames: int
    fps: float
    duration: float
    width: int
    height: int


def available_backends() -> list[str]:
    """The installed video backends, in order of preference."""
    modules = {"decord": "decord", "pyav": "av"}
    return [b for b in BACKENDS if importlib.util.find_spec(modules[b]) is not None]


def default_backend() -> str:
    """decord where installed, else PyAV."""
    backends = available_backends()
    if not backends:
        raise VqaShapError("no video backend: install decord or av (PyAV)")
    return backends[0]


def _backend(backend: str | None) -> str:
    if backend is None:
        return default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if backend not in available_backends():
        raise VqaShapError(f"video backend {backend!r} is not installed")
    return backend


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "file not found")
    return path


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` is read as a single image (by its suffix)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


# ---------------------------------------------------------------------------------------------
# video files
# ---------------------------------------------------------------------------------------------


def video_info(path: str | Path, backend: str | None = None) -> VideoInfo:
    """Frame count, frame rate, duration and size of a video file.

    Raises:
        VideoError: the file is missing or not a decodable video.
    """
    chosen = _backend(backend)
    path = _existing(path)
    try:
        n, fps, width, height = _info_decord(path) if chosen == "decord" else _pyav_info(path)
    except Exception as exc:  # noqa: BLE001 - backends raise their own error types
        if backend is None and chosen == "decord":
            return _fallback(path, exc, lambda: video_info(path, "pyav"))
        if isinstance(exc, VideoError):
            raise
        raise VideoError(path, f"cannot read video ({type(exc).__name__}: {exc})") from exc
    if n <= 0 or fps <= 0:
        raise VideoError(path, "no decodable video frames")
    return VideoInfo(n_frames=n, fps=fps, duration=n / fps, width=int(width), height=int(height))


def _fallback(path: Path, exc: Exception, with_pyav):
    """decord fails on some files PyAV reads (e.g. some frame widths): retry with PyAV when the
    backend was not forced."""
    if "pyav" not in available_backends():
        raise VideoError(path, f"cannot read video ({type(exc).__name__}: {exc})") from exc
    logger.debug("decord failed on %s (%s); using PyAV", path, exc)
    return with_pyav()


def _info_decord(path: Path) -> tuple[int, float, int, int]:
    import decord

    reader = decord.VideoReader(str(path))
    n, fps = len(reader), float(reader.get_avg_fps())
    height, width = reader[0].shape[:2] if n else (0, 0)
    return n, fps, width, height


def _pyav_info(path: Path) -> tuple[int, float, int, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(path, "no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        n = int(stream.frames or 0)
        if n <= 0:  # some containers do not store the count: count the packets that hold frames
            n = sum(1 for packet in container.demux(stream) if packet.size)
        return n, fps, stream.codec_context.width, stream.codec_context.height


def read_frames(path: str | Path, indices: Sequence[int], *, size: tuple[int, int] | None = None,
                backend: str | None = None) -> np.ndarray:
    """Decode the frames at ``indices`` (any order, repeats allowed) of a video file.

    Args:
        path: the video file.
        indices: frame indices in presentation order, ``0 <= i < n_frames``.
        size: optional ``(height, width)`` to squash every frame to.
        backend: ``"decord"`` or ``"pyav"``; default :func:`default_backend`.

    Returns:
        uint8 ``[len(indices), H, W, 3]`` RGB frames.

    Raises:
        VideoError: missing/undecodable file, or an index outside the video.
    """
    chosen = _backend(backend)
    path = _existing(path)
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError(f"{path}: no frame indices to read")
    try:
        frames = _read_decord(path, indices) if chosen == "decord" else _read_pyav(path, indices)
    except VideoError:
        raise
    except Exception as exc:  # noqa: BLE001 - backends raise their own error types
        if backend is None and chosen == "decord":
            frames = _fallback(path, exc, lambda: _read_pyav(path, indices))
        else:
            raise VideoError(path, f"cannot decode frames ({type(exc).__name__}: {exc})") from exc
    return _resize(frames, size, "bicubic")


def read_frames_at(path: str | Path, times: Sequence[float], *, size: tuple[int, int] | None = None,
                   backend: str | None = None) -> np.ndarray:
    """Decode the frames shown at ``times`` (seconds): frame ``floor(t * fps)``, clipped to the video."""
    info = video_info(path, backend)
    indices = [min(info.n_frames - 1, max(0, int(t * info.fps + 1e-6))) for t in times]
    return read_frames(path, indices, size=size, backend=backend)


def _check_range(path: Path, indices: list[int], n: int) -> None:
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise VideoError(path, f"frame indices {bad[:5]} outside the video's {n} frames")


def _read_decord(path: Path, indices: list[int]) -> np.ndarray:
    import decord

    reader = decord.VideoReader(str(path))
    _check_range(path, indices, len(reader))
    return np.asarray(reader.get_batch(indices).asnumpy(), dtype=np.uint8)


#: PyAV seeks (to the keyframe before a wanted frame) rather than decoding through gaps longer than this.
PYAV_SEEK_GAP = 250


class _Imprecise(Exception):
    """Decoded timestamps do not match the demuxed ones; read sequentially instead."""


def _read_pyav(path: Path, indices: list[int]) -> np.ndarray:
    """Frames by presentation index with PyAV.

    Indices are ranks of the packets' presentation timestamps (as decord counts them). Frames close
    together are decoded in one pass; across a gap longer than :data:`PYAV_SEEK_GAP` frames it seeks
    to the preceding keyframe, so a few frames of a long video cost a few GOPs, not the whole file.
    Streams whose decoded timestamps do not match their packets are read sequentially.
    """
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        pts = sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)
        _check_range(path, indices, len(pts))
        try:
            found = _read_pyav_seeking(container, stream, pts, sorted(set(indices)), PYAV_SEEK_GAP)
        except _Imprecise:
            container.seek(pts[0], stream=stream, backward=True, any_frame=False)
            found = _read_pyav_sequential(container, stream, set(indices))
    missing = sorted(set(indices) - set(found))
    if missing:
        raise VideoError(path, f"frames {missing[:5]} could not be decoded")
    return np.stack([found[i] for i in indices]).astype(np.uint8)


def _read_pyav_seeking(container, stream, pts: list[int], todo: list[int], seek_gap: int) -> dict[int, np.ndarray]:
    index_of = {t: i for i, t in enumerate(pts)}
    found: dict[int, np.ndarray] = {}
    k = 0
    while k < len(todo):
        container.seek(pts[todo[k]], stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            index = index_of.get(frame.pts)
            if index is None or index > todo[k]:
                raise _Imprecise
            if index == todo[k]:
                found[index] = frame.to_ndarray(format="rgb24")
                k += 1
                if k == len(todo) or todo[k] - index > seek_gap:
                    break
        else:
            break  # end of stream; the caller reports what is missing
    return found


def _read_pyav_sequential(container, stream, wanted: set[int]) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    last = max(wanted)
    for index, frame in enumerate(container.decode(stream)):
        if index in wanted:
            found[index] = frame.to_ndarray(format="rgb24")
        if index >= last:
            break
    return found


# ---------------------------------------------------------------------------------------------
# frame folders and images
# ---------------------------------------------------------------------------------------------


def _folder_files(path: Path) -> dict[int, Path]:
    if not path.is_dir():
        raise VideoError(path, "frame folder not found")
    files = {int(m.group(1)): p for p in path.iterdir() if (m := _FOLDER_FRAME.match(p.name))}
    if not files:
        raise VideoError(path, "frame folder holds no numbered frames (00001.jpg …)")
    return files


def count_folder_frames(path: str | Path) -> int:
    """Number of numbered frame files in a frame folder."""
    return len(_folder_files(Path(path)))


def read_folder(path: str | Path, indices: Sequence[int], *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read frames ``indices`` (file numbers, ``00001.jpg`` = 1) of a frame folder.

    Raises:
        VideoError: the folder, or a numbered file, is missing or unreadable.
    """
    path = Path(path)
    files = _folder_files(path)
    frames = []
    for i in indices:
        if int(i) not in files:
            raise VideoError(path / f"{int(i):05d}.jpg", "frame file not found")
        frames.append(_load_image(files[int(i)], size, "lanczos"))
    return np.stack(frames)


def read_image(path: str | Path, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as uint8 ``[H, W, 3]`` RGB."""
    return _load_image(_existing(path), size, "bicubic")


def _load_image(path: Path, size: tuple[int, int] | None, method: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if size is not None:
                image = image.resize((size[1], size[0]), _pil_filter(method))
            return np.asarray(image, dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types
        raise VideoError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc


def _pil_filter(method: str):
    from PIL import Image

    return {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}[method]


def _resize(frames: np.ndarray, size: tuple[int, int] | None, method: str) -> np.ndarray:
    if size is None or tuple(frames.shape[1:3]) == tuple(size):
        return frames
    from PIL import Image

    height, width = size
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), _pil_filter(method)))
                     for f in frames]).astype(np.uint8)


def read_input(path: str | Path, kind: str, indices: Sequence[int], *, size: tuple[int, int] | None = None,
               backend: str | None = None) -> np.ndarray:
    """Frames of one visual input, dispatched on its kind.

    Args:
        path: the file or folder.
        kind: ``"video"`` (a video file), ``"frames"`` (a frame folder) or ``"image"`` (an image file,
            or a frame of a video file when ``path`` is a video).
        indices: frame indices (see the module docstring).

    Returns:
        uint8 ``[len(indices), H, W, 3]``.
    """
    if kind == "frames":
        return read_folder(path, indices, size=size)
    if kind == "image" and is_image_file(path):
        return np.stack([read_image(path, size=size)] * len(indices))
    return read_frames(path, indices, size=size, backend=backend)
