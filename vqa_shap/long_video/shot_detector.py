"""The shot-detector base: one hot method (:meth:`ShotDetector.cuts`), validated around each detector's
``_cuts``. Detectors and their registry are in :mod:`vqa_shap.long_video.shots`; the TransNet V2
detector (:mod:`vqa_shap.long_video.transnet`) builds on this module alone."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vqa_shap.errors import VqaShapError

#: Frames are decoded at this ``(height, width)`` for detection: cuts are coarse, so small is enough
#: and an hour-long video stays cheap to scan.
DETECT_SIZE = (64, 64)


class ShotError(VqaShapError, ValueError):
    """Frames or settings a shot detector cannot work with."""


class ShotDetector:
    """Base class: finds the cuts in a sequence of frames.

    Subclasses set :attr:`name` and implement :meth:`_cuts`; :meth:`cuts` validates around it.
    """

    name: str = ""
    #: ``(height, width)`` :func:`~vqa_shap.long_video.shots.video_shots` decodes frames at for this detector.
    frame_size: tuple[int, int] = DETECT_SIZE

    @property
    def spec(self) -> str:
        """The value :func:`~vqa_shap.long_video.shots.get_detector` rebuilds this detector from (its name, or ``name:PATH``)."""
        return self.name

    def params(self) -> dict:
        """The settings that change the result (part of the cache key)."""
        return {}

    def cuts(self, frames: np.ndarray, fps: float = 1.0) -> tuple[int, ...]:
        """Indices of the first frame of every shot after the first (sorted, in ``1..T-1``).

        Args:
            frames: uint8 ``[T, H, W, 3]`` RGB frames in time order.
            fps: their frame rate (detectors whose settings are in seconds use it).

        Raises:
            ShotError: the frames are not a uint8 ``[T, H, W, 3]`` array.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ShotError(f"{self.name} shot detector needs uint8 [T, H, W, 3] frames, got {frames.dtype} {frames.shape}")
        if len(frames) < 2:
            return ()
        found = sorted({int(c) for c in self._cuts(frames, float(fps))})
        if found and (found[0] < 1 or found[-1] >= len(frames)):
            raise ShotError(f"{self.name} shot detector returned cut(s) outside 1..{len(frames) - 1}: {found}")
        return tuple(found)

    def _cuts(self, frames: np.ndarray, fps: float) -> Sequence[int]:
        raise NotImplementedError
