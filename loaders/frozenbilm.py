"""FrozenBiLM (Yang et al., 2022), How2QA checkpoint, rebuilt from transformers parts.

Architecture (docs/loaders.md): a frozen DeBERTa-v2 MLM with bottleneck
adapters, fed ``T`` visual tokens (``linear_video`` of per-frame CLIP ViT-L/14 ``image_embeds``) in
front of the word embeddings; the answer is read at the ``[MASK]`` token through DeBERTa's Enhanced
Mask Decoder (EMD) and a 2-way answer head (the word embeddings of "Yes" and "No").

Built from :class:`transformers.DebertaV2Model` and
:class:`transformers.CLIPVisionModelWithProjection`; the model-specific code is the adapters (forward
hooks on the two ``dense`` layers of every DeBERTa layer, so the original state-dict names stay), the
EMD (two passes of the last encoder layer), ``linear_video`` and the answer head.

Scoring (as the paper's code): one prompt per option, ``Question: {q} Is it '{option}'? [MASK].``, and
``P("Yes")`` from the softmax over the two answer logits. A masked frame is a zeroed 768-d feature,
so cached masking is exact: ``prepare`` computes the features once, ``score`` multiplies them by the
coalition's frame bits. The features round-trip through float16 as the paper's stored ``.npy`` files.

Checkpoints: :func:`load_original` assembles the model from the three original parts (DeBERTa-v2
base, FrozenBiLM fine-tune, CLIP ViT-L/14) with the key map :func:`map_original_keys`;
``scripts/convert_frozenbilm.py`` saves the result as a ``save_pretrained`` folder that
:meth:`FrozenBiLMLoader.load` reads.

The own-head loader base (:class:`~vqa_shap.loaders.base.OptionHeadLoader`) is shared with
:mod:`vqa_shap.loaders.internvideo`; checkpoint reading is :mod:`vqa_shap.loaders.checkpoints`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from transformers import (AutoConfig, AutoModel, CLIPVisionConfig, CLIPVisionModelWithProjection, DebertaV2Config,
                          DebertaV2Model,
                          PreTrainedConfig, PreTrainedModel)
from transformers.configuration_utils import SubConfigSpec
from transformers.models.deberta_v2.modeling_deberta_v2 import DebertaV2LMPredictionHead

from vqa_shap.loaders.base import (CLIP_MEAN, CLIP_STD, FramesPrepared, LoaderError, OptionHeadLoader,
                                   UnsupportedQuestionError, clip_pixels)
from vqa_shap.loaders.checkpoints import load_exact, read_state_dict

if TYPE_CHECKING:
    from vqa_shap.protocol import FramePlan, Protocol
    from vqa_shap.schema import Question

#: ``model_type`` of converted folders.
MODEL_TYPE = "frozenbilm"
#: The paper's prompt per option; ``{mask}`` is the tokenizer's mask token.
PROMPT_TEMPLATE = "Question: {question} Is it '{option}'? {mask}."
#: The two answer words, in answer-head order (score = P(first)).
ANSWER_WORDS = ("Yes", "No")


# ---------------------------------------------------------------------------------------------
# model (transformers building blocks + the FrozenBiLM-specific parts)
# ---------------------------------------------------------------------------------------------


class FrozenBiLMConfig(PreTrainedConfig):
    """FrozenBiLM: DeBERTa-v2 ``text_config``, CLIP ``vision_config``, adapter sizes and preprocessing."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=DebertaV2Config),
                            "vision_config": SubConfigSpec(config_class=CLIPVisionConfig)}
    text_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    features_dim: int = 768
    ds_factor_attn: int = 8
    ds_factor_ff: int = 8
    answer_token_ids: list[int] | None = None
    image_size: int = 224
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    feature_dtype: str = "float16"


