"""LLaVA-OneVision / LLaVA-Video (transformers-native ``LlavaOnevisionForConditionalGeneration``).

Covers ``llava-hf/LLaVA-Video-7B-Qwen2-hf`` and the LLaVA-OneVision checkpoints. The SigLIP tower
encodes every frame independently and the projector's 2x2 pooling is per frame, so a frame's video
tokens depend on that frame alone: substituting the cached baseline-frame tokens for a masked frame is
*exactly* pixel masking (proved by the tests). The per-video ``image_newline`` token does not depend on
the pixels and is always kept.

HD-EPIC (as the paper's LLaVA-Video script): each kept input is its own video with a labelled placeholder
(``"video 1: <video>\\n"``, ``"image 1: <video>\\n"``; an image is a one-frame video). transformers'
forward takes a single ``pixel_values_videos`` tensor, so videos of different lengths cannot be batched
by the model itself; the reference path then runs the vision tower per video and passes the features
through the model's ``mm_encoder_outputs`` argument (the same computation, uncached).
"""

from __future__ import annotations

import numpy as np

from vqa_shap.families import declare_family
from vqa_shap.loaders.bases.chat import ChatVLMLoader
from vqa_shap.loaders.bases.loader import VideoUnit

#: LLaVA-Video (``llava-hf/LLaVA-Video-7B-Qwen2-hf``, the paper's L-V) is this architecture with
#: ``model_type`` ``llava_onevision``, so it is loaded by this family; there is no separate
#: ``llava_video`` family. Masked frames: zeros after normalisation, as the paper's L-V; EgoSchema
#: frames by ``linspace``.
FAMILY = declare_family(
    "llava_onevision",
    loader="LlavaOnevisionLoader",
    model_types=("llava_onevision",),
    tiny="build_tiny",
    protocols={"pollard2025": {"baseline": "normalized_zero", "sampler": "linspace"}},
)


class LlavaOnevisionLoader(ChatVLMLoader):
    """Loader of LLaVA-OneVision-style checkpoints (``model_type`` ``llava_onevision``)."""

    family = FAMILY.name
    temporal_unit = 1
    exact_cached_masking = True
    video_token = "<video>"
    right_padding = True
    model_class_name = "LlavaOnevisionForConditionalGeneration"

    # -- processor ---------------------------------------------------------------------
    def process(self, text, frames, prompt):
        import torch

        same = len({f.shape for f in frames}) == 1
        inputs = self.processor(text=[text], videos=list(frames), return_tensors="pt" if same else None)
        out = {"input_ids": torch.as_tensor(inputs["input_ids"]).to(self.device),
               "attention_mask": torch.as_tensor(inputs["attention_mask"]).to(self.device)}
        videos = inputs["pixel_values_videos"]
        if same:
            out["pixel_values_videos"] = videos.to(self.device, self.dtype)
        else:  # one [1, T_i, 3, H, W] tensor per video
            out["pixel_values_videos"] = [torch.as_tensor(v)[None].to(self.device, self.dtype) for v in videos]
        return out

    def _videos(self, inputs) -> list:
        videos = inputs["pixel_values_videos"]
        return list(videos) if isinstance(videos, list) else [v[None] for v in videos]

    def _tokens_per_frame(self) -> int:
        vision = self.model.config.vision_config
        side = -(-(vision.image_size // vision.patch_size) // 2)  # ceil: pooled 2x
        return side * side

    def video_tokens_per_input(self, inputs) -> list[int]:
        n = self._tokens_per_frame()
        return [v.shape[1] * n + 1 for v in self._videos(inputs)]

    # -- vision ------------------------------------------------------------------------
    def _features(self, pixel_values_videos):
        return self.model.model.get_video_features(pixel_values_videos).pooler_output

    def encode_video(self, inputs, units, frames):
        import torch

        unit_of = {(u.input, f): j for j, u in enumerate(units) for f in u.frames}
        n = self._tokens_per_frame()
        embeds, owner = [], []
        for k, video in enumerate(self._videos(inputs)):
            embeds.append(self._features(video)[0])
            for f in range(video.shape[1]):
                owner += [unit_of[(k, f)]] * n
            owner.append(-1)  # the video's image_newline token
        return torch.cat(embeds), torch.tensor(owner, dtype=torch.long), {}

    def encode_baseline(self, inputs, units, frames, baseline, kept, token_unit):
        n = self._tokens_per_frame()
        masked = kept.clone()
        row = 0
        for k, video in enumerate(self._videos(inputs)):
            if baseline == "black":
                black = np.zeros((1, *frames[k].shape[1:]), dtype=np.uint8)
                pixels = self.processor.video_processor(videos=[black], return_tensors="pt")["pixel_values_videos"]
                pixels = pixels.to(self.device, self.dtype)
            else:
                pixels = video[:, :1].new_zeros(video[:, :1].shape)
            block = self._features(pixels)[0, :n]
            for _ in range(video.shape[1]):
                masked[row:row + n] = block
                row += n
            row += 1  # newline
        return masked

    def zero_pixels(self, inputs, dropped: list[VideoUnit]) -> None:
        videos = self._videos(inputs)
        for unit in dropped:
            videos[unit.input][0, list(unit.frames)] = 0

    def forward_pixels(self, inputs):
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if not isinstance(inputs["pixel_values_videos"], list):
            return super().forward_pixels(inputs)
        # Videos of different lengths: vision tower per video, then the model's own merge path.
        feats = torch.cat([self._features(v)[0] for v in inputs["pixel_values_videos"]])
        out = self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                         mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=feats[None])},
                         logits_to_keep=1)
        return out.logits[:, -1]


