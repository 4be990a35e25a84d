"""The FrozenBiLM model in transformers classes: DeBERTa-v2 with adapters, the EMD and the answer head.

Part of the ``frozenbilm`` family (:mod:`vqa_shap.loaders.frozenbilm`, which declares it and re-exports
these names). Importing this module registers ``model_type`` ``frozenbilm`` with ``AutoConfig``/``AutoModel``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from transformers import (AutoConfig, AutoModel, CLIPVisionConfig, CLIPVisionModelWithProjection, DebertaV2Config,
                          DebertaV2Model, PreTrainedConfig, PreTrainedModel)
from transformers.configuration_utils import SubConfigSpec
from transformers.models.deberta_v2.modeling_deberta_v2 import DebertaV2LMPredictionHead

from vqa_shap.loaders.bases.option_head import CLIP_MEAN, CLIP_STD
from vqa_shap.loaders.bases.loader import LoaderError

#: ``model_type`` of converted folders.
MODEL_TYPE = "frozenbilm"
#: The two answer words, in answer-head order (score = P(first)).
ANSWER_WORDS = ("Yes", "No")


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
