"""VideoLLaMA3 (transformers-native ``VideoLlama3ForConditionalGeneration``).

* **Token compression is switched off** (``use_token_compression=False`` on every processor call).
  With it on, the processor drops the tokens of patches that barely differ from the previous frame,
  so a masked (black) frame next to another black frame would *remove* tokens: the sequence length
  would depend on the mask, contrary to the paper's semantics (a masked frame is replaced, never
  removed), and per-coalition recomputation would also make masking depend on the
  neighbouring frames. The paper's VL3 code feeds frames through the image path, which does not
  compress either. Without compression every frame keeps its tokens.
* The vision encoder attends within one frame (``cu_seqlens`` per frame) and the 2x2 downsampling is
  per frame, so cached per-frame tokens with the black frame's tokens substituted equal pixel masking
  exactly (proved by the tests). Masked frames are raw black frames (``"black"``, as the paper's VL3).
* The processor's per-frame ``"Time t s:"`` text carries the plan's timestamps (passed as the video
  metadata: ``fps = 1`` and ``frames_indices`` = the timestamps). It is fixed text: never masked.
* ``VideoLlama3ForConditionalGeneration.forward`` has no ``logits_to_keep`` (transformers 5), so
  the scores are ``lm_head`` applied to the last position's hidden state only.
* Prompt (the paper's VL3): one video block per kept input, each preceded by a text block holding the
  input's label when there are several inputs; blocks are separated by newlines.
"""

from __future__ import annotations

import numpy as np

from vqa_shap.families import declare_family
from vqa_shap.loaders.bases.chat import ChatVLMLoader, zero_grid_slices
from vqa_shap.loaders.bases.loader import VideoUnit
from vqa_shap.loaders.bases.compat import kv_cache, returned_cache

#: Masked frames are raw black frames and EgoSchema frames are taken at 1 fps (capped), as the
#: paper's VL3.
FAMILY = declare_family(
    "video_llama3",
    loader="VideoLlama3Loader",
    model_types=("video_llama_3",),
    tiny="build_tiny",
    protocols={"pollard2025": {"baseline": "black", "sampler": "fps1_capped"}},
)


