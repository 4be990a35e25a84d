"""LongVA (``lmms-lab/LongVA-7B``), rebuilt from transformers parts (docs/loaders.md).

CLIP ViT-L/14-336 (layer -2, patch tokens) -> ``mm_projector`` (Linear, GELU, Linear) -> 2x2 average
pooling per frame -> Qwen2. Every visual token depends on one frame, so cached masking (baseline-frame
tokens substituted for a masked frame) is exactly pixel masking. Videos get no newline token (the
original's ``unires`` video branch only flattens); that is the one difference from transformers'
LLaVA-OneVision video features (checked in the tests).

Prompt (the paper's LVA): ChatML, ``"<image>\\n"`` per video (``"video 1: <image>\\n"`` … with several
inputs), split at ``<image>`` and spliced at id -200 as the original. Masked frames: zeroed pixel values
after the CLIP processor (``normalized_zero``). The paper samples (temperature 0.5); the default
read-out uses the deterministic step-0 logits (see :mod:`vqa_shap.loaders.bases.generative`).
"""

from __future__ import annotations

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, Qwen2Config

from vqa_shap.families import declare_family
from vqa_shap.loaders.bases.generative import GenerativeVideoLoader, text_config_kwargs
from vqa_shap.loaders.rebuilt.video_causal_lm import VideoCausalLM, VideoCausalLMConfig

#: ``longva``: folders converted by scripts/convert_longva.py; ``llava_qwen``: the original checkpoint
#: (LLaVA-NeXT's type, shared by other models, which the loader refuses on load).
FAMILY = declare_family(
    "longva",
    loader="LongVALoader",
    model_types=("longva", "llava_qwen"),
    tiny="build_tiny",
    protocols={"pollard2025": {"baseline": "normalized_zero", "sampler": "linspace"}},
)


@strict
class LongVAConfig(VideoCausalLMConfig):
    """Config of :class:`LongVAForCausalLM` (``model_type`` ``longva``)."""

    model_type = "longva"
    sub_configs_defaults = VideoCausalLMConfig.family_sub_configs("qwen2")

    spatial_pool_stride: int = 2


AutoConfig.register(LongVAConfig.model_type, LongVAConfig, exist_ok=True)  # so Auto* classes read our folders


class LongVAForCausalLM(VideoCausalLM):
    """CLIP vision tower + ``mm_projector`` (mlp2x_gelu) + average pooling + Qwen2."""

    config_class = LongVAConfig

    def build_projector(self, config) -> nn.Module:
        vision, text = config.vision_config.hidden_size, config.text_config.hidden_size
        return nn.Sequential(nn.Linear(vision, text), nn.GELU(), nn.Linear(text, text))

    @property
    def tokens_per_frame(self) -> int:
        side = self.config.vision_config.image_size // self.config.vision_config.patch_size
        return (side // self.config.spatial_pool_stride) ** 2

    def frame_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[T, n, H]``: each frame's visual tokens (projected, then pooled on the patch grid)."""
        features = self.mm_projector(self.patch_features(pixel_values))
        frames, patches, hidden = features.shape
        side = int(round(patches ** 0.5))
        grid = features.view(frames, side, side, hidden).permute(0, 3, 1, 2)
        pooled = nn.functional.avg_pool2d(grid, self.config.spatial_pool_stride)
        return pooled.permute(0, 2, 3, 1).reshape(frames, -1, hidden)

    def video_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.frame_tokens(pixel_values).flatten(0, 1)


class LongVALoader(GenerativeVideoLoader):
    """Loader of LongVA: converted folders (``model_type`` ``longva``) or the original ``llava_qwen`` one."""

    family = FAMILY.name
    temporal_unit = 1
    exact_cached_masking = True
    video_token = "<image>"
    placeholder_id = -200  # the original IMAGE_TOKEN_INDEX
    original_model_types = ("llava_qwen",)
    #: The paper's LVA generation: sampled, temperature 0.5, up to 1024 new tokens.
    generation_defaults = {"max_new_tokens": 1024, "do_sample": True, "temperature": 0.5}

    @classmethod
    def model_class(cls):
        return LongVAForCausalLM

    @classmethod
    def config_from_original(cls, original: dict[str, Any], vision_config) -> LongVAConfig:
        cls.require_settings(original, {"mm_projector_type": "mlp2x_gelu", "mm_vision_select_feature": "patch",
                                        "mm_spatial_pool_mode": "average"},
                             "LongVA's {expected}; not a LongVA checkpoint")
        return LongVAConfig(vision_config=vision_config,
                            text_config=Qwen2Config(**text_config_kwargs(original, Qwen2Config)),
                            vision_feature_layer=int(original.get("mm_vision_select_layer", -2)),
                            spatial_pool_stride=int(original.get("mm_spatial_pool_stride", 2)))


def build_tiny(tok, realistic: bool = False):
    """A tiny random LongVA and its processor (see :mod:`vqa_shap.loaders.testing.tiny`)."""
    from vqa_shap.loaders.bases.generative import tiny_text_kwargs, tiny_vision_parts

    vision, processor = tiny_vision_parts(tok, realistic)
    config = LongVAConfig(vision_config=vision, text_config=Qwen2Config(**tiny_text_kwargs(tok, realistic)))
    return LongVAForCausalLM(config), processor
