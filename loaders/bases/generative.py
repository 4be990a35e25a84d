"""Shared machinery of the non-native generative video LLMs (LongVA, VideoLLaMA2), rebuilt from
transformers parts as one :class:`VideoCausalLM` (CLIP vision tower + connector + ``*ForCausalLM``).

It loads a ``save_pretrained`` folder or the authors' original checkpoint (key map in code), splices
the visual embeddings at the placeholder id as the original code does, and scores with the chat-VLM
machinery (cached frames, batching, prefix sharing). Read-outs (``first``; ``generate``, the paper's)
and conversion: docs/loaders.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vqa_shap.loaders.bases.loader import LoaderError, VideoUnit
from vqa_shap.loaders.bases.chat import ChatVLMLoader
from vqa_shap.loaders.bases.compat import kv_cache, returned_cache
from vqa_shap.loaders.rebuilt.checkpoints import key_problems, local_folder, read_config, read_state_dict
from vqa_shap.loaders.rebuilt.video_causal_lm import VisionTextProcessor

#: Frames per vision-tower call when caching per-frame tokens (bounds memory, not results).
FRAME_CHUNK = 16
#: Read-out modes of :class:`GenerativeVideoLoader`.
READOUTS = ("first", "generate")
#: Original LLaVA-style state-dict keys -> ours (LongVA and VideoLLaMA2 share the layout): the CLIP tower
#: wrapper's ``vision_tower.vision_model.`` (flattened in transformers 5), the connector, the LM.
LLAVA_KEY_RULES: tuple[tuple[str, str], ...] = (
    (r"^model\.vision_tower\.vision_tower\.vision_model\.", "vision_tower."),
    (r"^model\.mm_projector\.", "mm_projector."),
    (r"^model\.(embed_tokens|layers|norm)\.", r"language_model.model.\1."),
    (r"^lm_head\.", "language_model.lm_head."),
)
#: Original config.json keys that are not language-model settings.
_NOT_TEXT = {"architectures", "transformers_version", "dtype", "torch_dtype", "model_type", "_name_or_path"}


# ------------------------------------------------------------------------------------------ checkpoints
def text_config_kwargs(original: dict[str, Any], config_class) -> dict[str, Any]:
    """The language-model settings of an original (LLaVA-style, flat) config.json."""
    fields = {f.name for f in dataclasses.fields(config_class)} | {"rope_theta", "rope_scaling"}
    return {k: v for k, v in original.items() if k in fields and k not in _NOT_TEXT}


# ------------------------------------------------------------------------------------------ loader
class GenerativeVideoLoader(ChatVLMLoader):
    """Loader base of the rebuilt generative video LLMs (LongVA, VideoLLaMA2).

    Family classes set ``family``, ``video_token`` (the placeholder text of the prompt),
    ``placeholder_id`` (the original negative id), ``original_model_types``, ``generation_defaults``
    and implement :meth:`model_class` and :meth:`config_from_original`. The default video hooks suit
    per-frame models (the model's ``tokens_per_frame`` and ``frame_tokens``); a family that mixes
    frames overrides :meth:`encode_video`, :meth:`encode_baseline` and the gather ``_video_embeds``.

    Args:
        model: the assembled :class:`VideoCausalLM` (eval mode).
        processor: a :class:`VisionTextProcessor`.
        readout: ``"first"`` (letter logits at the first generated position) or ``"generate"``.
        checkpoint, batch_size, prefix_sharing: see :class:`~vqa_shap.loaders.bases.chat.ChatVLMLoader`.
        **generation: ``max_new_tokens``, ``do_sample``, ``temperature`` of ``readout="generate"``
            (default: the paper's, :attr:`generation_defaults`).
    """

    placeholder_id: int = -200
    original_model_types: tuple[str, ...] = ()
    key_rules: tuple[tuple[str, str], ...] = LLAVA_KEY_RULES
    #: Generation settings of the paper for ``readout="generate"`` (family overrides).
    generation_defaults: dict[str, Any] = {"max_new_tokens": 1024, "do_sample": False, "temperature": None}

    def __init__(self, model, processor, *, checkpoint: str = "", batch_size: int = 8, prefix_sharing: bool = True,
                 readout: str = "first", **generation):
        super().__init__(model, processor, checkpoint=checkpoint, batch_size=batch_size,
                         prefix_sharing=prefix_sharing)
        if readout not in READOUTS:
            raise LoaderError(f"unknown readout {readout!r}; valid: {', '.join(READOUTS)}")
        unknown = set(generation) - set(self.generation_defaults)
        if unknown:
            raise LoaderError(f"unknown generation setting(s) {sorted(unknown)}; valid: {sorted(self.generation_defaults)}")
        self.readout = readout
        self.generation = {**self.generation_defaults, **generation}

    def placeholder_token_id(self) -> int:
        # the original tokenizers have no placeholder token: the models splice at a negative id
        return int(self.placeholder_id)

    # -------------------------------------------------------------- loading
    @classmethod
    def model_class(cls):
        """The :class:`VideoCausalLM` subclass of the family."""
        raise NotImplementedError

    @classmethod
    def config_from_original(cls, original: dict[str, Any], vision_config):
        """The family's config from an original config.json and the CLIP vision config."""
        raise NotImplementedError

    @staticmethod
    def require_settings(original: dict[str, Any], expected: dict[str, Any], refusal: str) -> None:
        """Refuse an original config.json whose settings differ from ``expected`` (absent = as expected).

        Raises:
            LoaderError: ``"{key}={value!r} is not {refusal}"`` for the first differing setting; ``refusal``
                is formatted with ``expected=`` the expected value.
        """
        for key, value in expected.items():
            if original.get(key, value) != value:
                raise LoaderError(f"{key}={original[key]!r} is not " + refusal.format(expected=repr(value)))

    @classmethod
    def load(cls, checkpoint: str, *, device: str | None = None, dtype: str | None = None,
             attn_implementation: str | None = None, batch_size: int = 8, prefix_sharing: bool = True,
             vision_tower: str | None = None, readout: str = "first", **generation) -> "GenerativeVideoLoader":
        """Load a converted (``save_pretrained``) folder, or an original checkpoint folder / Hub id.

        Args:
            checkpoint: folder or Hub id; its ``config.json`` ``model_type`` tells the format.
            device, dtype, attn_implementation: ``None`` = automatic (:mod:`vqa_shap.device`).
            batch_size, prefix_sharing: see :class:`~vqa_shap.loaders.bases.chat.ChatVLMLoader`.
            vision_tower: original checkpoints only: the CLIP vision tower folder or Hub id
                (default: the checkpoint's ``mm_vision_tower``).
            readout, **generation: see the class.

        Raises:
            LoaderError: unknown format, missing files, or weights that do not match the model.
        """
        from vqa_shap.device import resolve_runtime

        runtime = resolve_runtime(device=device, dtype=dtype, attn_implementation=attn_implementation)
        torch_dtype = getattr(torch, runtime.dtype)
        folder = local_folder(checkpoint)
        model_type = read_config(folder).get("model_type")
        model_cls = cls.model_class()
        if model_type == model_cls.config_class.model_type:
            try:
                model = model_cls.from_pretrained(str(folder), dtype=torch_dtype,
                                                  attn_implementation=runtime.attn_implementation)
                processor = VisionTextProcessor.from_pretrained(folder)
            except (OSError, ValueError) as exc:
                raise LoaderError(f"cannot load {cls.family} checkpoint {checkpoint!r}: {exc}") from exc
        elif model_type in cls.original_model_types:
            model, processor = cls.from_original(folder, vision_tower=vision_tower, dtype=torch_dtype,
                                                 attn_implementation=runtime.attn_implementation)
        else:
            valid = (model_cls.config_class.model_type, *cls.original_model_types)
            raise LoaderError(f"{checkpoint}: model_type {model_type!r} is not a {cls.family} checkpoint "
                              f"(expected one of {', '.join(valid)})")
        model = model.to(runtime.device).eval()
        return cls(model, processor, checkpoint=str(checkpoint), batch_size=batch_size,
                   prefix_sharing=prefix_sharing, readout=readout, **generation)

    @classmethod
    def from_original(cls, folder: str | Path, *, vision_tower: str | Path | None = None, dtype=None,
                      attn_implementation: str | None = None):
        """Assemble the model from an original checkpoint folder, applying :attr:`key_rules`.

        Args:
            folder: the original checkpoint (config.json, weights, tokenizer).
            vision_tower: the CLIP vision tower folder / Hub id (config.json and
                preprocessor_config.json; its weights only if the checkpoint has none).
            dtype: torch dtype of the model; attn_implementation: transformers attention backend.

        Returns:
            ``(model, processor)``.

        Raises:
            LoaderError: missing or unexpected weights after the key map (listed).
        """
        from transformers import CLIPVisionConfig

        folder = Path(folder)
        original = read_config(folder)
        tower = vision_tower or original.get("mm_vision_tower")
        if not tower:
            raise LoaderError(f"{folder}: config.json names no mm_vision_tower; pass vision_tower")
        vision_folder = local_folder(tower, allow_patterns=["*.json"])  # configs only, unless weights are needed
        if read_config(vision_folder).get("model_type") not in ("clip", "clip_vision_model"):
            raise LoaderError(f"{folder}: vision tower {tower!r} is not a CLIP model; not a {cls.family} checkpoint")
        vision_config = CLIPVisionConfig.from_pretrained(str(vision_folder))
        config = cls.config_from_original(original, vision_config)
        state = read_state_dict(folder, cls.key_rules)
        if not any(k.startswith("vision_tower.") for k in state):  # tower kept frozen: not in the checkpoint
            weights = local_folder(tower, allow_patterns=["*.json", "*.safetensors"])
            if not any(weights.glob("*.safetensors")):  # older repos ship only pytorch_model.bin
                weights = local_folder(tower, allow_patterns=["*.json", "*.bin"])
            state.update(read_state_dict(weights, ((r"^vision_model\.", "vision_tower."),), "vision_model."))
        model_cls = cls.model_class()
        model, info = model_cls.from_pretrained(None, config=config, state_dict=state, output_loading_info=True,
                                                dtype=dtype or torch.float32, attn_implementation=attn_implementation)
        problems = key_problems(info["missing_keys"], info["unexpected_keys"], info["mismatched_keys"])
        if problems:
            raise LoaderError(f"{folder}: weights do not match {model_cls.__name__} after the key map ({problems})")
        processor = VisionTextProcessor.from_pretrained(folder, vision_folder)
        return model, processor

    @classmethod
    def convert(cls, checkpoint: str | Path, out: str | Path, *, vision_tower: str | Path | None = None,
                dtype: str = "float16") -> Path:
        """Write an original checkpoint as a ``save_pretrained`` folder (model, tokenizer, image processor).

        Args:
            checkpoint: the original checkpoint folder or Hub id.
            out: the folder to write.
            vision_tower: the CLIP vision tower folder or Hub id (default: the checkpoint's ``mm_vision_tower``).
            dtype: torch dtype of the written weights.

        Returns:
            ``out``, loadable with :meth:`load`.
        """
        model, processor = cls.from_original(local_folder(checkpoint), vision_tower=vision_tower,
                                             dtype=getattr(torch, dtype))
        out = Path(out)
        model.save_pretrained(out)
        processor.save_pretrained(out)
        return out

    # -------------------------------------------------------------- letters and text
    def _single_token_letters(self) -> str:
        letters = ""
        unk = self.tokenizer.unk_token_id
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            token = self.tokenizer.convert_tokens_to_ids(letter)
            if token is None or token == unk:
                break
            letters += letter
        return letters

    def letter_ids(self, question) -> tuple[int, ...]:
        """``convert_tokens_to_ids`` of the option letters, as the paper (not ``encode``)."""
        super().letter_ids(question)  # the option-count check
        return self.letter_tokens(question.n_options)

    def tokenize(self, text: str) -> list[int]:
        """Chunks between placeholders tokenised separately, joined by ``placeholder_id`` (as the original)."""
        ids: list[int] = []
        for i, chunk in enumerate(text.split(self.video_token)):
            if i:
                ids.append(self.placeholder_id)
            ids += self.tokenizer(chunk, add_special_tokens=False)["input_ids"]
        return ids

    # -------------------------------------------------------------- processing
    def group_videos(self, pixel_values: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-input pixels -> one tensor per placeholder (default: one video per input)."""
        return pixel_values

    def pixel_values(self, frames: np.ndarray) -> torch.Tensor:
        """``[T, 3, S, S]`` CLIP-processed frames on the model's device and dtype."""
        pixels = self.processor.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, self.dtype)

    def process(self, text, frames, prompt):
        per_input = [self.pixel_values(f) for f in frames]
        inputs = {"pixel_values": self.group_videos(per_input),
                  "offsets": np.cumsum([0] + [len(p) for p in per_input]).tolist()}
        counts = iter(self.video_tokens_per_input(inputs))
        ids: list[int] = []
        for token in self.tokenize(text):
            ids += [token] * next(counts) if token == self.placeholder_id else [token]
        inputs["input_ids"] = torch.tensor([ids], dtype=torch.long, device=self.device)
        inputs["n_options"] = len(prompt.options)  # the letters the generate read-out scans
        return inputs

    def frame_position(self, inputs, unit: VideoUnit, frame: int) -> tuple[int, int]:
        """(video, frame within it) of a unit's frame (one video per input by default)."""
        return unit.input, frame

    def zero_pixels(self, inputs, dropped: list[VideoUnit]) -> None:
        for unit in dropped:
            for f in unit.frames:
                video, pos = self.frame_position(inputs, unit, f)
                inputs["pixel_values"][video][pos] = 0

    def baseline_pixels(self, frames: np.ndarray, baseline: str, like: torch.Tensor) -> torch.Tensor:
        """``[1, 3, S, S]`` pixels of the masked frame: zeros after normalisation, or a processed black frame."""
        if baseline == "black":
            return self.pixel_values(np.zeros((1, *frames.shape[1:]), dtype=np.uint8))
        return like[:1].new_zeros(like[:1].shape)

    # Per-frame families (every visual token depends on one frame): cache each frame's tokens and the
    # baseline frame's; masking = substitution (exact).
    def video_tokens_per_input(self, inputs) -> list[int]:
        return [len(v) * self.model.tokens_per_frame for v in inputs["pixel_values"]]

    def encode_video(self, inputs, units, frames):
        unit_of = {self.frame_position(inputs, u, f): j for j, u in enumerate(units) for f in u.frames}
        embeds, owner = [], []
        for k, video in enumerate(inputs["pixel_values"]):
            # [T, n, H]; in chunks, so the vision tower's hidden states of 128 frames never coexist
            tokens = torch.cat([self.model.frame_tokens(video[i:i + FRAME_CHUNK])
                                for i in range(0, len(video), FRAME_CHUNK)])
            embeds.append(tokens.flatten(0, 1))
            for f in range(len(video)):
                owner += [unit_of[(k, f)]] * tokens.shape[1]
        return torch.cat(embeds), torch.tensor(owner, dtype=torch.long), {}

    def encode_baseline(self, inputs, units, frames, baseline, kept, token_unit):
        blocks = []
        for k, video in enumerate(inputs["pixel_values"]):
            block = self.model.frame_tokens(self.baseline_pixels(frames[min(k, len(frames) - 1)], baseline, video))[0]
            blocks.append(block.repeat(len(video), 1))
        return torch.cat(blocks)

    # -------------------------------------------------------------- language model
    def text_config(self):
        return self.model.config.text_config

    def forward_last(self, embeds, attention_mask, position_ids, past_key_values):
        lm = self.model.language_model
        out = lm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                 logits_to_keep=1, **kv_cache(lm, past_key_values))
        return out.logits[:, -1], returned_cache(out)

    def forward_pixels(self, inputs):
        embeds = self.model.splice(inputs["input_ids"], inputs["pixel_values"])
        if self.readout == "generate":
            return self.generate_logits(embeds, self.letter_tokens(inputs["n_options"]))
        return self.model.language_model(inputs_embeds=embeds, logits_to_keep=1).logits[:, -1]

    # -------------------------------------------------------------- read-out
    def score(self, prepared, coalitions: np.ndarray) -> np.ndarray:
        if self.readout == "first":
            return super().score(prepared, coalitions)
        masks = self._check(prepared, coalitions)
        out = np.empty((len(masks), prepared.n_options), dtype=np.float32)
        with torch.inference_mode():
            for b, mask in enumerate(masks):
                row = self._row(prepared, mask)
                embeds = self._embed(prepared, row.ids, mask[:prepared.n_video])[None]
                logits = self.generate_logits(embeds, prepared.letter_ids)
                out[b] = logits[0, list(prepared.letter_ids)].float().cpu().numpy()
        return out

    def letter_tokens(self, k: int) -> tuple[int, ...]:
        """Token ids of the first ``k`` option letters."""
        return tuple(int(self.tokenizer.convert_tokens_to_ids(letter)) for letter in self.letters[:k])

    def generate_logits(self, embeds: torch.Tensor, letter_ids: Sequence[int]) -> torch.Tensor:
        """The paper's read-out: ``[1, vocab]`` raw logits at the step of the first letter.

        Generate from ``embeds``; scan the option letters ``letter_ids`` (A, B, …) alphabetically; the
        step is the first position of the first letter that was generated at all, else 0.
        """
        settings = {k: v for k, v in self.generation.items() if v is not None}
        if not settings.get("do_sample"):
            settings.pop("temperature", None)  # meaningless (and warned about) for greedy decoding
        attention = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        out = self.model.language_model.generate(
            inputs_embeds=embeds, attention_mask=attention, return_dict_in_generate=True, output_logits=True,
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id,
            **settings)
        step = letter_step(out.sequences[0, -len(out.logits):].tolist(), letter_ids)
        return out.logits[step]


def letter_step(generated: Sequence[int], letter_ids: Sequence[int]) -> int:
    """The paper's read-out step: the first position of the first letter (in alphabetical order, not
    generation order) that occurs among the generated ids; 0 if none does."""
    for token in letter_ids:
        if token in generated:
            return list(generated).index(token)
    return 0


# ------------------------------------------------------------------------------------------ tiny models
def tiny_vision_parts(tok, realistic: bool):
    """A tiny CLIP vision config and the processor for the tiny models of these families.

    56 px / patch 14 = 4x4 patches (realistic: 168 px, 12x12 patches).
    """
    from transformers import CLIPImageProcessor, CLIPVisionConfig

    image = 168 if realistic else 56
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              image_size=image, patch_size=14, hidden_act="quick_gelu")
    processor = VisionTextProcessor(tok, CLIPImageProcessor(size={"shortest_edge": image},
                                                            crop_size={"height": image, "width": image}))
    return vision, processor


def tiny_text_kwargs(tok, realistic: bool) -> dict[str, Any]:
    """Language-model settings of the tiny models (a few layers, untied embeddings)."""
    hidden, layers = (128, 4) if realistic else (64, 2)
    return dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                num_attention_heads=4, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id, bos_token_id=None, tie_word_embeddings=False)
