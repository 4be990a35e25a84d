"""The abstract loader and what it prepares: one model family = one small subclass.

:class:`Loader` is the minimal interface every family implements (``load``, ``prepare``, ``score``,
``score_pixels``); :class:`Prepared` and :class:`VideoUnit` describe one prepared question. The two
family bases build on it:

* :class:`~vqa_shap.loaders.bases.option_head.OptionHeadLoader` (with ``FramesPrepared`` and
  ``clip_pixels``): families that score each option with the model's own head (FrozenBiLM,
  InternVideo);
* :class:`~vqa_shap.loaders.bases.chat.ChatVLMLoader`: chat video-LLMs driven through a transformers
  processor and scored by option-letter logits (its hot path, batching and prefix sharing, is
  :mod:`vqa_shap.loaders.bases.chat_scoring`).

Transformers compatibility shims (``kv_cache``, ``returned_cache``) live in
:mod:`vqa_shap.loaders.bases.compat`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from vqa_shap.errors import VqaShapError

if TYPE_CHECKING:  # heavy or sibling imports only for type checkers
    from vqa_shap.protocol.base import FramePlan, Protocol
    from vqa_shap.schema.records import Feature, Question

class LoaderError(VqaShapError):
    """A model cannot be loaded, or cannot take a question (explain records it per question)."""


class UnsupportedQuestionError(LoaderError, ValueError):
    """The question cannot be scored by this model (e.g. more options than letter tokens)."""


@dataclass(frozen=True)
class VideoUnit:
    """One video player: the frames (per kept input) it covers.

    Attributes:
        input: position of the input among the plan's kept inputs (index into ``frames``).
        frames: frame positions within that input's array.
    """

    input: int
    frames: tuple[int, ...]


@dataclass(frozen=True)
class Prepared:
    """Everything about one question that does not depend on the mask.

    Attributes:
        question: the question.
        plan: its frame plan.
        protocol: the protocol that renders prompts.
        features: the players (video units first, then text words).
        n_video: number of video players ``V`` (first ``V`` coalition columns).
        units: the frames of each video player.
        letter_ids: token id of each option letter (K).
        baseline: ``"black"`` or ``"normalized_zero"``.
        frames: the decoded frames, one uint8 ``[T, H, W, 3]`` array per kept input (for
            :meth:`Loader.score_pixels`).
        kept_embeds: ``[N, H]`` embedding of every video token with all frames kept.
        masked_embeds: ``[N, H]`` the same tokens with their frame replaced by the baseline frame.
        token_unit: ``[N]`` player index of each video token (-1: not a frame token, always kept).
        blocks: the expanded token ids of each input's placeholder.
        extras: family-specific tensors (grids, timings) for the forward.
        cache: per text mask, its token ids (and positions); filled lazily by ``score``.
    """

    question: "Question"
    plan: "FramePlan"
    protocol: "Protocol"
    features: tuple["Feature", ...]
    n_video: int
    units: tuple[VideoUnit, ...]
    letter_ids: tuple[int, ...]
    baseline: str
    frames: tuple[np.ndarray, ...]
    kept_embeds: Any
    masked_embeds: Any
    token_unit: Any
    blocks: tuple[tuple[int, ...], ...]
    extras: dict[str, Any] = field(default_factory=dict)
    cache: dict[bytes, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_options(self) -> int:
        return len(self.letter_ids)


class Loader:
    """The minimal interface of a model loader: one subclass per model family.

    The explain pipeline, the masking benchmark and the Game only use this interface, so a family
    that is not a chat VLM (FrozenBiLM's per-option P("Yes"), InternVideo's video-text similarity)
    subclasses it directly. Chat video-LLMs scored by option-letter logits subclass
    :class:`ChatVLMLoader`, which implements everything below for transformers processors.

    Class attributes: ``family`` (registry name), ``temporal_unit`` (frames per video player),
    ``exact_cached_masking`` (cached masking equals pixel masking; proven by tests).
    """

    family: str = ""
    temporal_unit: int = 1
    exact_cached_masking: bool = True

    @classmethod
    def load(cls, checkpoint: str, *, device: str | None = None, dtype: str | None = None,
             batch_size: int = 8, **kw) -> "Loader":
        """Load a checkpoint (Hub id or local folder); ``None`` device/dtype = automatic."""
        raise NotImplementedError

    @property
    def max_options(self) -> int:
        """The most options one question may have for this model."""
        raise NotImplementedError

    @property
    def device(self):
        return self.model.device

    def prepare(self, question: "Question", frames: Sequence[np.ndarray], plan: "FramePlan",
                protocol: "Protocol"):
        """Everything about one question that does not depend on the mask, computed once."""
        raise NotImplementedError

    def score(self, prepared, coalitions: np.ndarray) -> np.ndarray:
        """``bool[B, F]`` coalitions -> ``float32[B, K]`` option scores (cached, batched)."""
        raise NotImplementedError

    def score_pixels(self, prepared, coalitions: np.ndarray) -> np.ndarray:
        """The uncached reference path (mask the input, run the whole model); equals :meth:`score`."""
        raise NotImplementedError

    def _check(self, prepared: Prepared, coalitions: np.ndarray) -> np.ndarray:
        masks = np.asarray(coalitions)
        if masks.ndim == 1:
            masks = masks[None]
        if masks.ndim != 2 or masks.shape[1] != prepared.n_features:
            raise ValueError(f"coalitions must be bool[B, {prepared.n_features}] for question "
                             f"{prepared.question.qid!r}, got shape {masks.shape}")
        if masks.dtype != bool:
            if not np.isin(masks, (0, 1)).all():
                raise ValueError("coalitions must be boolean (or 0/1)")
            masks = masks.astype(bool)
        return masks

    def _players(self, question: "Question", frames: Sequence[np.ndarray], plan: "FramePlan", protocol: "Protocol"
                 ) -> tuple[tuple[np.ndarray, ...], tuple[VideoUnit, ...], tuple["Feature", ...]]:
        """``(frames as contiguous uint8, video players, all players)`` of one question, validated.

        Raises:
            UnsupportedQuestionError: no frames.
            LoaderError: frames that do not match the plan.
        """
        if plan is None or len(plan) == 0:
            raise UnsupportedQuestionError(f"question {question.qid!r} has no frames to show {self.family}")
        frames = tuple(np.ascontiguousarray(f, dtype=np.uint8) for f in frames)
        units = self._units(question, frames, plan, protocol)
        return frames, units, tuple(protocol.features(question, plan, self.temporal_unit))

    def _units(self, question, frames, plan, protocol) -> tuple[VideoUnit, ...]:
        """Validate the decoded frames against the plan and group them into video players."""
        inputs = plan.inputs
        if len(frames) != len(inputs):
            raise LoaderError(f"question {question.qid!r}: {len(frames)} frame arrays for "
                              f"{len(inputs)} kept inputs of the plan")
        starts, offset = {}, 0
        for k, i in enumerate(inputs):
            starts[i] = (k, offset)
            n = sum(1 for f in plan.frames if f.input == i)
            if frames[k].ndim != 4 or frames[k].shape[0] != n or frames[k].shape[-1] != 3:
                raise LoaderError(f"question {question.qid!r}: input {k} frames have shape "
                                  f"{frames[k].shape}, expected [{n}, H, W, 3]")
            offset += n
        units = []
        for group in protocol.frame_groups(plan, self.temporal_unit):
            k, first = starts[plan.frames[group[0]].input]
            units.append(VideoUnit(k, tuple(p - first for p in group)))
        if len(units) != protocol.n_video_players(plan, self.temporal_unit):
            raise LoaderError(f"question {question.qid!r}: frames of the plan are not grouped by input")
        return tuple(units)
