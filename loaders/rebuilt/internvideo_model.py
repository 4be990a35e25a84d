"""The InternVideo model in transformers classes: CLIP vision per frame, the temporal decoder, CLIP text.

Part of the ``internvideo`` family (:mod:`vqa_shap.loaders.internvideo`, which declares it and re-exports
these names). Importing this module registers ``model_type`` ``internvideo`` with ``AutoConfig``/``AutoModel``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from transformers import (AutoConfig, AutoModel, CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                          CLIPVisionModel, PreTrainedConfig, PreTrainedModel)
from transformers.configuration_utils import SubConfigSpec

from vqa_shap.loaders.bases.option_head import CLIP_MEAN, CLIP_STD

#: ``model_type`` of converted folders.
MODEL_TYPE = "internvideo"


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