class VideoLlama3Loader(ChatVLMLoader):
    """Loader of VideoLLaMA3 checkpoints in transformers format (``model_type`` ``video_llama_3``)."""

    family = FAMILY.name
    temporal_unit = 1
    exact_cached_masking = True
    video_token = "<|video_pad|>"
    model_class_name = "VideoLlama3ForConditionalGeneration"

    def input_text(self, visual_input, labelled: bool) -> str:
        # the label is a text block of its own line, before the input's video block
        return f"{visual_input.label}\n{self.video_token}\n" if labelled else f"{self.video_token}\n"

    # -- processor ---------------------------------------------------------------------
    def process(self, text, frames, prompt):
        from transformers.video_utils import VideoMetadata

        # timestamps = frames_indices / fps: fps 1 makes the "Time t s:" text show the plan's times
        metadata = [VideoMetadata(total_num_frames=len(f), fps=1.0, frames_indices=list(i.times))
                    for f, i in zip(frames, prompt.inputs)]
        inputs = self.processor(text=[text], videos=list(frames), video_metadata=metadata,
                                use_token_compression=False, return_tensors="pt")
        if not bool(inputs["video_compression_mask"].all()):
            raise RuntimeError("VideoLLaMA3 token compression could not be switched off")
        out = {k: v.to(self.device) for k, v in inputs.items() if hasattr(v, "to")}
        out["pixel_values_videos"] = out["pixel_values_videos"].to(self.dtype)
        return out

    def _per_frame(self, grid, merge) -> int:
        return int(grid[1] * grid[2]) // int(merge) ** 2

    def video_tokens_per_input(self, inputs) -> list[int]:
        return [int(g.prod()) // int(m) ** 2 for g, m in zip(inputs["video_grid_thw"], inputs["video_merge_sizes"])]

    # -- vision ------------------------------------------------------------------------
    def _features(self, pixels, grid, merge):
        return self.model.model.get_video_features(pixels, grid, merge).pooler_output

    def encode_video(self, inputs, units, frames):
        import torch

        unit_of = {(u.input, f): j for j, u in enumerate(units) for f in u.frames}
        grids, merges = inputs["video_grid_thw"], inputs["video_merge_sizes"]
        embeds = torch.cat(self._features(inputs["pixel_values_videos"], grids, merges))
        owner = []
        for k, (grid, merge) in enumerate(zip(grids, merges)):
            for f in range(int(grid[0])):
                owner += [unit_of[(k, f)]] * self._per_frame(grid, merge)
        return embeds, torch.tensor(owner, dtype=torch.long), {}

    def encode_baseline(self, inputs, units, frames, baseline, kept, token_unit):
        import torch

        masked = kept.clone()
        row = 0
        for k, (grid, merge) in enumerate(zip(inputs["video_grid_thw"], inputs["video_merge_sizes"])):
            t, h, w = (int(x) for x in grid)
            one = torch.tensor([[1, h, w]], device=grid.device, dtype=grid.dtype)
            if baseline == "black":
                # the resize depends on the frame count, so process a black clip of the same shape
                black = np.zeros_like(frames[k])
                pixels = self.processor.video_processor(videos=[black], use_token_compression=False,
                                                        return_tensors="pt")
                if pixels["video_grid_thw"][0].tolist() != grid.tolist():
                    raise RuntimeError("baseline frames were resized differently from the input's frames")
                pixels = pixels["pixel_values_videos"][:h * w].to(self.device, self.dtype)
            else:
                pixels = inputs["pixel_values_videos"].new_zeros((h * w, inputs["pixel_values_videos"].shape[1]))
            block = self._features(pixels, one, merge[None])[0]
            for _ in range(t):
                masked[row:row + len(block)] = block
                row += len(block)
        return masked

    def zero_pixels(self, inputs, dropped: list[VideoUnit]) -> None:
        zero_grid_slices(inputs, ((unit.input, f) for unit in dropped for f in unit.frames))

    # -- language model ----------------------------------------------------------------
    def forward_pixels(self, inputs):
        hidden = self.model.model(**inputs).last_hidden_state
        return self.model.lm_head(hidden[:, -1])

    right_padding = True

    def forward_at(self, embeds, position_ids, last):
        import torch

        hidden = self.model.model(inputs_embeds=embeds, position_ids=position_ids, use_cache=False).last_hidden_state
        return self.model.lm_head(hidden[torch.arange(len(last), device=last.device), last])

    def forward_last(self, embeds, attention_mask, position_ids, past_key_values):
        out = self.model.model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                               **kv_cache(self.model.model, past_key_values))
        return self.model.lm_head(out.last_hidden_state[:, -1]), returned_cache(out)


# ---------------------------------------------------------------------------------------------
# tiny random model (tests, benchmarks): see vqa_shap.loaders.testing.tiny
# ---------------------------------------------------------------------------------------------


def build_tiny(tok, realistic: bool = False):
    """A tiny random VideoLLaMA3 and its real processor (see :mod:`vqa_shap.loaders.testing.tiny`)."""
    from transformers import (Qwen2Config, VideoLlama3Config, VideoLlama3ForConditionalGeneration,
                              VideoLlama3ImageProcessor, VideoLlama3Processor, VideoLlama3VideoProcessor)
    from transformers.models.video_llama_3.configuration_video_llama_3 import VideoLlama3VisionConfig

    from vqa_shap.loaders.testing.tiny import template

    side = 168 if realistic else 56  # 14-px patches, 2x2 merge: 56 -> 4 tokens per frame
    hidden, layers = (128, 4) if realistic else (64, 2)
    vision = VideoLlama3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, patch_size=14)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                       tie_word_embeddings=False)
    cfg = VideoLlama3Config(vision_config=vision.to_dict(), text_config=text.to_dict(),
                            image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
                            video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"))
    model = VideoLlama3ForConditionalGeneration(cfg)
    # the video processor divides longest_edge by the frame count: allow up to 8 frames at side x side
    pixels = {"shortest_edge": side * side, "longest_edge": side * side * 8}
    processor = VideoLlama3Processor(
        image_processor=VideoLlama3ImageProcessor(size=pixels, patch_size=14, merge_size=1),
        tokenizer=tok,
        # Token compression drops tokens of frames similar to their predecessor, so a black (masked)
        # frame would change the sequence; loaders switch it off per call anyway (see video_llama3.py).
        video_processor=VideoLlama3VideoProcessor(size=pixels, patch_size=14, merge_size=2,
                                                  use_token_compression=False, do_sample_frames=False),
        chat_template=template("<|video_pad|>", "<|image_pad|>"),
    )
    return model, processor
