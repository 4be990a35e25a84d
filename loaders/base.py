"""Loader base classes: one model family = one small subclass.

:class:`Loader` is the minimal interface every family implements (``load``, ``prepare``, ``score``,
``score_pixels``). :class:`OptionHeadLoader` (with :class:`FramesPrepared` and :func:`clip_pixels`) is
the base of the families that score each option with the model's own head (FrozenBiLM, InternVideo).
:class:`ChatVLMLoader` implements the interface for chat video-LLMs driven through a transformers
processor and scored by option-letter logits; the rest of this docstring describes it.

A chat loader turns a question, its decoded frames and a coalition matrix into option-letter logits.
Everything that does not depend on the mask happens once in :meth:`ChatVLMLoader.prepare`:

* the real transformers processor runs once on the unmasked prompt and frames (pixel values,
  placeholder expansion);
* the vision tower runs once for all frames and once per input for the baseline (masked) frame;
  per video token we keep its "kept" and its "masked" embedding and the player it belongs to;
* each placeholder's expanded token block is learned from the processor's output, so a masked
  prompt is tokenised with the tokenizer alone (checked against the processor in ``prepare``).

:meth:`Loader.score` then only picks, per coalition, kept or baseline embeddings per video token,
tokenises the masked text (cached per distinct text mask) and runs the language model with
``logits_to_keep=1``, in batches. With ``prefix_sharing`` (default) the coalitions that share the
same video part and the same tokens up to the last video token run that prefix once; its key/value
cache is expanded over a batch of text suffixes (DESIGN.md "Performance design").

:meth:`Loader.score_pixels` is the reference: it masks pixels and runs the full processor and the full
model forward per coalition, with no caching at all (the paper's way). Tests prove
``score == score_pixels`` on tiny models of every family.

Subclasses provide the family's prompt string, processor call, vision encoding and pixel-level
masking; validation, batching, padding and prefix sharing live here.
"""

from __future__ import annotations

import functools
import inspect
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from vqa_shap.errors import VqaShapError

if TYPE_CHECKING:  # heavy or sibling imports only for type checkers
    import torch

    from vqa_shap.protocol import FramePlan, Prompt, Protocol
    from vqa_shap.schema import Feature, Question


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


@dataclass(frozen=True)
class _Row:
    """One coalition ready for the language model."""

    ids: "torch.Tensor"        # [L] token ids of the masked prompt
    positions: "torch.Tensor"  # [L] or [3, L] position ids
    video: bytes               # the coalition's video part (group key)
    split: int                 # prefix length: up to and including the last video token


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


# ---------------------------------------------------------------------------------------------
# loaders that score each option with the model's own head (FrozenBiLM, InternVideo)
# ---------------------------------------------------------------------------------------------

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
        from vqa_shap.loaders.checkpoints import from_pretrained_exact

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


def kv_cache(forward_owner, cache) -> dict[str, Any]:
    """Keyword arguments that hand a key/value ``cache`` (or ``None``: no cache) to a transformers forward.

    transformers 5.24 renamed the argument ``past_key_values`` to ``cache`` (the old name warns and is
    to go in 5.40); the name is taken from the module's own ``forward`` so both kinds of release work.
    """
    return {_cache_keyword(type(forward_owner)): cache, "use_cache": cache is not None}


@functools.lru_cache(maxsize=None)
def _cache_keyword(module_type: type) -> str:
    return "cache" if "cache" in inspect.signature(module_type.forward).parameters else "past_key_values"


def returned_cache(output) -> Any:
    """The key/value cache in a transformers model output (``cache`` from 5.24, ``past_key_values`` before)."""
    return output["cache"] if "cache" in output else output.get("past_key_values")


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


# ---------------------------------------------------------------------------------------------
# chat video-LLMs scored by option-letter logits
# ---------------------------------------------------------------------------------------------


