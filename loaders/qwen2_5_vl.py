"""Qwen2.5-VL (transformers-native ``Qwen2_5_VLForConditionalGeneration``).

The vision patch embedding is a Conv3d over ``temporal_patch_size = 2`` frames, so a video token
depends on a *pair* of frames: the natural player is a frame pair (``temporal_unit = 2``). Vision
attention (windowed and full) is confined to one temporal slice (``cu_seqlens``), so a pair encoded
once inside the whole video equals that pair encoded alone, and substituting the cached baseline
pair's tokens is exactly pixel masking of both frames (proved by the tests). An input with an odd
number of frames ends with a one-frame player: the processor repeats that frame to fill the pair, and
when it is masked both copies are the baseline, exactly what the cached baseline pair encodes.

Text positions use multimodal RoPE: ``position_ids`` come from the model's own ``get_rope_index`` on
the full token ids with ``mm_token_type_ids`` (0 text, 1 image, 2 video) and ``second_per_grid_ts``
(the sampled frame rate, from the plan's timestamps). Each input is its own video, labelled like
LLaVA's (``"video 1: <|vision_start|><|video_pad|><|vision_end|>\\n"``); an image is a one-frame video.
"""

from __future__ import annotations

import numpy as np

from vqa_shap.families import declare_family
from vqa_shap.loaders.bases.chat import ChatVLMLoader, zero_grid_slices
from vqa_shap.loaders.bases.loader import VideoUnit

#: Masked frames: zeros after normalisation (the dataset-mean colour), the majority choice of the
#: paper's models, not black.
FAMILY = declare_family(
    "qwen2_5_vl",
    loader="Qwen2_5_VLLoader",
    model_types=("qwen2_5_vl",),
    tiny="build_tiny",
    protocols={"pollard2025": {"baseline": "normalized_zero", "sampler": "linspace"}},
)


def sampled_fps(times) -> float:
    """Frame rate of evenly sampled ``times`` (1.0 for a single frame or a zero span)."""
    times = list(times)
    if len(times) < 2 or times[-1] <= times[0]:
        return 1.0
    return (len(times) - 1) / (times[-1] - times[0])