# ---------------------------------------------------------------------------------------------
# tiny random model (tests, benchmarks): see vqa_shap.loaders.testing.tiny
# ---------------------------------------------------------------------------------------------


def llava_onevision_parts(tok, *, image_size: int, patch_size: int, vision_hidden: int, vision_intermediate: int,
                          vision_layers: int, vision_heads: int, hidden: int, layers: int, heads: int = 4,
                          kv_heads: int = 2, **text_kw):
    """The config and the real processor of a small LLaVA-OneVision (SigLIP tower + Qwen2 LM).

    Shared by the tiny random models and the trained demo model (:mod:`vqa_shap.demo`).

    Returns:
        ``(LlavaOnevisionConfig, LlavaOnevisionProcessor)``.
    """
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                              LlavaOnevisionVideoProcessor, Qwen2Config, SiglipVisionConfig)

    from vqa_shap.loaders.testing.tiny import template

    vision = SiglipVisionConfig(hidden_size=vision_hidden, intermediate_size=vision_intermediate,
                                num_hidden_layers=vision_layers, num_attention_heads=vision_heads,
                                image_size=image_size, patch_size=patch_size, vision_use_head=False)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                       tie_word_embeddings=False, **text_kw)
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1,
        image_grid_pinpoints=[[image_size, image_size]],
    )
    size = {"height": image_size, "width": image_size}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=[[image_size, image_size]]),
        tokenizer=tok, video_processor=LlavaOnevisionVideoProcessor(size=size),
        num_image_tokens=(image_size // patch_size) ** 2, vision_feature_select_strategy="full",
        chat_template=template("<video>", "<image>"),
    )
    return config, processor


def build_tiny(tok, realistic: bool = False):
    """A tiny random LLaVA-OneVision and its real processor (see :mod:`vqa_shap.loaders.testing.tiny`)."""
    from transformers import LlavaOnevisionForConditionalGeneration

    # 96 px / patch 8 = 12x12 patches, pooled 2x -> 36 tokens per frame (realistic); 32/8 -> 4 tokens.
    # Realistic: the vision tower sees 4x more patches per frame than the LM gets tokens and is as wide
    # and deep as the LM, as in LLaVA-OneVision-0.5B (729 SigLIP patches -> 196 tokens per frame).
    image, patch = (96, 8) if realistic else (32, 8)
    hidden, layers = (128, 3) if realistic else (64, 2)
    config, processor = llava_onevision_parts(
        tok, image_size=image, patch_size=patch, vision_hidden=hidden if realistic else hidden // 2,
        vision_intermediate=2 * hidden, vision_layers=layers, vision_heads=4 if realistic else 2,
        hidden=hidden, layers=layers)
    return LlavaOnevisionForConditionalGeneration(config), processor
