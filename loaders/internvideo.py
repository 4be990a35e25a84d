"""InternVideo (InternVideo1 CLIP "kc_new" ViT-L/14, MSR-VTT multiple-choice fine-tune) from transformers parts.

Architecture (docs/loaders.md): a CLIP ViT-L/14 that encodes every frame on
its own (:class:`transformers.CLIPVisionModel`), a UniFormerV2/EVL-style temporal decoder on the last
``n_decoder_layers`` blocks (a residual depthwise 3x3x3 convolution over the patch tokens of all frames,
then one learnable query cross-attending all frames' tokens, block after block), mixed with the frames'
mean CLS token, ``visual_ln_post`` and ``visual_proj``; the text tower is
:class:`transformers.CLIPTextModelWithProjection`. The model-specific code is the temporal decoder, the
OpenAI/InternVideo -> transformers key map and the WiSE-FT merge of the two original files.

Scoring (as the paper's code): per option the text ``Question: {q} Is it '{option}'?.`` (raw masked strings, HD-EPIC
tags not rewritten, as the paper), and ``exp(min(logit_scale, ln 100)) * cos(video, text)``. The paper
fills exactly 5 text slots (options beyond the 5th dropped, fewer padded with the last option, which
leaves the first K scores unchanged): this loader scores up to 5 options and refuses more with a
per-question error instead of dropping options. CLIP's context is 77 tokens: longer prompts are
truncated as in the paper (``[SOT] + 75 tokens + [EOT]``), which can cut the option text off.

Masking: the paper zeroes the normalised pixels of a masked frame. The backbone is per frame, so the
tapped token maps and the final CLS of every frame and of one baseline frame are computed once
(``prepare``) and picked per coalition — exactly pixel masking; the temporal decoder mixes frames and is
recomputed for every coalition (it is small). Text embeddings are cached per prompt string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from transformers import (AutoConfig, AutoModel, CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                          CLIPVisionModel, PreTrainedConfig, PreTrainedModel)
from transformers.configuration_utils import SubConfigSpec

from vqa_shap.loaders.base import (CLIP_MEAN, CLIP_STD, FramesPrepared, LoaderError, OptionHeadLoader,
                                   UnsupportedQuestionError, clip_pixels)
from vqa_shap.loaders.checkpoints import load_exact, read_state_dict

if TYPE_CHECKING:
    from vqa_shap.protocol import FramePlan, Protocol
    from vqa_shap.schema import Question

#: ``model_type`` of converted folders.
MODEL_TYPE = "internvideo"
#: The paper's text per option.
PROMPT_TEMPLATE = "Question: {question} Is it '{option}'?."
#: Text slots of the paper's multiple-choice head.
TEXT_SLOTS = 5
#: The paper's WiSE-FT coefficient (weight of each of the two files).
WISEFT_ALPHA = 0.5


def _wiseft_keys(n_blocks: int = 12) -> tuple[str, ...]:
    """Substrings naming the parameters InternVideo averages with OpenAI CLIP (its ``clip_param_keys``).

    Written for ViT-B/16 (12 blocks), so for ViT-L/14 it covers the whole text tower, the visual stem,
    visual blocks 0-11 only, ``visual_ln_post`` and ``visual_proj``.
    """
    return ("positional_embedding", "class_embedding", "token_embedding", "text_projection", "ln_final",
            "conv1", "ln_pre", "visual_ln_post", "visual_proj",
            *(f"transformer.resblocks.{i}." for i in range(n_blocks)))


#: InternVideo's WiSE-FT key substrings.
WISEFT_KEYS = _wiseft_keys()


# ---------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------


class InternVideoConfig(PreTrainedConfig):
    """InternVideo: CLIP vision/text configs, the temporal decoder and preprocessing."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=CLIPTextConfig),
                            "vision_config": SubConfigSpec(config_class=CLIPVisionConfig)}
    text_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 768
    n_decoder_layers: int = 4
    decoder_mlp_ratio: float = 4.0
    image_size: int = 224
    resize_short: int = 256
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    max_logit_scale: float = math.log(100.0)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Extractor(nn.Module):
    """One decoder block: the query cross-attends the frames' tokens, then an MLP (pre-LN, residual)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.ln_2 = nn.LayerNorm(width)
        self.ln_3 = nn.LayerNorm(width)
        hidden = round(width * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(hidden, width))

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        kv = self.ln_3(tokens)
        query = query + self.attn(self.ln_1(query), kv, kv, need_weights=False)[0]
        return query + self.mlp(self.ln_2(query))


class TemporalDecoder(nn.Module):
    """The temporal head (original names: ``temporal_cls_token``, ``balance``, ``dpe.j``, ``dec.j``)."""

    def __init__(self, width: int, heads: int, n_layers: int, mlp_ratio: float):
        super().__init__()
        self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.balance = nn.Parameter(torch.zeros(width))
        self.dpe = nn.ModuleList(nn.Conv3d(width, width, 3, padding=1, groups=width) for _ in range(n_layers))
        self.dec = nn.ModuleList(Extractor(width, heads, mlp_ratio) for _ in range(n_layers))

    def forward(self, taps: Sequence[torch.Tensor], cls: torch.Tensor) -> torch.Tensor:
        """``taps[j]``: ``[B, T, 1 + H*W, C]`` tokens after the j-th tapped block; ``cls``: ``[B, T, C]``
        final CLS tokens. Returns ``[B, C]``."""
        b, t, n, c = taps[0].shape
        side = math.isqrt(n - 1)
        query = self.temporal_cls_token.expand(b, 1, c)
        for dpe, dec, tokens in zip(self.dpe, self.dec, taps):
            patches = tokens[:, :, 1:].permute(0, 3, 1, 2).reshape(b, c, t, side, side)
            patches = patches + dpe(patches)  # depthwise 3x3x3: mixes neighbouring frames
            patches = patches.reshape(b, c, t, side * side).permute(0, 2, 3, 1)
            tokens = torch.cat([tokens[:, :, :1], patches], dim=2).reshape(b, t * n, c)
            query = dec(query, tokens)
        weight = torch.sigmoid(self.balance)
        return (1 - weight) * query[:, 0] + weight * cls.mean(1)


class InternVideoModel(PreTrainedModel):
    """CLIP vision per frame + temporal decoder + projection; CLIP text tower; logit scale."""

    config_class = InternVideoConfig
    base_model_prefix = "internvideo"

    def __init__(self, config: InternVideoConfig):
        super().__init__(config)
        vision = config.vision_config
        if config.n_decoder_layers > vision.num_hidden_layers:
            raise ValueError(f"{config.n_decoder_layers} decoder layers need as many vision blocks "
                             f"(the config has {vision.num_hidden_layers})")
        self.vision = CLIPVisionModel(vision)
        self.vision.post_layernorm = nn.Identity()  # InternVideo normalises the mixed vector instead
        self.temporal = TemporalDecoder(vision.hidden_size, vision.num_attention_heads, config.n_decoder_layers,
                                        config.decoder_mlp_ratio)
        self.visual_ln_post = nn.LayerNorm(vision.hidden_size)
        self.visual_proj = nn.Linear(vision.hidden_size, config.projection_dim, bias=False)
        self.text = CLIPTextModelWithProjection(config.text_config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.post_init()

    def frame_states(self, pixel_values: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-frame backbone: ``[T, 3, S, S]`` -> (tapped token maps ``[T, 1 + H*W, C]`` per decoder
        layer, final-block CLS ``[T, C]`` before any LayerNorm)."""
        hidden = self.vision(pixel_values=pixel_values, output_hidden_states=True).hidden_states
        first = len(hidden) - self.config.n_decoder_layers
        return list(hidden[first:]), hidden[-1][:, 0]

    def video_embeds(self, taps: Sequence[torch.Tensor], cls: torch.Tensor) -> torch.Tensor:
        """Temporal decoder + ``visual_ln_post`` + ``visual_proj``: ``[B, projection_dim]``."""
        return self.visual_proj(self.visual_ln_post(self.temporal(taps, cls)))

    def text_embeds(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text(input_ids=input_ids, attention_mask=attention_mask).text_embeds

    def scores(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``exp(min(logit_scale, max)) * cos``: ``[B, E] x [K, E] -> [B, K]``."""
        scale = self.logit_scale.clamp(max=self.config.max_logit_scale).exp()
        video = video / video.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        return scale * video @ text.T


AutoConfig.register(MODEL_TYPE, InternVideoConfig, exist_ok=True)
AutoModel.register(InternVideoConfig, InternVideoModel, exist_ok=True)


def build_config(vision_config, text_config, **kw) -> InternVideoConfig:
    """An InternVideo config from CLIP vision and text configs (objects or dicts)."""
    vision = vision_config if isinstance(vision_config, dict) else vision_config.to_dict()
    text = text_config if isinstance(text_config, dict) else text_config.to_dict()
    kw.setdefault("image_mean", list(CLIP_MEAN))
    kw.setdefault("image_std", list(CLIP_STD))
    kw.setdefault("projection_dim", text.get("projection_dim", 768))
    return InternVideoConfig(vision_config=vision, text_config=text, **kw)


def build_model(config: InternVideoConfig) -> InternVideoModel:
    """A randomly initialised InternVideo model (eval mode)."""
    return InternVideoModel(config).eval()


# ---------------------------------------------------------------------------------------------
# original checkpoints: OpenAI/InternVideo names -> ours, and the WiSE-FT merge
# ---------------------------------------------------------------------------------------------

_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
          "attn.out_proj": "self_attn.out_proj"}
#: OpenAI TorchScript extras and InternVideo parameters that vtc scoring does not use.
_DROPPED = ("input_resolution", "context_length", "vocab_size", "text_mask_embedding")


def openai_to_internvideo(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI CLIP names -> InternVideo's (``visual.proj`` -> ``visual_proj``, ``visual.ln_post`` ->
    ``visual_ln_post``, 2-D ``conv1`` -> 3-D with temporal kernel 1), as InternVideo's CLIP does."""
    out = {}
    for key, value in state.items():
        if key in _DROPPED:
            continue
        if key == "visual.proj":
            key = "visual_proj"
        elif key.startswith("visual.ln_post."):
            key = "visual_ln_post." + key[len("visual.ln_post."):]
        elif key == "visual.conv1.weight" and value.dim() == 4:
            value = value.unsqueeze(2)
        out[key] = value
    return out


def wiseft_merge(pretrained: Mapping[str, torch.Tensor], finetuned: Mapping[str, torch.Tensor], *,
                 alpha: float = WISEFT_ALPHA, keys: Sequence[str] = WISEFT_KEYS) -> dict[str, torch.Tensor]:
    """InternVideo's effective weights: ``alpha * finetuned + (1 - alpha) * pretrained`` for every
    fine-tuned key containing one of ``keys`` (substring test, as the original), the fine-tuned value
    otherwise. Both state dicts in InternVideo names without the ``clip.`` prefix.

    Raises:
        LoaderError: a key to average is missing from the pretrained weights, or shapes differ.
    """
    merged = {}
    for key, value in finetuned.items():
        if any(k in key for k in keys):
            if key not in pretrained:
                raise LoaderError(f"WiSE-FT: {key!r} is averaged but absent from the pretrained CLIP weights")
            base = pretrained[key]
            if tuple(base.shape) != tuple(value.shape):
                raise LoaderError(f"WiSE-FT: {key!r} has shape {tuple(value.shape)} in the fine-tune and "
                                  f"{tuple(base.shape)} in the pretrained CLIP")
            value = alpha * value.float() + (1 - alpha) * base.float()
        merged[key] = value
    return merged


def _block_keys(src: str, dst: str, value: torch.Tensor, out: dict) -> bool:
    """One transformer-block parameter (``src`` relative to the block) -> ``dst`` prefix in ``out``."""
    for kind in ("weight", "bias"):
        if src == f"attn.in_proj_{kind}":
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"{dst}self_attn.{name}.{kind}"] = part.clone()
            return True
    for old, new in _BLOCK.items():
        if src.startswith(old + "."):
            out[dst + new + src[len(old):]] = value
            return True
    return False


def map_original_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """InternVideo names (``clip.`` stripped; after :func:`wiseft_merge`) -> our model's names.

    Raises:
        LoaderError: keys that are neither mapped nor deliberately dropped (listed).
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    simple = {
        "visual.class_embedding": "vision.embeddings.class_embedding",
        "visual.positional_embedding": "vision.embeddings.position_embedding.weight",
        "token_embedding.weight": "text.text_model.embeddings.token_embedding.weight",
        "positional_embedding": "text.text_model.embeddings.position_embedding.weight",
        "logit_scale": "logit_scale",
    }
    for key, value in state.items():
        if key in _DROPPED:
            continue
        if key in simple:
            out[simple[key]] = value
        elif key == "visual.conv1.weight":
            out["vision.embeddings.patch_embedding.weight"] = value.squeeze(2) if value.dim() == 5 else value
        elif key in ("visual_proj", "text_projection"):  # x @ W  ->  Linear weight W^T
            out["visual_proj.weight" if key == "visual_proj" else "text.text_projection.weight"] = value.T.contiguous()
        elif m := re.match(r"^visual\.ln_pre\.(weight|bias)$", key):
            out[f"vision.pre_layrnorm.{m[1]}"] = value
        elif m := re.match(r"^visual_ln_post\.(weight|bias)$", key):
            out[f"visual_ln_post.{m[1]}"] = value
        elif m := re.match(r"^ln_final\.(weight|bias)$", key):
            out[f"text.text_model.final_layer_norm.{m[1]}"] = value
        elif m := re.match(r"^visual\.transformer\.((?:temporal_cls_token|balance|dpe\.|dec\.).*)$", key):
            out[f"temporal.{m[1]}"] = value
        elif (m := re.match(r"^visual\.transformer\.resblocks\.(\d+)\.(.+)$", key)) and \
                _block_keys(m[2], f"vision.encoder.layers.{m[1]}.", value, out):
            pass
        elif (m := re.match(r"^transformer\.resblocks\.(\d+)\.(.+)$", key)) and \
                _block_keys(m[2], f"text.text_model.encoder.layers.{m[1]}.", value, out):
            pass
        else:
            unknown.append(key)
    if unknown:
        raise LoaderError(f"InternVideo checkpoint has {len(unknown)} unexpected key(s): "
                          f"{', '.join(sorted(unknown)[:10])}")
    return out


def read_original(pretrained: str | Path | Mapping[str, torch.Tensor],
                  finetuned: str | Path | Mapping[str, torch.Tensor], *, alpha: float = WISEFT_ALPHA
                  ) -> dict[str, torch.Tensor]:
    """The effective InternVideo state dict (our names) from the two original files.

    Args:
        pretrained: OpenAI's ``ViT-L-14.pt`` (TorchScript archive or plain state dict), or its state dict.
        finetuned: InternVideo's ``MSRVTT.ckpt`` (Lightning checkpoint, keys ``clip.*`` in
            ``state_dict``), or that state dict. Keys outside ``clip.`` (other task heads) are ignored.
        alpha: WiSE-FT coefficient (the paper's 0.5).
    """
    pre = openai_to_internvideo(_load(pretrained))
    ft = _load(finetuned)
    ft = {k[len("clip."):]: v for k, v in ft.items() if k.startswith("clip.")}
    if not ft:
        raise LoaderError("the InternVideo fine-tuned checkpoint has no 'clip.*' keys")
    return map_original_keys(wiseft_merge(pre, ft, alpha=alpha))


def _load(source) -> dict[str, torch.Tensor]:
    # the original files are Lightning / TorchScript archives, opened as the trusted local files they are
    return dict(source) if isinstance(source, Mapping) else read_state_dict(source, allow_pickle=True)


def infer_config(state: Mapping[str, torch.Tensor], **kw) -> InternVideoConfig:
    """The config of a mapped (our names) InternVideo state dict, read from its shapes."""
    def count(prefix):
        return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})

    width = state["vision.embeddings.class_embedding"].shape[0]
    patch = state["vision.embeddings.patch_embedding.weight"].shape[-1]
    n_pos = state["vision.embeddings.position_embedding.weight"].shape[0]
    text_width = state["text.text_model.final_layer_norm.weight"].shape[0]
    vocab, _ = state["text.text_model.embeddings.token_embedding.weight"].shape
    vision_mlp = state["vision.encoder.layers.0.mlp.fc1.weight"].shape[0]
    vision = CLIPVisionConfig(hidden_size=width, intermediate_size=vision_mlp,
                              num_hidden_layers=count("vision.encoder.layers."), num_attention_heads=width // 64,
                              image_size=patch * math.isqrt(n_pos - 1), patch_size=patch, hidden_act="quick_gelu",
                              layer_norm_eps=1e-5)
    text = CLIPTextConfig(vocab_size=vocab, hidden_size=text_width,
                          intermediate_size=state["text.text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
                          num_hidden_layers=count("text.text_model.encoder.layers."),
                          num_attention_heads=text_width // 64,
                          max_position_embeddings=state[
                              "text.text_model.embeddings.position_embedding.weight"].shape[0],
                          projection_dim=state["text.text_projection.weight"].shape[0], hidden_act="quick_gelu",
                          layer_norm_eps=1e-5, bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=0)
    kw.setdefault("image_size", vision.image_size)
    kw.setdefault("n_decoder_layers", count("temporal.dec."))
    kw.setdefault("decoder_mlp_ratio", state["temporal.dec.0.mlp.c_fc.weight"].shape[0] / width)
    kw.setdefault("projection_dim", state["visual_proj.weight"].shape[0])
    return build_config(vision, text, **kw)


def load_original(pretrained, finetuned, *, alpha: float = WISEFT_ALPHA, config: InternVideoConfig | None = None):
    """InternVideo from OpenAI's ``ViT-L-14.pt`` + ``MSRVTT.ckpt`` (WiSE-FT merged), no key missing or unexpected.

    Args:
        pretrained, finetuned: see :func:`read_original`.
        alpha: WiSE-FT coefficient.
        config: default: read from the weights' shapes (:func:`infer_config`; heads = width / 64 as CLIP).
    """
    state = read_original(pretrained, finetuned, alpha=alpha)
    model = build_model(config if config is not None else infer_config(state))
    load_exact(model, state, "InternVideo")
    return model.eval()


def convert(pretrained, finetuned, tokenizer: str | Path, out: str | Path, *, alpha: float = WISEFT_ALPHA,
            **config_kw) -> Path:
    """Write InternVideo (WiSE-FT merged) and its CLIP tokenizer as a ``save_pretrained`` folder.

    Args:
        pretrained, finetuned: see :func:`read_original`.
        tokenizer: a CLIP tokenizer folder (e.g. ``openai/clip-vit-large-patch14``).
        out: the folder to write.
        alpha: WiSE-FT coefficient.
        **config_kw: :class:`InternVideoConfig` values other than the ones read from the weights.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    state = read_original(pretrained, finetuned, alpha=alpha)
    model = build_model(infer_config(state, **config_kw))
    load_exact(model, state, "InternVideo")
    model.config.text_config.eos_token_id = tok.eos_token_id  # first-EOT pooling = OpenAI's argmax pooling
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def add_convert_arguments(parser) -> None:
    """The arguments of ``scripts/convert_internvideo.py`` (read by :func:`convert_from_args`)."""
    parser.add_argument("--openai", required=True, help="OpenAI CLIP ViT-L-14.pt")
    parser.add_argument("--checkpoint", required=True, help="InternVideo MSRVTT.ckpt")
    parser.add_argument("--tokenizer", required=True, help="CLIP tokenizer folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--alpha", type=float, default=WISEFT_ALPHA, help="WiSE-FT coefficient (paper: 0.5)")
    parser.add_argument("--resize-short", type=int, default=256, help="resize before the centre crop (paper: 256)")


def convert_from_args(args) -> Path:
    """:func:`convert` with the arguments of :func:`add_convert_arguments`."""
    return convert(args.openai, args.checkpoint, args.tokenizer, args.out, alpha=args.alpha,
                   resize_short=args.resize_short)


# ---------------------------------------------------------------------------------------------
# the loader
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InternVideoPrepared(FramesPrepared):
    """One question ready for InternVideo scoring (:class:`FramesPrepared` plus):

    Attributes:
        baseline: ``"normalized_zero"`` (the paper's) or ``"black"``.
        taps: per decoder layer, ``[T, 1 + H*W, C]`` tokens of every frame.
        cls: ``[T, C]`` final CLS of every frame.
        baseline_taps, baseline_cls: the same for the baseline frame (``[1, …]``).
        cache: prompt string -> text embedding; filled by ``score``.
    """

    baseline: str
    taps: tuple[Any, ...]
    cls: Any
    baseline_taps: tuple[Any, ...]
    baseline_cls: Any
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class InternVideoLoader(OptionHeadLoader):
    """InternVideo's multiple-choice scores, ``exp(logit_scale) * cos(video, text)`` (``model_type`` ``internvideo``).

    Args:
        model: an InternVideo model.
        tokenizer: its CLIP tokenizer.
        checkpoint: where it came from (messages).
        batch_size: coalitions per temporal-decoder forward.
    """

    family = "internvideo"
    temporal_unit = 1
    exact_cached_masking = True
    model_class = InternVideoModel
    convert_script = "convert_internvideo.py"

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        self.context = int(model.config.text_config.max_position_embeddings)

    @property
    def max_options(self) -> int:
        """The paper's 5 text slots."""
        return TEXT_SLOTS

    # -- prepare --------------------------------------------------------------------------
    def pixel_values(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` -> ``[T, 3, 224, 224]``: squashed to 224 (the paper decodes at 224x224),
        resized to 256, centre-cropped to 224, CLIP-normalised (InternVideo's test transform)."""
        c = self.model.config
        return clip_pixels(frames, c.image_size, c.image_mean, c.image_std, resize_short=c.resize_short,
                           device=self.device, dtype=self.model.dtype)

    def baseline_pixels(self, baseline: str) -> torch.Tensor:
        """``[1, 3, S, S]``: a masked frame (zeros after normalisation, or a black frame normalised)."""
        size = self.model.config.image_size
        if baseline == "normalized_zero":
            return torch.zeros(1, 3, size, size, device=self.device, dtype=self.model.dtype)
        if baseline == "black":
            return self.pixel_values(np.zeros((1, size, size, 3), dtype=np.uint8))
        raise LoaderError(f"unknown frame baseline {baseline!r}")

    def prepare(self, question: "Question", frames: Sequence[np.ndarray], plan: "FramePlan",
                protocol: "Protocol") -> InternVideoPrepared:
        """Backbone states of every frame and of the baseline frame, once.

        Raises:
            UnsupportedQuestionError: more than 5 options, or no frames.
        """
        if question.n_options > TEXT_SLOTS:
            raise UnsupportedQuestionError(
                f"question {question.qid!r} has {question.n_options} options; {self.family} scores at most "
                f"{TEXT_SLOTS} (its multiple-choice head has {TEXT_SLOTS} text slots; the paper drops the rest)")
        base = self.frames_prepared(question, frames, plan, protocol)
        baseline = protocol.frame_baseline(self.family)
        with torch.inference_mode():
            taps, cls = self.model.frame_states(torch.cat([self.pixel_values(f) for f in base.frames]))
            base_taps, base_cls = self.model.frame_states(self.baseline_pixels(baseline))
        return InternVideoPrepared(**vars(base), baseline=baseline, taps=tuple(taps), cls=cls,
                                   baseline_taps=tuple(base_taps), baseline_cls=base_cls)

    # -- text -------------------------------------------------------------------------------
    def prompts(self, prepared: InternVideoPrepared, text_keep: np.ndarray) -> list[str]:
        """The option texts of one text mask (raw masked strings: no HD-EPIC tag rewriting, as the paper)."""
        rendered = prepared.protocol.render(prepared.question, prepared.plan, text_keep)
        return [PROMPT_TEMPLATE.format(question=rendered.question, option=o) for o in rendered.options]

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP text embeddings, truncated to the 77-token context as the paper (``[SOT] + 75 + [EOT]``)."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.context, padding=True,
                             return_tensors="pt")
        return self.model.text_embeds(enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))

    def _texts(self, prepared: InternVideoPrepared, texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in prepared.cache]
        if new:
            for text, emb in zip(new, self.encode_texts(new)):
                prepared.cache[text] = emb
        return torch.stack([prepared.cache[t] for t in texts])

    # -- scoring ----------------------------------------------------------------------------
    def score_batch(self, prepared: InternVideoPrepared, batch: np.ndarray) -> np.ndarray:
        """Option scores of masked inputs: cached frame states, temporal decoder per coalition; ``[b, K]``."""
        keep = torch.as_tensor(batch[:, :prepared.n_video], device=self.device)
        taps = [torch.where(keep[:, :, None, None], kept[None], base[None])
                for kept, base in zip(prepared.taps, prepared.baseline_taps)]
        cls = torch.where(keep[:, :, None], prepared.cls[None], prepared.baseline_cls[None])
        video = self.model.video_embeds(taps, cls)
        texts = self._texts(prepared, [t for m in batch for t in self.prompts(prepared, m[prepared.n_video:])])
        return np.stack([self.model.scores(video[b:b + 1], text)[0].float().cpu().numpy()
                         for b, text in enumerate(texts.reshape(len(batch), prepared.n_options, -1))])

    def score_pixels_one(self, prepared: InternVideoPrepared, mask: np.ndarray) -> np.ndarray:
        """Uncached reference: masked pixels through the whole model, texts encoded anew."""
        pixels = torch.cat([self.pixel_values(f) for f in prepared.frames])
        drop = torch.as_tensor(~mask[:prepared.n_video], device=self.device)
        pixels[drop] = self.baseline_pixels(prepared.baseline)
        taps, cls = self.model.frame_states(pixels)
        video = self.model.video_embeds([t[None] for t in taps], cls[None])
        text = self.encode_texts(self.prompts(prepared, mask[prepared.n_video:]))
        return self.model.scores(video, text)[0].float().cpu().numpy()