class ChatVLMLoader(Loader):
    """Base class of chat video-LLM loaders scored by the option-letter logits.

    Class attributes besides :class:`Loader`'s: ``video_token`` (the processor's video placeholder
    token), ``model_class_name`` (the transformers class, see :meth:`model_class`).

    Args:
        model: the transformers model (eval mode).
        processor: its processor.
        checkpoint: where it was loaded from (for messages).
        batch_size: coalitions per forward pass.
        prefix_sharing: run the prompt prefix once per distinct video part (exact; faster).
    """

    video_token: str = "<video>"
    #: Name of the transformers ``*ForConditionalGeneration`` class of the family.
    model_class_name: str = ""
    #: Distinct text masks whose token ids (and positions) are kept per prepared question.
    token_cache_size: int = 256

    def __init__(self, model, processor, *, checkpoint: str = "", batch_size: int = 8,
                 prefix_sharing: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.checkpoint = checkpoint
        self.batch_size = int(batch_size)
        self.prefix_sharing = bool(prefix_sharing)
        self.video_token_id = self.placeholder_token_id()
        self.letters = self._single_token_letters()

    def placeholder_token_id(self) -> int:
        """The id that stands for one video token in the prompt's ids (the model config's ``video_token_id``)."""
        return int(self.model.config.video_token_id)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, checkpoint: str, *, device: str | None = None, dtype: str | None = None,
             attn_implementation: str | None = None, batch_size: int = 8, prefix_sharing: bool = True,
             **kw) -> "Loader":
        """Load a checkpoint (Hub id or local ``save_pretrained`` folder with its processor).

        Args:
            checkpoint: Hub id or folder.
            device, dtype, attn_implementation: ``None`` = automatic (:mod:`vqa_shap.device`).
            batch_size: coalitions per forward pass.
            prefix_sharing: share the prompt prefix's key/value cache across coalitions.
            **kw: passed to ``from_pretrained`` of the model.

        Raises:
            LoaderError: the checkpoint or its processor cannot be loaded.
        """
        import torch
        from transformers import AutoProcessor

        from vqa_shap.device import resolve_runtime

        runtime = resolve_runtime(device=device, dtype=dtype, attn_implementation=attn_implementation)
        try:
            processor = AutoProcessor.from_pretrained(checkpoint)
            model = cls.model_class().from_pretrained(
                checkpoint, dtype=getattr(torch, runtime.dtype),
                attn_implementation=runtime.attn_implementation, **kw)
        except (OSError, ValueError) as exc:
            raise LoaderError(f"cannot load {cls.family} checkpoint {checkpoint!r}: {exc}") from exc
        model = model.to(runtime.device).eval()
        return cls(model, processor, checkpoint=str(checkpoint), batch_size=batch_size,
                   prefix_sharing=prefix_sharing)

    @classmethod
    def model_class(cls):
        """The transformers ``*ForConditionalGeneration`` class of the family (:attr:`model_class_name`)."""
        import transformers

        return getattr(transformers, cls.model_class_name)

    @property
    def dtype(self):
        return self.model.dtype

    @property
    def max_options(self) -> int:
        """How many options the tokenizer can letter (A, B, … as single tokens)."""
        return len(self.letters)

    def _single_token_letters(self) -> str:
        letters = ""
        for letter in string.ascii_uppercase:
            ids = self.tokenizer.encode(letter, add_special_tokens=False)
            if len(ids) != 1 or ids[0] == self.tokenizer.unk_token_id:
                break
            letters += letter
        return letters

    def letter_ids(self, question: "Question") -> tuple[int, ...]:
        """Token ids of the option letters of ``question``.

        Raises:
            UnsupportedQuestionError: more options than single-token letters.
        """
        k = question.n_options
        if k > self.max_options:
            raise UnsupportedQuestionError(
                f"question {question.qid!r} has {k} options; {self.family} checkpoint {self.checkpoint!r} "
                f"has single-token letters only for {self.max_options} (A-{self.letters[-1:] or '?'})")
        return tuple(self.tokenizer.encode(self.letters[i], add_special_tokens=False)[0] for i in range(k))

    # ------------------------------------------------------------------ prepare
    def prepare(self, question: "Question", frames: Sequence[np.ndarray], plan: "FramePlan",
                protocol: "Protocol") -> Prepared:
        """Run everything that does not depend on the mask, once.

        Args:
            question: the question.
            frames: one uint8 ``[T, H, W, 3]`` array per kept input of ``plan`` (``protocol.load_frames``).
            plan: the frame plan.
            protocol: the protocol (prompt text, players, baseline).

        Raises:
            UnsupportedQuestionError: the family cannot take this question.
        """
        import torch

        letter_ids = self.letter_ids(question)
        frames, units, features = self._players(question, frames, plan, protocol)
        n_text = len(features) - len(units)
        baseline = protocol.frame_baseline(self.family)
        if baseline not in ("black", "normalized_zero"):
            raise LoaderError(f"unknown frame baseline {baseline!r} from protocol {protocol.name!r}")
        prompt = protocol.render(question, plan, np.ones(n_text, dtype=bool))
        text = self.prompt_text(prompt)
        with torch.inference_mode():
            inputs = self.process(text, list(frames), prompt)
            full_ids = [int(i) for i in inputs["input_ids"][0]]
            blocks = self._learn_blocks(question, text, full_ids, inputs)
            kept, token_unit, extras = self.encode_video(inputs, units, frames)
            masked = self.encode_baseline(inputs, units, frames, baseline, kept, token_unit)
        if kept.shape[0] != sum(1 for i in full_ids if i == self.video_token_id):
            raise LoaderError(f"{self.family}: {kept.shape[0]} video embeddings for "
                              f"{full_ids.count(self.video_token_id)} video tokens ({question.qid!r})")
        prepared = Prepared(
            question=question, plan=plan, protocol=protocol, features=features, n_video=len(units),
            units=units, letter_ids=letter_ids, baseline=baseline, frames=frames,
            kept_embeds=kept.to(self.dtype), masked_embeds=masked.to(self.dtype),
            token_unit=token_unit.to(self.device), blocks=blocks, extras=extras,
        )
        self.check_processor_ids(prepared, inputs)
        return prepared

    def _learn_blocks(self, question, text: str, full_ids: list[int], inputs) -> tuple[tuple[int, ...], ...]:
        """Split the processor's ids into text pieces and one expanded block per placeholder."""
        raw = self.tokenize(text)
        pieces = _split(raw, self.video_token_id)
        counts = self.video_tokens_per_input(inputs)
        if len(pieces) != len(counts) + 1:
            raise LoaderError(f"{self.family}: prompt of {question.qid!r} has {len(pieces) - 1} video "
                              f"placeholders for {len(counts)} inputs")
        blocks, pos = [], 0
        for piece, count in zip(pieces, counts):
            if full_ids[pos:pos + len(piece)] != piece:
                raise LoaderError(f"{self.family}: tokenizer and processor disagree on the prompt of "
                                  f"{question.qid!r}; cannot cache its tokenisation")
            pos += len(piece)
            start, seen = pos, 0
            while seen < count:  # the block ends at this input's last video token
                seen += full_ids[pos] == self.video_token_id
                pos += 1
            blocks.append(tuple(full_ids[start:pos]))
        if full_ids[pos:] != pieces[-1]:
            raise LoaderError(f"{self.family}: tokenizer and processor disagree on the prompt of "
                              f"{question.qid!r}; cannot cache its tokenisation")
        return tuple(blocks)

    def check_processor_ids(self, prepared: Prepared, inputs) -> None:
        """Check the cached tokenisation of the unmasked prompt against the processor's."""
        row = self._row(prepared, np.ones(prepared.n_features, dtype=bool))
        if row.ids.tolist() != [int(i) for i in inputs["input_ids"][0]]:
            raise LoaderError(f"{self.family}: cached tokenisation differs from the processor's "
                              f"for {prepared.question.qid!r}")

    # ------------------------------------------------------------------ scoring
    def score(self, prepared: Prepared, coalitions: np.ndarray) -> np.ndarray:
        """Option-letter logits of masked inputs, from cached vision features.

        Args:
            prepared: from :meth:`prepare`.
            coalitions: ``bool[B, F]`` (True = keep the player).

        Returns:
            ``float32[B, K]``: the next-token logits of the option letters.
        """
        import torch

        masks = self._check(prepared, coalitions)
        out = np.empty((len(masks), prepared.n_options), dtype=np.float32)
        with torch.inference_mode():
            rows = [self._row(prepared, m) for m in masks]
            if self.prefix_sharing:
                groups: dict[tuple, list[int]] = {}
                for b, row in enumerate(rows):
                    key = (row.video, row.split, row.ids[:row.split].numpy().tobytes())
                    groups.setdefault(key, []).append(b)
                alone = []  # a prefix used once gains nothing: batch those through the full path
                for members in groups.values():
                    if len(members) == 1:
                        alone += members
                    else:
                        self._score_shared(prepared, masks, rows, members, out)
                for start in range(0, len(alone), self.batch_size):
                    self._score_full(prepared, masks, rows, alone[start:start + self.batch_size], out)
            else:
                for start in range(0, len(rows), self.batch_size):
                    batch = list(range(start, min(start + self.batch_size, len(rows))))
                    self._score_full(prepared, masks, rows, batch, out)
        return out

    def token_ids(self, prepared: Prepared, coalition: np.ndarray) -> list[int]:
        """The token ids one coalition is scored with (video placeholders expanded)."""
        return self._row(prepared, self._check(prepared, coalition)[0]).ids.tolist()

    def _row(self, prepared: Prepared, mask: np.ndarray) -> _Row:
        import torch

        text_keep = mask[prepared.n_video:]
        key = np.packbits(text_keep).tobytes() + len(text_keep).to_bytes(4, "little")
        cached = prepared.cache.get(key)
        if cached is None:
            prompt = prepared.protocol.render(prepared.question, prepared.plan, text_keep)
            pieces = _split(self.tokenize(self.prompt_text(prompt)), self.video_token_id)
            if len(pieces) != len(prepared.blocks) + 1:
                raise LoaderError(f"{self.family}: masked prompt of {prepared.question.qid!r} lost a video placeholder")
            ids = list(pieces[0])
            for block, piece in zip(prepared.blocks, pieces[1:]):
                ids += block
                ids += piece
            ids_t = torch.tensor(ids, dtype=torch.long)
            video_pos = (ids_t == self.video_token_id).nonzero()
            split = int(video_pos[-1]) + 1 if len(video_pos) else 0
            cached = (ids_t, self.position_ids(prepared, ids_t), split)
            if len(prepared.cache) >= self.token_cache_size:  # bounded: long prompts are large
                prepared.cache.pop(next(iter(prepared.cache)))
            prepared.cache[key] = cached
        ids_t, positions, split = cached
        return _Row(ids_t, positions, np.packbits(mask[:prepared.n_video]).tobytes(), split)

    def _video_embeds(self, prepared: Prepared, video_keep: np.ndarray) -> "torch.Tensor":
        import torch

        keep = torch.as_tensor(np.append(video_keep, True), device=self.device)
        return torch.where(keep[prepared.token_unit][:, None], prepared.kept_embeds, prepared.masked_embeds)

    def _embed(self, prepared: Prepared, ids: "torch.Tensor", video_keep: np.ndarray | None) -> "torch.Tensor":
        ids = ids.to(self.device)
        embeds = self.model.get_input_embeddings()(ids)
        if video_keep is not None:
            slots = ids == self.video_token_id
            if int(slots.sum()):
                embeds = embeds.clone()
                embeds[slots] = self._video_embeds(prepared, video_keep)
        return embeds

    def _score_full(self, prepared, masks, rows, batch, out) -> None:
        """Plain batched forward of whole prompts (right-padded if the family allows, else left-padded)."""
        import torch

        if self.right_padding:
            self._score_right_padded(prepared, masks, rows, batch, out)
            return
        length = max(rows[b].ids.shape[0] for b in batch)
        hidden = self.model.get_input_embeddings().weight.shape[1]
        embeds = torch.zeros(len(batch), length, hidden, dtype=self.dtype, device=self.device)
        attention = torch.zeros(len(batch), length, dtype=torch.long, device=self.device)
        positions = self._empty_positions(len(batch), length, rows[batch[0]].positions)
        for j, b in enumerate(batch):
            n = rows[b].ids.shape[0]
            embeds[j, length - n:] = self._embed(prepared, rows[b].ids, masks[b, :prepared.n_video])
            attention[j, length - n:] = 1
            positions[..., j, length - n:] = rows[b].positions
        logits, _ = self.forward_last(embeds, attention, positions, None)
        self._read(prepared, logits, batch, out)

    def _score_right_padded(self, prepared, masks, rows, batch, out) -> None:
        """Right padding needs no attention mask: under the causal mask no real token attends to the
        padding after it, so each row computes exactly as alone, and attention keeps its fast
        mask-free kernel (a padding mask forces sdpa's slower masked path on CPU). Each row's scores
        are read at its own last token."""
        import torch

        lengths = [rows[b].ids.shape[0] for b in batch]
        length = max(lengths)
        hidden = self.model.get_input_embeddings().weight.shape[1]
        embeds = torch.zeros(len(batch), length, hidden, dtype=self.dtype, device=self.device)
        positions = self._empty_positions(len(batch), length, rows[batch[0]].positions)
        for j, b in enumerate(batch):
            n = lengths[j]
            embeds[j, :n] = self._embed(prepared, rows[b].ids, masks[b, :prepared.n_video])
            positions[..., j, :n] = rows[b].positions
            # padding continues the positions: a position reset would read as a packed second sequence
            positions[..., j, n:] = rows[b].positions[..., -1:] + torch.arange(1, length - n + 1)
        last = torch.tensor(lengths, device=self.device) - 1
        self._read(prepared, self.forward_at(embeds, positions, last), batch, out)

    def _score_shared(self, prepared, masks, rows, members, out) -> None:
        """Run the shared prefix once, then the text suffixes in batches on its key/value cache."""
        import torch
        from transformers import DynamicCache

        first = rows[members[0]]
        prefix_len = first.split
        if prefix_len == 0 or prefix_len >= first.ids.shape[0]:  # nothing to share
            for start in range(0, len(members), self.batch_size):
                self._score_full(prepared, masks, rows, members[start:start + self.batch_size], out)
            return
        prefix = self._embed(prepared, first.ids[:prefix_len], masks[members[0], :prepared.n_video])[None]
        prefix_pos = first.positions[..., :prefix_len][..., None, :].to(self.device)
        ones = torch.ones(1, prefix_len, dtype=torch.long, device=self.device)
        _, cache = self.forward_last(prefix, ones, prefix_pos, DynamicCache(config=self.text_config()))
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        hidden = self.model.get_input_embeddings().weight.shape[1]
        for start in range(0, len(members), self.batch_size):
            batch = members[start:start + self.batch_size]
            length = max(rows[b].ids.shape[0] - prefix_len for b in batch)
            embeds = torch.zeros(len(batch), length, hidden, dtype=self.dtype, device=self.device)
            attention = torch.zeros(len(batch), prefix_len + length, dtype=torch.long, device=self.device)
            attention[:, :prefix_len] = 1
            positions = self._empty_positions(len(batch), length, first.positions)
            for j, b in enumerate(batch):
                n = rows[b].ids.shape[0] - prefix_len
                embeds[j, length - n:] = self._embed(prepared, rows[b].ids[prefix_len:], None)
                attention[j, prefix_len + length - n:] = 1
                positions[..., j, length - n:] = rows[b].positions[..., prefix_len:]
                positions[..., j, :length - n] = rows[b].positions[..., prefix_len:prefix_len + 1]
            batch_cache = DynamicCache(config=self.text_config())
            for idx, (k, v) in enumerate(layers):
                shape = (len(batch),) + tuple(k.shape[1:])
                batch_cache.update(k.expand(shape).contiguous(), v.expand(shape).contiguous(), idx)
            logits, _ = self.forward_last(embeds, attention, positions, batch_cache)
            self._read(prepared, logits, batch, out)

    def _empty_positions(self, batch: int, length: int, like: "torch.Tensor") -> "torch.Tensor":
        import torch

        shape = (*like.shape[:-1], batch, length)
        return torch.zeros(shape, dtype=torch.long, device=self.device)

    @staticmethod
    def _read(prepared: Prepared, logits: "torch.Tensor", batch: list[int], out: np.ndarray) -> None:
        letters = logits[:, list(prepared.letter_ids)].float().cpu().numpy()
        out[batch] = letters

    # ------------------------------------------------------------------ reference
    def score_pixels(self, prepared: Prepared, coalitions: np.ndarray) -> np.ndarray:
        """The reference: mask pixels, full processor and full forward per coalition (no caching).

        Masked frames are the protocol's baseline: raw black frames before the processor
        (``"black"``) or zeros in the processor's output (``"normalized_zero"``).

        Returns:
            ``float32[B, K]`` option-letter logits.
        """
        import torch

        masks = self._check(prepared, coalitions)
        out = np.empty((len(masks), prepared.n_options), dtype=np.float32)
        for b, mask in enumerate(masks):
            with torch.inference_mode():
                logits = self.forward_pixels(self.pixel_inputs(prepared, mask))
            out[b] = logits[0, list(prepared.letter_ids)].float().cpu().numpy()
        return out

    def pixel_inputs(self, prepared: Prepared, mask: np.ndarray):
        """Processor outputs of one masked input, built from scratch (the paper's per-mask preprocessing).

        Masked frames become the protocol's baseline (black raw frames before the processor, or zeros
        in its output); masked words are blanks in the re-rendered prompt. Used by :meth:`score_pixels`
        and by the paper's pipeline (:mod:`vqa_shap.bench.paper_pipeline`).
        """
        mask = self._check(prepared, mask)[0]
        dropped = [u for u, keep in zip(prepared.units, mask[:prepared.n_video]) if not keep]
        frames = [f.copy() for f in prepared.frames]
        if prepared.baseline == "black":
            for unit in dropped:
                frames[unit.input][list(unit.frames)] = 0
        prompt = prepared.protocol.render(prepared.question, prepared.plan, mask[prepared.n_video:])
        inputs = self.process(self.prompt_text(prompt), frames, prompt)
        if prepared.baseline == "normalized_zero":
            self.zero_pixels(inputs, dropped)
        return inputs

    # ------------------------------------------------------------------ family hooks
    def prompt_text(self, prompt: "Prompt") -> str:
        """The full prompt string, with one ``video_token`` placeholder per kept input.

        ChatML as the paper's L-V prompt (SEED §3.6): system turn, user turn with the inputs
        (labelled ``"video 1: "`` … when there are several) then the instruction, assistant turn.
        """
        contents = "".join(self.input_text(i, labelled=len(prompt.inputs) > 1) for i in prompt.inputs)
        return (f"<|im_start|>system\n{prompt.system}<|im_end|>\n<|im_start|>user\n{contents}"
                f"{prompt.instruction}<|im_end|>\n<|im_start|>assistant\n")

    def input_text(self, visual_input, labelled: bool) -> str:
        """The user-turn text of one kept input: its placeholder line, prefixed by its label
        (``"video 1: "``) when the prompt has several inputs."""
        return f"{visual_input.label}: {self.video_placeholder()}\n" if labelled else f"{self.video_placeholder()}\n"

    def video_placeholder(self) -> str:
        """The text that stands for one video in :meth:`prompt_text`."""
        return self.video_token

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` exactly as the processor's tokenizer call makes them."""
        return list(self.tokenizer(text)["input_ids"])

    def process(self, text: str, frames: list[np.ndarray], prompt: "Prompt"):
        """The real processor on one prompt and its frames (tensors on the model's device)."""
        raise NotImplementedError

    def video_tokens_per_input(self, inputs) -> list[int]:
        """Number of video placeholder tokens each input expands to."""
        raise NotImplementedError

    def encode_video(self, inputs, units, frames) -> tuple["torch.Tensor", "torch.Tensor", dict]:
        """Vision tower on all frames once: ``(embeds[N, H], token_unit[N], extras)``."""
        raise NotImplementedError

    def encode_baseline(self, inputs, units, frames, baseline, kept, token_unit) -> "torch.Tensor":
        """``[N, H]``: every video token as if its frame were the baseline frame."""
        raise NotImplementedError

    def zero_pixels(self, inputs, dropped: list[VideoUnit]) -> None:
        """Zero the processor output of the ``dropped`` units in place (``normalized_zero``)."""
        raise NotImplementedError

    def forward_pixels(self, inputs) -> "torch.Tensor":
        """The full model forward on processor outputs: ``[1, vocab]`` logits of the next token."""
        out = self.model(**inputs, logits_to_keep=1)
        return out.logits[:, -1]

    def position_ids(self, prepared: Prepared, ids: "torch.Tensor") -> "torch.Tensor":
        """Position ids of one unpadded prompt (``[L]``; multimodal RoPE families return ``[3, L]``)."""
        import torch

        return torch.arange(ids.shape[0], dtype=torch.long)

    def text_config(self):
        """The language model's config (for its key/value cache)."""
        return self.model.config.get_text_config()

    def forward_last(self, embeds, attention_mask, position_ids, past_key_values):
        """Language model on ``embeds``: (next-token logits at the last position ``[B, vocab]``, cache)."""
        out = self.model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                         logits_to_keep=1, **kv_cache(self.model, past_key_values))
        return out.logits[:, -1], returned_cache(out)

    #: Batches of whole prompts are right-padded and run without an attention mask
    #: (:meth:`forward_at` must then be implemented); else left-padded through :meth:`forward_last`.
    right_padding: bool = False

    def forward_at(self, embeds, position_ids, last):
        """Language model on right-padded ``embeds`` without a mask: next-token logits ``[B, vocab]`` at
        each row's position ``last[b]`` (``logits_to_keep`` = the distinct last positions)."""
        import torch

        keep, index = torch.unique(last, return_inverse=True)
        out = self.model(inputs_embeds=embeds, position_ids=position_ids, use_cache=False, logits_to_keep=keep)
        return out.logits[torch.arange(len(last), device=last.device), index]


def zero_grid_slices(inputs, slices: Iterable[tuple[int, int]]) -> None:
    """Zero, in place, the ``pixel_values_videos`` rows of temporal slices ``(input, slice)``.

    For processors that flatten each video's patches slice after slice (``video_grid_thw`` = ``(t, h, w)``
    per input, ``h * w`` rows per slice): Qwen2.5-VL (a slice = a frame pair) and VideoLLaMA3 (a frame).
    """
    grids = inputs["video_grid_thw"].tolist()
    offsets = np.cumsum([0] + [t * h * w for t, h, w in grids])
    for k, m in slices:
        _, h, w = grids[k]
        start = int(offsets[k]) + m * h * w
        inputs["pixel_values_videos"][start:start + h * w] = 0


def _split(ids: Sequence[int], token: int) -> list[list[int]]:
    pieces: list[list[int]] = [[]]
    for i in ids:
        if i == token:
            pieces.append([])
        else:
            pieces[-1].append(int(i))
    return pieces