class Qwen2_5_VLLoader(ChatVLMLoader):
    """Loader of Qwen2.5-VL checkpoints (``model_type`` ``qwen2_5_vl``); players are frame pairs."""

    family = FAMILY.name
    temporal_unit = 2
    exact_cached_masking = True
    video_token = "<|video_pad|>"
    right_padding = True
    model_class_name = "Qwen2_5_VLForConditionalGeneration"

    def __init__(self, model, processor, **kw):
        super().__init__(model, processor, **kw)
        self.image_token_id = int(model.config.image_token_id)

    def video_placeholder(self) -> str:
        return f"<|vision_start|>{self.video_token}<|vision_end|>"

    # -- processor ---------------------------------------------------------------------
    def process(self, text, frames, prompt):
        from transformers.video_utils import VideoMetadata

        metadata = [VideoMetadata(total_num_frames=len(f), fps=sampled_fps(i.times), frames_indices=list(range(len(f))))
                    for f, i in zip(frames, prompt.inputs)]
        inputs = self.processor(text=[text], videos=list(frames), video_metadata=metadata, return_tensors="pt")
        out = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        out["pixel_values_videos"] = out["pixel_values_videos"].to(self.dtype)
        out["second_per_grid_ts"] = out["second_per_grid_ts"].to(self.device) if hasattr(
            out["second_per_grid_ts"], "to") else out["second_per_grid_ts"]
        return out

    def _merge(self) -> int:
        return self.model.config.vision_config.spatial_merge_size

    def video_tokens_per_input(self, inputs) -> list[int]:
        return [int(g.prod()) // self._merge() ** 2 for g in inputs["video_grid_thw"]]

    # -- vision ------------------------------------------------------------------------
    def _features(self, pixels, grid):
        return self.model.model.get_video_features(pixels, grid).pooler_output

    def encode_video(self, inputs, units, frames):
        import torch

        unit_of = {(u.input, u.frames[0] // 2): j for j, u in enumerate(units)}
        grids = inputs["video_grid_thw"]
        embeds = torch.cat(self._features(inputs["pixel_values_videos"], grids))
        owner = []
        for k, (t, h, w) in enumerate(grids.tolist()):
            per_slice = h * w // self._merge() ** 2
            for m in range(t):
                owner += [unit_of[(k, m)]] * per_slice
        extras = {"video_grid_thw": grids, "second_per_grid_ts": inputs.get("second_per_grid_ts")}
        return embeds, torch.tensor(owner, dtype=torch.long), extras

    def encode_baseline(self, inputs, units, frames, baseline, kept, token_unit):
        import torch

        masked = kept.clone()
        row = 0
        for k, grid in enumerate(inputs["video_grid_thw"]):
            t, h, w = grid.tolist()
            one = torch.tensor([[1, h, w]], device=grid.device, dtype=grid.dtype)
            if baseline == "black":
                black = np.zeros((2, *frames[k].shape[1:]), dtype=np.uint8)
                pixels = self.processor.video_processor(videos=[black], return_tensors="pt")
                if pixels["video_grid_thw"].tolist() != one.tolist():
                    raise RuntimeError("baseline frames were resized differently from the input's frames")
                pixels = pixels["pixel_values_videos"].to(self.device, self.dtype)
            else:
                pixels = inputs["pixel_values_videos"].new_zeros((h * w, inputs["pixel_values_videos"].shape[1]))
            block = self._features(pixels, one)[0]
            for _ in range(t):
                masked[row:row + len(block)] = block
                row += len(block)
        return masked

    def zero_pixels(self, inputs, dropped: list[VideoUnit]) -> None:
        zero_grid_slices(inputs, ((unit.input, unit.frames[0] // 2) for unit in dropped))

    # -- language model ----------------------------------------------------------------
    def position_ids(self, prepared, ids):
        types = (ids == self.video_token_id).int() * 2 + (ids == self.image_token_id).int()
        positions, _ = self.model.model.get_rope_index(
            ids[None].to(self.device), types[None].to(self.device),
            video_grid_thw=prepared.extras["video_grid_thw"],
            second_per_grid_ts=prepared.extras["second_per_grid_ts"])
        return positions[:, 0].cpu()

    def check_processor_ids(self, prepared, inputs) -> None:
        super().check_processor_ids(prepared, inputs)
        ids = inputs["input_ids"][0]
        types = (ids == self.video_token_id).int() * 2 + (ids == self.image_token_id).int()
        if "mm_token_type_ids" in inputs and not bool((inputs["mm_token_type_ids"][0] == types).all()):
            raise RuntimeError("mm_token_type_ids derived from the ids differ from the processor's")


# ---------------------------------------------------------------------------------------------
# tiny random model (tests, benchmarks): see vqa_shap.loaders.testing.tiny
# ---------------------------------------------------------------------------------------------


def build_tiny(tok, realistic: bool = False):
    """A tiny random Qwen2.5-VL and its real processor (see :mod:`vqa_shap.loaders.testing.tiny`)."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor, Qwen2VLVideoProcessor)
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (Qwen2_5_VLTextConfig,
                                                                         Qwen2_5_VLVisionConfig)

    from vqa_shap.loaders.testing.tiny import template

    # Frames are resized to side x side; 14-px patches, 2x2 merge: 56 -> 4 tokens per frame pair.
    side = 168 if realistic else 56
    hidden, layers = (128, 4) if realistic else (64, 2)
    vision = Qwen2_5_VLVisionConfig(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                                    spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                                    out_hidden_size=hidden, fullatt_block_indexes=[1], tokens_per_second=2)
    head_dim = hidden // 4
    quarter = head_dim // 2  # mrope sections must sum to head_dim / 2
    mrope = [quarter - 2 * (quarter // 3), quarter // 3, quarter // 3]
    text = Qwen2_5_VLTextConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope},
                                bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                tie_word_embeddings=False)
    cfg = Qwen2_5_VLConfig(
        vision_config=vision.to_dict(), text_config=text.to_dict(),
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    pixels = {"shortest_edge": side * side, "longest_edge": side * side}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=14, temporal_patch_size=2, merge_size=2),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(size=pixels, patch_size=14, temporal_patch_size=2, merge_size=2,
                                              do_sample_frames=False, cap_pixels_per_frame=True),
        chat_template=template("<|vision_start|><|video_pad|><|vision_end|>",
                                "<|vision_start|><|image_pad|><|vision_end|>"),
    )
    return model, processor
