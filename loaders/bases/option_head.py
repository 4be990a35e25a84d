"""The own-head family base: loaders that score each option with the model's own head
(FrozenBiLM's per-option P("Yes"), InternVideo's video-text similarity), not by letter logits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from vqa_shap.loaders.bases.loader import Loader, LoaderError

if TYPE_CHECKING:  # heavy or sibling imports only for type checkers
    import torch

    from vqa_shap.protocol.base import FramePlan, Protocol
    from vqa_shap.schema.records import Feature, Question

#: CLIP image normalisation (OpenAI).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class FramesPrepared:
    """What every own-head loader keeps of one question.

    Attributes:
        question, plan, protocol: as given to ``prepare``.
        features: the players (frames, then words).
        n_video: number of frame players (the first columns of a coalition).
        frames: the decoded frames, one uint8 ``[T, H, W, 3]`` array per kept input (for ``score_pixels``).
    """

    question: "Question"
    plan: "FramePlan"
    protocol: "Protocol"
    features: tuple["Feature", ...]
    n_video: int
    frames: tuple[np.ndarray, ...]

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_options(self) -> int:
        return self.question.n_options


class OptionHeadLoader(Loader):
    """Base of loaders that score each option with the model's own head (not letter logits): a
    ``PreTrainedModel`` and its tokenizer, loaded from a converted ``save_pretrained`` folder.

    Subclasses set ``model_class`` and ``convert_script`` and implement ``prepare`` and the two hot
    methods :meth:`score_batch` and :meth:`score_pixels_one`; validation and batching live here.

    Args:
        model: the model (put in eval mode).
        tokenizer: its tokenizer.
        checkpoint: where it came from (messages).
        batch_size: coalitions per forward.
    """

    #: The family's ``PreTrainedModel`` subclass (its ``config_class.model_type`` is checked on load).
    model_class: type | None = None
    convert_script: str = ""

    def __init__(self, model, tokenizer, *, checkpoint: str = "", batch_size: int = 8, **_ignored):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.checkpoint = checkpoint
        self.batch_size = int(batch_size)

    @classmethod
    def load(cls, checkpoint: str, *, device: str | None = None, dtype: str | None = None,
             batch_size: int = 8, **kw) -> "OptionHeadLoader":
        """Load a folder written by the family's conversion script (or a tiny random one).

        ``dtype`` ``None``/``"auto"`` means float32 (the paper's precision) on every device.

        Raises:
            LoaderError: not such a folder, another model type, or weights missing/unexpected.
        """
        import torch
        from transformers import AutoTokenizer

        from vqa_shap.device import resolve_runtime
        from vqa_shap.loaders.rebuilt.checkpoints import from_pretrained_exact

        runtime = resolve_runtime(device=device, dtype=dtype if dtype not in (None, "auto") else "float32")
        try:
            tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            model = from_pretrained_exact(cls.model_class, checkpoint, getattr(torch, runtime.dtype))
        except (OSError, ValueError) as exc:
            raise LoaderError(f"cannot load {cls.family} checkpoint {checkpoint!r} (original files must first be "
                              f"converted with scripts/{cls.convert_script}): {exc}") from exc
        return cls(model.to(runtime.device), tokenizer, checkpoint=str(checkpoint), batch_size=batch_size)

    def frames_prepared(self, question: "Question", frames: Sequence[np.ndarray], plan: "FramePlan",
                        protocol: "Protocol") -> FramesPrepared:
        """Validate the frames against the plan and list the players.

        Raises:
            UnsupportedQuestionError: no frames.
            LoaderError: frames that do not match the plan.
        """
        frames, units, features = self._players(question, frames, plan, protocol)
        return FramesPrepared(question, plan, protocol, features, len(units), frames)

    def score(self, prepared: FramesPrepared, coalitions: np.ndarray) -> np.ndarray:
        """Option scores of masked inputs (cached), ``batch_size`` coalitions per :meth:`score_batch`.

        Args:
            prepared: from ``prepare``.
            coalitions: ``bool[B, F]`` (True = keep).

        Returns:
            ``float32[B, K]``.
        """
        import torch

        masks = self._check(prepared, coalitions)
        out = np.empty((len(masks), prepared.n_options), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(masks), self.batch_size):
                batch = masks[start:start + self.batch_size]
                out[start:start + len(batch)] = self.score_batch(prepared, batch)
        return out

    def score_pixels(self, prepared: FramesPrepared, coalitions: np.ndarray) -> np.ndarray:
        """The uncached reference, one coalition at a time (:meth:`score_pixels_one`); equals :meth:`score`."""
        import torch

        masks = self._check(prepared, coalitions)
        out = np.empty((len(masks), prepared.n_options), dtype=np.float32)
        with torch.inference_mode():
            for b, mask in enumerate(masks):
                out[b] = self.score_pixels_one(prepared, mask)
        return out

    def score_batch(self, prepared: FramesPrepared, masks: np.ndarray) -> np.ndarray:
        """``bool[b, F]`` validated coalitions -> ``[b, K]`` scores from the cached parts of ``prepared``."""
        raise NotImplementedError

    def score_pixels_one(self, prepared: FramesPrepared, mask: np.ndarray) -> np.ndarray:
        """``bool[F]`` one validated coalition -> ``[K]`` scores with the input masked and no caching."""
        raise NotImplementedError


def clip_pixels(frames: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float], *, device=None,
                dtype=None, resize_short: int | None = None) -> "torch.Tensor":
    """uint8 ``[T, H, W, 3]`` frames -> CLIP-normalised ``[T, 3, size, size]``.

    Frames are squashed to ``size x size`` (bilinear, antialiased), as the paper's shared loaders
    decode at a fixed size; with ``resize_short`` they are then resized to ``resize_short`` and
    centre-cropped to ``size`` (InternVideo's test transform).
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255.0)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if resize_short is not None and resize_short != size:
        x = F.interpolate(x, size=(resize_short, resize_short), mode="bilinear", antialias=True, align_corners=False)
        top = (resize_short - size) // 2
        x = x[..., top:top + size, top:top + size]
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return x.to(device=device, dtype=dtype or torch.float32).contiguous()