class Adapter(nn.Module):
    """Bottleneck adapter ``x + up(relu(down(x)))`` (its dropout is a no-op in eval)."""

    def __init__(self, hidden: int, factor: int):
        super().__init__()
        self.down = nn.Linear(hidden, hidden // factor)
        self.up = nn.Linear(hidden // factor, hidden)

    def forward(self, x):
        return x + self.up(torch.relu(self.down(x)))


def _adapter_hook(adapter: Adapter):
    return lambda module, args, output: adapter(output)


class FrozenBiLMModel(PreTrainedModel):
    """CLIP frame encoder + DeBERTa-v2 with adapters + EMD + Yes/No answer head."""

    config_class = FrozenBiLMConfig
    base_model_prefix = "frozenbilm"

    def __init__(self, config: FrozenBiLMConfig):
        super().__init__(config)
        text = config.text_config
        self.vision = CLIPVisionModelWithProjection(config.vision_config)
        self.deberta = DebertaV2Model(text)
        for layer in self.deberta.encoder.layer:
            # adapters act on each sublayer's dense output, before its dropout + residual LayerNorm;
            # hooks keep the original state-dict names (``...output.adapter.down.weight``)
            layer.attention.output.adapter = Adapter(text.hidden_size, config.ds_factor_attn)
            layer.output.adapter = Adapter(text.hidden_size, config.ds_factor_ff)
            layer.attention.output.dense.register_forward_hook(_adapter_hook(layer.attention.output.adapter))
            layer.output.dense.register_forward_hook(_adapter_hook(layer.output.adapter))
        self.linear_video = nn.Linear(config.features_dim, text.hidden_size)
        # the EMD's absolute positions (DeBERTa-v2 adds none at the input)
        self.position_embeddings = nn.Embedding(text.max_position_embeddings, text.hidden_size)
        self.lm_predictions = nn.Module()
        self.lm_predictions.lm_head = DebertaV2LMPredictionHead(text)
        self.answer_bias = nn.Parameter(torch.zeros(len(ANSWER_WORDS)))
        self.post_init()

    def frame_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[T, 3, H, W]`` normalised pixels -> ``[T, features_dim]`` CLIP ``image_embeds``."""
        return self.vision(pixel_values=pixel_values).image_embeds

    def answer_logits(self, features: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      mask_positions: torch.Tensor) -> torch.Tensor:
        """Yes/No logits at the mask token.

        Args:
            features: ``[B, T, features_dim]`` (masked frames already zeroed).
            input_ids, attention_mask: ``[B, L]`` right-padded text.
            mask_positions: ``[B]`` index of the mask token in the text.

        Returns:
            ``[B, 2]`` logits (``ANSWER_WORDS`` order).
        """
        words = self.deberta.embeddings.word_embeddings
        video = self.linear_video(features.to(words.weight.dtype))
        n_frames = video.shape[1]
        embeds = torch.cat([video, words(input_ids)], dim=1)
        mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], n_frames), attention_mask], dim=1)
        hidden = self.deberta(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True).hidden_states
        states = self._emd(hidden[-2], mask)
        at_mask = states[torch.arange(states.shape[0], device=states.device), n_frames + mask_positions]
        head = self.lm_predictions.lm_head
        at_mask = head.LayerNorm(head.transform_act_fn(head.dense(at_mask)))
        # the paper's set_answer_embeddings: word embeddings of the answers' first pieces; its bias
        # assignment is a no-op, so the checkpoint's answer_bias is what counts
        answers = words.weight[torch.as_tensor(self.config.answer_token_ids, device=words.weight.device)]
        return at_mask @ answers.T + self.answer_bias

    def _emd(self, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Enhanced Mask Decoder: the last layer twice; first queries = absolute positions + keys."""
        encoder = self.deberta.encoder
        positions = torch.arange(keys.shape[1], device=keys.device)
        query = self.position_embeddings(positions)[None] + keys
        attention = encoder.get_attention_mask(mask)
        rel = encoder.get_rel_embedding()
        for _ in range(2):
            query = encoder.layer[-1](keys, attention, query_states=query, rel_embeddings=rel)[0]
        return query


# standard transformers registration, so AutoConfig/AutoModel know converted folders
AutoConfig.register(MODEL_TYPE, FrozenBiLMConfig, exist_ok=True)
AutoModel.register(FrozenBiLMConfig, FrozenBiLMModel, exist_ok=True)


def build_config(text_config, vision_config, answer_token_ids: Sequence[int], **kw):
    """A FrozenBiLM config from a DeBERTa-v2 and a CLIP vision config (objects or dicts)."""
    if not isinstance(text_config, dict):
        text_config = text_config.to_dict()
    if not isinstance(vision_config, dict):
        vision_config = vision_config.to_dict()
    kw.setdefault("image_mean", list(CLIP_MEAN))
    kw.setdefault("image_std", list(CLIP_STD))
    kw.setdefault("features_dim", vision_config.get("projection_dim", 768))
    return FrozenBiLMConfig(text_config=text_config, vision_config=vision_config,
                      answer_token_ids=[int(i) for i in answer_token_ids], **kw)


def build_model(config):
    """A randomly initialised FrozenBiLM model of ``config`` (eval mode)."""
    return FrozenBiLMModel(config).eval()


def answer_token_ids(tokenizer) -> list[int]:
    """Ids of the first piece of each answer word, as the paper's ``set_answer_embeddings``."""
    ids = []
    for word in ANSWER_WORDS:
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise LoaderError(f"the tokenizer has no piece for answer word {word!r}")
        ids.append(int(pieces[0]))
    return ids


# ---------------------------------------------------------------------------------------------
# original checkpoint key map
# ---------------------------------------------------------------------------------------------

#: original key (regex) -> our key (``\1`` etc. substituted); first match wins.
_KEY_MAP = (
    (r"^deberta\.embeddings\.position_embeddings\.weight$", r"position_embeddings.weight"),
    (r"^deberta\.embeddings\.linear_video\.(weight|bias)$", r"linear_video.\1"),
    (r"^deberta\.(embeddings\.(?:word_embeddings|LayerNorm)\..+)$", r"deberta.\1"),
    (r"^deberta\.(encoder\..+)$", r"deberta.\1"),
    (r"^(lm_predictions\.lm_head\.(?:dense|LayerNorm)\.(?:weight|bias))$", r"\1"),
    (r"^(lm_predictions\.lm_head\.bias)$", r"\1"),
    (r"^answer_bias$", r"answer_bias"),
)
#: original keys we drop on purpose: the decoder copy of the word embeddings (unused by the answer head)
#: and the answer embeddings, which the paper overwrites with the "Yes"/"No" word embeddings.
_DROPPED = (r"^lm_predictions\.lm_head\.decoder\..+$", r"^answer_embeddings\.weight$",
            r"^deberta\.embeddings\.position_ids$")


def map_original_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """Map a FrozenBiLM state dict in the original names (base + fine-tune merged) to ours.

    Args:
        state: original key -> tensor (the DeBERTa-v2 base ``pytorch_model.bin`` updated with the
            fine-tune's ``ckpt["model"]``, as the paper's non-strict load does).

    Returns:
        Our key -> tensor, without the CLIP (``vision.*``) part.

    Raises:
        LoaderError: keys that are neither mapped nor deliberately dropped (listed).
    """
    out, unknown = {}, []
    for key, value in state.items():
        if any(re.match(p, key) for p in _DROPPED):
            continue
        for pattern, target in _KEY_MAP:
            if re.match(pattern, key):
                out[re.sub(pattern, target, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise LoaderError(f"FrozenBiLM checkpoint has {len(unknown)} unexpected key(s): "
                          f"{', '.join(sorted(unknown)[:10])}")
    return out


def load_original(deberta: str | Path, finetune: str | Path, clip: str | Path, *, tokenizer=None, **config_kw):
    """Assemble FrozenBiLM from its original files.

    Args:
        deberta: folder of ``microsoft/deberta-v2-xlarge`` (``config.json``, ``pytorch_model.bin``,
            ``spm.model``); its state dict must contain ``deberta.embeddings.position_embeddings.weight``
            and ``lm_predictions.lm_head.*`` (the EMD needs them).
        finetune: the FrozenBiLM fine-tuned checkpoint (``{"model": state_dict, ...}``), e.g. How2QA.
        clip: folder of ``openai/clip-vit-large-patch14`` (transformers format).
        tokenizer: the DeBERTa-v2 tokenizer (default: loaded from ``deberta``).
        **config_kw: :class:`FrozenBiLMConfig` values other than the defaults (adapter factors,
            ``image_size`` …).

    Returns:
        ``(model, tokenizer)``; the model loaded with no missing and no unexpected keys.
    """
    from transformers import AutoTokenizer, CLIPVisionConfig, CLIPVisionModelWithProjection, DebertaV2Config

    deberta, finetune, clip = Path(deberta), Path(finetune), Path(clip)
    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(str(deberta))
    state = read_state_dict(deberta, allow_pickle=True)  # the paper's own files: trusted
    state.update(read_state_dict(finetune, allow_pickle=True))  # fine-tuned parameters override the base's
    if "answer_bias" not in state:  # the paper's model keeps its zero init when absent
        state["answer_bias"] = torch.zeros(len(ANSWER_WORDS))
    vision = CLIPVisionModelWithProjection.from_pretrained(str(clip))
    config = build_config(DebertaV2Config.from_pretrained(str(deberta)), CLIPVisionConfig.from_pretrained(str(clip)),
                          answer_token_ids(tokenizer), **config_kw)
    model = build_model(config)
    mapped = map_original_keys(state)
    mapped.update({f"vision.{k}": v for k, v in vision.state_dict().items()})
    load_exact(model, mapped, "FrozenBiLM")
    return model.eval(), tokenizer


def convert(deberta: str | Path, finetune: str | Path, clip: str | Path, out: str | Path, **config_kw) -> Path:
    """Write FrozenBiLM assembled from its original files as a ``save_pretrained`` folder (model +
    tokenizer) that :meth:`FrozenBiLMLoader.load` reads. Returns ``out``."""
    model, tokenizer = load_original(deberta, finetune, clip, **config_kw)
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def add_convert_arguments(parser) -> None:
    """The arguments of ``scripts/convert_frozenbilm.py`` (read by :func:`convert_from_args`)."""
    parser.add_argument("--deberta", required=True, help="microsoft/deberta-v2-xlarge folder")
    parser.add_argument("--checkpoint", required=True, help="FrozenBiLM fine-tuned checkpoint (.pth)")
    parser.add_argument("--clip", required=True, help="openai/clip-vit-large-patch14 folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--ds-factor", type=int, default=8, help="adapter down-sampling factor (paper: 8)")
    parser.add_argument("--image-size", type=int, default=224, help="frame size for CLIP (paper: 224)")


def convert_from_args(args) -> Path:
    """:func:`convert` with the arguments of :func:`add_convert_arguments`."""
    return convert(args.deberta, args.checkpoint, args.clip, args.out, ds_factor_attn=args.ds_factor,
                   ds_factor_ff=args.ds_factor, image_size=args.image_size)


# ---------------------------------------------------------------------------------------------
# the loader
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrozenBiLMPrepared(FramesPrepared):
    """One question ready for FrozenBiLM scoring (:class:`FramesPrepared` plus):

    Attributes:
        frame_features: ``[T, features_dim]`` per-frame features, float16-rounded as the paper's.
        cache: prompt string -> (token ids, mask position); filled by ``score``.
    """

    frame_features: Any
    cache: dict[str, tuple[list[int], int]] = field(default_factory=dict, repr=False, compare=False)


class FrozenBiLMLoader(OptionHeadLoader):
    """FrozenBiLM as the paper scores it: ``P("Yes")`` per option prompt (``model_type`` ``frozenbilm``).

    Args:
        model: a FrozenBiLM model (:func:`build_model`, :func:`load_original` or ``from_pretrained``).
        tokenizer: its DeBERTa-v2 tokenizer.
        checkpoint: where it came from (messages).
        batch_size: coalitions per forward (each gives ``K`` prompts).
    """

    family = "frozenbilm"
    temporal_unit = 1
    exact_cached_masking = True
    model_class = FrozenBiLMModel
    convert_script = "convert_frozenbilm.py"

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        if tokenizer.mask_token is None:
            raise LoaderError(f"{self.checkpoint}: the tokenizer has no mask token")
        expected = answer_token_ids(tokenizer)
        if list(model.config.answer_token_ids or []) != expected:
            raise LoaderError(f"{self.checkpoint}: answer token ids {model.config.answer_token_ids} in the config "
                              f"differ from the tokenizer's {expected} for {ANSWER_WORDS}")

    @property
    def max_options(self) -> int:
        """No limit: every option has its own prompt."""
        return sys.maxsize

    # -- prepare --------------------------------------------------------------------------
    def pixel_values(self, frames: np.ndarray) -> "torch.Tensor":
        """uint8 ``[T, H, W, 3]`` -> normalised ``[T, 3, S, S]``: squashed to ``S`` (the shared loaders'
        resize), scaled to [0, 1], CLIP mean/std."""
        return clip_pixels(frames, self.model.config.image_size, self.model.config.image_mean,
                           self.model.config.image_std, device=self.device, dtype=self.model.dtype)

    def _features(self, frames: Sequence[np.ndarray]) -> "torch.Tensor":
        pixels = torch.cat([self.pixel_values(f) for f in frames])
        feats = self.model.frame_features(pixels)
        # the paper stored features as float16 and cast them back
        return feats.to(getattr(torch, self.model.config.feature_dtype)).to(self.model.dtype)

    def prepare(self, question: "Question", frames: Sequence[np.ndarray], plan: "FramePlan",
                protocol: "Protocol") -> FrozenBiLMPrepared:
        """CLIP features of every frame, once.

        Raises:
            UnsupportedQuestionError: no frames.
        """
        base = self.frames_prepared(question, frames, plan, protocol)
        with torch.inference_mode():
            feats = self._features(base.frames)
        return FrozenBiLMPrepared(**vars(base), frame_features=feats)

    # -- text -------------------------------------------------------------------------------
    def prompts(self, prepared: FrozenBiLMPrepared, text_keep: np.ndarray) -> list[str]:
        """The K option prompts of one text mask (HD-EPIC tags rewritten after masking, as the paper)."""
        p = prepared.protocol
        rendered = p.render(prepared.question, prepared.plan, text_keep)
        return [p.rewrite(prepared.question, prepared.plan,
                          PROMPT_TEMPLATE.format(question=rendered.question, option=o,
                                                 mask=self.tokenizer.mask_token))
                for o in rendered.options]

    def _tokens(self, prepared: FrozenBiLMPrepared, text: str) -> tuple[list[int], int]:
        cached = prepared.cache.get(text)
        if cached is None:
            ids = list(self.tokenizer(text)["input_ids"])
            positions = [i for i, t in enumerate(ids) if t == self.tokenizer.mask_token_id]
            if len(positions) != 1:
                raise LoaderError(f"{self.family}: prompt of {prepared.question.qid!r} has {len(positions)} mask "
                                  f"tokens after tokenisation: {text!r}")
            limit = self.model.position_embeddings.num_embeddings - prepared.n_video
            if len(ids) > limit:
                raise UnsupportedQuestionError(
                    f"question {prepared.question.qid!r}: a prompt has {len(ids)} tokens; with "
                    f"{prepared.n_video} frames {self.family} takes at most {limit}")
            cached = (ids, positions[0])
            prepared.cache[text] = cached
        return cached

    # -- scoring ----------------------------------------------------------------------------
    def score_batch(self, prepared: FrozenBiLMPrepared, batch: np.ndarray) -> np.ndarray:
        """``P("Yes")`` of every option prompt of every coalition of ``batch``: ``[b, K]``."""
        k = prepared.n_options
        rows = [self._tokens(prepared, t) for m in batch for t in self.prompts(prepared, m[prepared.n_video:])]
        keep = torch.as_tensor(batch[:, :prepared.n_video], device=self.device)
        feats = prepared.frame_features[None] * keep[..., None].to(prepared.frame_features.dtype)
        feats = feats.repeat_interleave(k, dim=0)  # row b*K + j: coalition b, option j
        return self._p_yes(feats, rows).reshape(len(batch), k)

    def _p_yes(self, feats: "torch.Tensor", rows: list[tuple[list[int], int]]) -> np.ndarray:
        length = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), length), pad, dtype=torch.long, device=self.device)
        attention = torch.zeros((len(rows), length), dtype=torch.long, device=self.device)
        for r, (tokens, _) in enumerate(rows):  # right padding keeps every position of the real tokens
            ids[r, :len(tokens)] = torch.as_tensor(tokens)
            attention[r, :len(tokens)] = 1
        where = torch.as_tensor([m for _, m in rows], device=self.device)
        logits = self.model.answer_logits(feats, ids, attention, where).float()
        return logits.softmax(-1)[:, 0].cpu().numpy()

    def score_pixels_one(self, prepared: FrozenBiLMPrepared, mask: np.ndarray) -> np.ndarray:
        """Uncached reference: CLIP on the frames again, masked features zeroed, one unpadded forward
        per option prompt."""
        feats = self._features(prepared.frames)
        feats = feats * torch.as_tensor(mask[:prepared.n_video], device=self.device)[:, None].to(feats.dtype)
        out = np.empty(prepared.n_options, dtype=np.float32)
        for j, text in enumerate(self.prompts(prepared, mask[prepared.n_video:])):
            ids = list(self.tokenizer(text)["input_ids"])
            out[j] = self._p_yes(feats[None], [(ids, ids.index(self.tokenizer.mask_token_id))])[0]
        return out

