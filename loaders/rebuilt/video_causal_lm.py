"""The model of the non-native generative video LLMs (LongVA, VideoLLaMA2) as a standard transformers
``PreTrainedModel``: a CLIP vision tower, a family-specific connector and a causal language model, plus
their two-part processor. The loader that drives them is :mod:`vqa_shap.loaders.bases.generative`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, CLIPVisionModel, PreTrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec

__all__ = ["VideoCausalLM", "VideoCausalLMConfig", "VisionTextProcessor"]


class VisionTextProcessor:
    """The two preprocessing parts of these models: a tokenizer and the CLIP image processor.

    ``save_pretrained``/``from_pretrained`` write and read both in one folder.
    """

    def __init__(self, tokenizer, image_processor):
        self.tokenizer = tokenizer
        self.image_processor = image_processor

    def save_pretrained(self, folder: str | Path) -> None:
        self.tokenizer.save_pretrained(folder)
        self.image_processor.save_pretrained(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path, vision_folder: str | Path | None = None) -> "VisionTextProcessor":
        """Tokenizer from ``folder``, image processor from ``vision_folder`` (default ``folder``)."""
        from transformers import AutoTokenizer, CLIPImageProcessor

        return cls(AutoTokenizer.from_pretrained(str(folder)),
                   CLIPImageProcessor.from_pretrained(str(vision_folder or folder)))


# ------------------------------------------------------------------------------------------ model
class _SpliceEmbedding(nn.Module):
    """Token embedding that maps placeholder (negative) ids to row 0; the loader overwrites those rows."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding

    @property
    def weight(self) -> torch.Tensor:
        return self.embedding.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids.clamp(min=0))


@strict
class VideoCausalLMConfig(PreTrainedConfig):
    """The fields every :class:`VideoCausalLM` config has: a CLIP ``vision_config``, the language model's
    ``text_config`` and the vision layer read. Family configs add ``model_type``, their own fields and
    ``sub_configs_defaults = VideoCausalLMConfig.family_sub_configs("<text model_type>")``."""

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    vision_feature_layer: int = -2
    tie_word_embeddings: bool = False

    @staticmethod
    def family_sub_configs(text_model_type: str) -> dict[str, SubConfigSpec]:
        """``sub_configs_defaults`` of a family: the CLIP vision tower and a ``text_model_type`` language model."""
        return {"vision_config": SubConfigSpec(config_class=AutoConfig, model_type="clip_vision_model"),
                "text_config": SubConfigSpec(config_class=AutoConfig, model_type=text_model_type)}


class VideoCausalLM(PreTrainedModel):
    """CLIP vision tower + ``mm_projector`` (family specific) + a causal language model.

    Subclasses set ``config_class`` (with ``vision_config``, ``text_config``, ``vision_feature_layer``)
    and implement :meth:`build_projector` and :meth:`video_embeds`. Submodules: ``vision_tower``
    (``CLIPVisionModel``), ``mm_projector``, ``language_model`` (``AutoModelForCausalLM``).
    """

    base_model_prefix = ""
    _no_split_modules = ["CLIPEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True

    def __init__(self, config):
        super().__init__(config)
        self.vision_tower = CLIPVisionModel(config.vision_config)
        self.mm_projector = self.build_projector(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def build_projector(self, config) -> nn.Module:
        """The family's connector from CLIP features to language-model embeddings."""
        raise NotImplementedError

    def get_input_embeddings(self) -> nn.Module:
        # negative placeholder ids (as the original IMAGE_TOKEN_INDEX) are tolerated
        return _SpliceEmbedding(self.language_model.get_input_embeddings())

    def patch_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[T, P, C]`` patch features (CLS dropped) of ``vision_feature_layer``, frame by frame."""
        out = self.vision_tower(pixel_values=pixel_values.to(self.dtype), output_hidden_states=True)
        return out.hidden_states[self.config.vision_feature_layer][:, 1:]

    def video_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, H]`` visual tokens of one video ``[T, 3, S, S]``: the full, uncached path."""
        raise NotImplementedError

    def splice(self, input_ids: torch.Tensor, videos: Sequence[torch.Tensor]) -> torch.Tensor:
        """Text embeddings of ``input_ids [1, L]`` with the videos' tokens at the placeholder ids."""
        embeds = self.get_input_embeddings()(input_ids)
        embeds[input_ids < 0] = torch.cat([self.video_embeds(v) for v in videos]).to(embeds.dtype)
        return embeds
