"""VideoLLaMA2 (``DAMO-NLP-SG/VideoLLaMA2-7B-16F``), rebuilt from transformers parts (docs/loaders.md).

CLIP ViT-L/14-336 (layer -2, patch tokens) -> the STC connector -> Mistral. The connector is the only
model-specific code (reimplemented here; the original builds it from timm's ``RegStage``):

1. ``s1``: a RegNet stage (4 bottleneck blocks, ``mm_hidden -> hidden``) applied to every frame alone;
2. ``sampler``: ``Conv3d(kernel 2, stride 2, padding 1)`` + SiLU — output slice ``k`` mixes frames
   ``2k-1`` and ``2k`` (slice 0 = frame 0 alone; with an even frame count the last slice = the last frame);
3. ``s2``: another RegNet stage per output slice; 4. ``readout``: Linear, GELU, Linear.
Tokens are in (slice, row, column) order: 16 frames of 24x24 patches -> 9 x 13 x 13 = 1521 tokens.

Exact cached masking (the note's proposal): ``s1`` is per frame, so it runs once per frame and once for
the baseline frame; every output slice depends on at most two frames, so each slice's tokens are
computed in :meth:`VideoLlama2Loader.prepare` for each on/off state of its frames (<= 4) and a coalition
just gathers them. The tests prove this equal to the full connector on masked pixels.

Prompt (the paper's VL2): the checkpoint tokenizer's chat template on ``[system, user: "<video>\\n" +
instruction]`` with the generation prompt, split at ``<video>`` and spliced at id -201 as the original.
Several inputs (HD-EPIC) are concatenated into one video and the system prompt is prefixed with
``"<N> input videos have been concatenated together. "``. Masked frames: zeroed pixel values after the
CLIP processor (``normalized_zero``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, MistralConfig

from vqa_shap.families import declare_family
from vqa_shap.loaders.bases.loader import LoaderError, VideoUnit
from vqa_shap.loaders.bases.generative import GenerativeVideoLoader, text_config_kwargs
from vqa_shap.loaders.rebuilt.video_causal_lm import VideoCausalLM, VideoCausalLMConfig

#: ``videollama2``: folders converted by scripts/convert_videollama2.py; ``videollama2_mistral``: the
#: original checkpoint. EgoSchema frames at segment midpoints, as the paper's VL2.
FAMILY = declare_family(
    "video_llama2",
    loader="VideoLlama2Loader",
    model_types=("videollama2", "videollama2_mistral"),
    tiny="build_tiny",
    protocols={"pollard2025": {"baseline": "normalized_zero", "sampler": "segment_midpoints"}},
)


# ------------------------------------------------------------------------------------------ STC connector
class LayerNormAct2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map, then an optional SiLU (timm ``LayerNormAct2d``)."""

    def __init__(self, channels: int, act: bool = True):
        super().__init__(channels, eps=1e-5)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return self.act(x.permute(0, 3, 1, 2))


