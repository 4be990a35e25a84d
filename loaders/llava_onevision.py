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

from vqa_shap.loaders.base import ChatVLMLoader, VideoUnit


class LlavaOnevisionLoader(ChatVLMLoader):
    """Loader of LLaVA-OneVision-style checkpoints (``model_type`` ``llava_onevision``)."""

    family = "llava_onevision"
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
