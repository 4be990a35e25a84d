"""The chat-VLM family base: video-LLMs driven through a transformers processor, scored by the
option-letter logits.

A chat loader turns a question, its decoded frames and a coalition matrix into option-letter logits.
Everything that does not depend on the mask happens once in :meth:`ChatVLMLoader.prepare`:

* the real transformers processor runs once on the unmasked prompt and frames (pixel values,
  placeholder expansion);
* the vision tower runs once for all frames and once per input for the baseline (masked) frame;
  per video token we keep its "kept" and its "masked" embedding and the player it belongs to;
* each placeholder's expanded token block is learned from the processor's output, so a masked
  prompt is tokenised with the tokenizer alone (checked against the processor in ``prepare``).

:meth:`Loader.score` (:mod:`vqa_shap.loaders.bases.chat_scoring`) then only picks, per coalition, kept or
baseline embeddings per video token, tokenises the masked text (cached per distinct text mask) and
runs the language model with ``logits_to_keep=1``, in batches, sharing the key/value cache of common
prompt prefixes (see docs/performance-loader.md).

:meth:`Loader.score_pixels` is the reference: it masks pixels and runs the full processor and the full
model forward per coalition, with no caching at all (the paper's way). Tests prove
``score == score_pixels`` on tiny models of every family.

Subclasses provide the family's prompt string, processor call, vision encoding and pixel-level
masking; validation, batching, padding and prefix sharing live in the base.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from vqa_shap.loaders.bases.loader import Loader, LoaderError, Prepared, UnsupportedQuestionError, VideoUnit
from vqa_shap.loaders.bases.chat_scoring import ChatScoring, _Row
from vqa_shap.loaders.bases.compat import kv_cache, returned_cache

if TYPE_CHECKING:  # heavy or sibling imports only for type checkers
    import torch

    from vqa_shap.protocol.base import FramePlan, Prompt, Protocol
    from vqa_shap.schema.records import Question


class ChatVLMLoader(ChatScoring, Loader):
    """Base class of chat video-LLM loaders scored by the option-letter logits.

    Class attributes besides :class:`Loader`'s: ``video_token`` (the processor's video placeholder
    token), ``model_class_name`` (the transformers class, see :meth:`model_class`).

    Args:
        model: the transformers model (eval mode).
        processor: its processor.
        checkpoint: where it was loaded from (for messages).
        batch_size: coalitions per forward pass.
        prefix_sharing: walk each call's coalitions as a prefix tree, running every distinct prompt
            prefix once (exact; faster; see :mod:`vqa_shap.loaders.bases.chat_scoring`).
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
            cached = (ids_t, self.position_ids(prepared, ids_t))
            if len(prepared.cache) >= self.token_cache_size:  # bounded: long prompts are large
                prepared.cache.pop(next(iter(prepared.cache)))
            prepared.cache[key] = cached
        return _Row(*cached)

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
        and by the paper's pipeline (:mod:`vqa_shap.measure.paper_pipeline`).
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

        ChatML as the paper's LLaVA-Video prompt: system turn, user turn with the inputs
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