class ConvNormAct(nn.Module):
    """Bias-free conv (``conv``) + channel LayerNorm (``bn``) + optional SiLU."""

    def __init__(self, cin: int, cout: int, kernel: int, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False)
        self.bn = LayerNormAct2d(cout, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SqueezeExcite(nn.Module):
    """Channel gate: ``x * sigmoid(fc2(silu(fc1(mean_hw(x)))))``."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(x.mean((2, 3), keepdim=True)))))


class Bottleneck(nn.Module):
    """RegNet bottleneck (bottle ratio 1, depthwise 3x3, SE from the block's input width / 4)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, 1)
        self.conv2 = ConvNormAct(cout, cout, 3, groups=cout)
        self.se = SqueezeExcite(cout, int(round(cin * 0.25)))
        self.conv3 = ConvNormAct(cout, cout, 1, act=False)
        self.downsample = ConvNormAct(cin, cout, 1, act=False) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.se(self.conv2(self.conv1(x))))
        return F.silu(out + self.downsample(x))


class RegStage(nn.Sequential):
    """``depth`` bottlenecks named ``b1``, ``b2``, … (the first one changes the width)."""

    def __init__(self, depth: int, cin: int, cout: int):
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", Bottleneck(cin if i == 0 else cout, cout))


class STCConnector(nn.Module):
    """VideoLLaMA2's spatio-temporal convolution connector (submodule names of the original)."""

    def __init__(self, vision_hidden: int, hidden: int, depth: int = 4):
        super().__init__()
        self.s1 = RegStage(depth, vision_hidden, hidden)
        self.sampler = nn.Sequential(nn.Conv3d(hidden, hidden, 2, stride=2, padding=1), nn.SiLU())
        self.s2 = RegStage(depth, hidden, hidden)
        self.readout = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    @staticmethod
    def grid(features: torch.Tensor) -> torch.Tensor:
        """``[T, P, C]`` patch features -> ``[T, C, h, w]`` maps."""
        frames, patches, channels = features.shape
        side = int(round(patches ** 0.5))
        return features.transpose(1, 2).reshape(frames, channels, side, side)

    def finish(self, sampled: torch.Tensor) -> torch.Tensor:
        """``[S, C, h, w]`` sampled slices -> ``[S * h * w, H]`` tokens (``s2`` then ``readout``)."""
        return self.readout(self.s2(sampled).flatten(2).transpose(1, 2).flatten(0, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[T, P, C]`` patch features of one video -> ``[S * h * w, H]`` tokens (the full path)."""
        maps = self.s1(self.grid(features))                           # [T, H, h, w]
        sampled = self.sampler(maps.transpose(0, 1)[None])[0]         # [H, S, h', w']
        return self.finish(sampled.transpose(0, 1))

    def slice_input(self, first: torch.Tensor | None, second: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """Output slice of the sampler from its two input frames' ``s1`` maps (``None`` = padding)."""
        pair = torch.stack([x if x is not None else torch.zeros_like(like) for x in (first, second)], dim=1)
        conv = self.sampler[0]
        out = F.conv3d(pair[None], conv.weight, conv.bias, stride=conv.stride, padding=(0, *conv.padding[1:]))
        return self.sampler[1](out)[0, :, 0]                          # [H, h', w']


def slice_frames(n_frames: int) -> list[tuple[int | None, int | None]]:
    """The two frames (``None`` = temporal padding) of each sampler output slice of a ``n_frames`` video."""
    n_slices = n_frames // 2 + 1
    return [tuple(f if 0 <= f < n_frames else None for f in (2 * k - 1, 2 * k)) for k in range(n_slices)]


# ------------------------------------------------------------------------------------------ model
@strict
class VideoLlama2Config(VideoCausalLMConfig):
    """Config of :class:`VideoLlama2ForCausalLM` (``model_type`` ``videollama2``)."""

    model_type = "videollama2"
    sub_configs_defaults = VideoCausalLMConfig.family_sub_configs("mistral")

    stc_depth: int = 4


AutoConfig.register(VideoLlama2Config.model_type, VideoLlama2Config, exist_ok=True)


class VideoLlama2ForCausalLM(VideoCausalLM):
    """CLIP vision tower + STC connector (``mm_projector``) + Mistral."""

    config_class = VideoLlama2Config

    def build_projector(self, config) -> nn.Module:
        return STCConnector(config.vision_config.hidden_size, config.text_config.hidden_size, config.stc_depth)

    def tokens_per_video(self, n_frames: int) -> int:
        side = self.config.vision_config.image_size // self.config.vision_config.patch_size
        return (n_frames // 2 + 1) * (side // 2 + 1) ** 2

    def video_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.mm_projector(self.patch_features(pixel_values))


# ------------------------------------------------------------------------------------------ loader
class VideoLlama2Loader(GenerativeVideoLoader):
    """Loader of VideoLLaMA2: converted folders (``videollama2``) or the original ``videollama2_mistral`` one."""

    family = FAMILY.name
    temporal_unit = 1
    exact_cached_masking = True
    video_token = "<video>"
    placeholder_id = -201  # the original MODAL_INDEX_MAP["<video>"]
    original_model_types = ("videollama2_mistral",)
    #: The paper's VL2 generation: greedy, up to 2048 new tokens.
    generation_defaults = {"max_new_tokens": 2048, "do_sample": False, "temperature": None}

    @classmethod
    def model_class(cls):
        return VideoLlama2ForCausalLM

    @classmethod
    def config_from_original(cls, original: dict[str, Any], vision_config) -> VideoLlama2Config:
        cls.require_settings(original, {"mm_projector_type": "stc_connector", "mm_vision_select_feature": "patch"},
                             "VideoLLaMA2's {expected}; only the STC-connector VideoLLaMA2 models are supported")
        return VideoLlama2Config(vision_config=vision_config,
                                 text_config=MistralConfig(**text_config_kwargs(original, MistralConfig)),
                                 vision_feature_layer=int(original.get("mm_vision_select_layer", -2)))

    # -- prompt: the tokenizer's chat template; inputs concatenated into one video -------------------
    def prompt_text(self, prompt) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise LoaderError(f"{self.checkpoint}: the tokenizer has no chat template (VideoLLaMA2 prompts use it)")
        system = prompt.system
        if len(prompt.inputs) > 1:
            system = f"{len(prompt.inputs)} input videos have been concatenated together. {system}"
        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": f"{self.video_token}\n{prompt.instruction}"}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def group_videos(self, pixel_values):
        return [torch.cat(pixel_values)]

    def frame_position(self, inputs, unit: VideoUnit, frame: int) -> tuple[int, int]:
        return 0, inputs["offsets"][unit.input] + frame

    def video_tokens_per_input(self, inputs) -> list[int]:
        return [self.model.tokens_per_video(len(v)) for v in inputs["pixel_values"]]

    # -- the per-slice cache ------------------------------------------------------------------------
    def encode_video(self, inputs, units, frames):
        """All-kept tokens, computed slice by slice; ``extras`` keeps what the per-state cache needs.

        ``extras``: ``s1`` (every frame's ``s1`` map), ``pixels`` (one frame's pixels, for the
        baseline), ``slice_frames`` ``[S, 2]`` (player of each slice's two frames; -1 = padding).
        Token owners are all -1: :meth:`_video_embeds` gathers per slice state instead.
        """
        video = inputs["pixel_values"][0]
        unit_of = {self.frame_position(inputs, u, f)[1]: j for j, u in enumerate(units) for f in u.frames}
        stc = self.model.mm_projector
        maps = stc.s1(stc.grid(self.model.patch_features(video)))                 # [T, H, h, w]
        pairs = slice_frames(len(video))
        tokens = self._slices(maps, maps[0], pairs, [(True, True)] * len(pairs))
        owners = torch.tensor([[-1 if f is None else unit_of[f] for f in pair] for pair in pairs],
                              dtype=torch.long, device=self.device)
        extras = {"s1": maps, "pixels": video[:1], "slice_frames": owners}
        return tokens, torch.full((tokens.shape[0],), -1, dtype=torch.long), extras

    def encode_baseline(self, inputs, units, frames, baseline, kept, token_unit):
        video = inputs["pixel_values"][0]
        masked = self._baseline_map(frames, baseline, video)
        pairs = slice_frames(len(video))
        return self._slices(None, masked, pairs, [(False, False)] * len(pairs))

    def _baseline_map(self, frames, baseline: str, like: torch.Tensor) -> torch.Tensor:
        stc = self.model.mm_projector
        return stc.s1(stc.grid(self.model.patch_features(self.baseline_pixels(frames[0], baseline, like))))[0]

    def _slices(self, maps, masked, pairs, keeps) -> torch.Tensor:
        """Tokens of every slice with its frames kept (``maps[f]``) or masked (``masked``) as ``keeps`` says."""
        stc = self.model.mm_projector
        inputs = [stc.slice_input(*[None if f is None else (maps[f] if k else masked) for f, k in zip(pair, keep)],
                                  like=masked) for pair, keep in zip(pairs, keeps)]
        return stc.finish(torch.stack(inputs))

    def slice_states(self, prepared) -> torch.Tensor:
        """``[S, 4, n, H]``: each slice's tokens for state ``2 * keep(first) + keep(second)``, computed once."""
        extras = prepared.extras
        if "slice_states" not in extras:
            masked = self._baseline_map(prepared.frames, prepared.baseline, extras["pixels"])
            pairs = slice_frames(extras["s1"].shape[0])
            n = len(pairs)
            states = [self._slices(extras["s1"], masked, pairs, [(bool(s >> 1), bool(s & 1))] * n) for s in range(4)]
            extras["slice_states"] = torch.stack(states).view(4, n, -1, states[0].shape[-1]).transpose(0, 1).to(self.dtype)
            del extras["s1"]  # no longer needed: free it
        return extras["slice_states"]

    def _video_embeds(self, prepared, video_keep: np.ndarray) -> torch.Tensor:
        owners = prepared.extras["slice_frames"]
        keep = torch.as_tensor(np.append(video_keep, True), device=owners.device)[owners]  # [S, 2]; -1 -> kept
        state = (keep[:, 0].long() << 1) | keep[:, 1].long()
        states = self.slice_states(prepared)
        return states[torch.arange(len(states), device=states.device), state.to(states.device)].flatten(0, 1)


def build_tiny(tok, realistic: bool = False):
    """A tiny random VideoLLaMA2 and its processor (see :mod:`vqa_shap.loaders.testing.tiny`)."""
    from vqa_shap.loaders.bases.generative import tiny_text_kwargs, tiny_vision_parts
    from vqa_shap.loaders.testing.tiny import CHAT_TEMPLATE

    tok.chat_template = CHAT_TEMPLATE  # VideoLLaMA2 renders its prompt with the tokenizer's template
    vision, processor = tiny_vision_parts(tok, realistic)
    text = MistralConfig(**tiny_text_kwargs(tok, realistic), sliding_window=None)
    return VideoLlama2ForCausalLM(VideoLlama2Config(vision_config=vision, text_config=text)), processor
