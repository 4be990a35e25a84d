"""InternVideo (InternVideo1 CLIP "kc_new" ViT-L/14, MSR-VTT multiple-choice fine-tune) from transformers parts.

Architecture (docs/loaders.md): a CLIP ViT-L/14 that encodes every frame on
its own (:class:`transformers.CLIPVisionModel`), a UniFormerV2/EVL-style temporal decoder on the last
``n_decoder_layers`` blocks (a residual depthwise 3x3x3 convolution over the patch tokens of all frames,
then one learnable query cross-attending all frames' tokens, block after block), mixed with the frames'
mean CLS token, ``visual_ln_post`` and ``visual_proj``; the text tower is
:class:`transformers.CLIPTextModelWithProjection`. The model-specific code is the temporal decoder, the
OpenAI/InternVideo -> transformers key map and the WiSE-FT merge of the two original files.

Scoring (as the paper): per option the text ``Question: {q} Is it '{option}'?.`` (raw masked strings, HD-EPIC
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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from transformers import CLIPTextConfig, CLIPVisionConfig

from vqa_shap.families import declare_family
from vqa_shap.loaders.bases.option_head import FramesPrepared, OptionHeadLoader, clip_pixels
from vqa_shap.loaders.bases.loader import LoaderError, UnsupportedQuestionError
# the model and the checkpoint conversion live in their own modules; their public names are re-exported
from vqa_shap.loaders.rebuilt.internvideo_model import InternVideoModel, build_config, build_model

if TYPE_CHECKING:
    from vqa_shap.protocol.base import FramePlan, Protocol
    from vqa_shap.schema.records import Question

#: ``internvideo``: folders converted by scripts/convert_internvideo.py. EgoSchema frames at the
#: centres of equal segments, as the paper's InternVideo.
FAMILY = declare_family(
    "internvideo",
    loader="InternVideoLoader",
    model_types=("internvideo",),
    tiny="build_tiny",
    protocols={"pollard2025": {"baseline": "normalized_zero", "sampler": "uniform_edges"}},
)

#: The paper's text per option.
PROMPT_TEMPLATE = "Question: {question} Is it '{option}'?."
#: Text slots of the paper's multiple-choice head.
TEXT_SLOTS = 5


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

    family = FAMILY.name
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


# ---------------------------------------------------------------------------------------------
# tiny random model (tests, benchmarks): see vqa_shap.loaders.testing.tiny
# ---------------------------------------------------------------------------------------------


def build_tiny(tok=None, realistic: bool = False):
    """A tiny random InternVideo and its own tokenizer (``tok`` is unused; see :mod:`vqa_shap.loaders.testing.tiny`)."""
    from vqa_shap.loaders.testing.tiny import build_clip_tokenizer, randomise

    tok = build_clip_tokenizer()
    width = 64 if realistic else 32
    vision = CLIPVisionConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=3,
                              num_attention_heads=2, image_size=42, patch_size=14, hidden_act="quick_gelu")
    text = CLIPTextConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                          num_attention_heads=2, max_position_embeddings=77, projection_dim=16,
                          hidden_act="quick_gelu", bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    config = build_config(vision, text, n_decoder_layers=2, image_size=42, resize_short=48)
    model = randomise(build_model(config))
    model.logit_scale.data.fill_(2.0)  # exp(2): scores spread enough to rank options
    return model, tok


__all__ = ["FAMILY", "PROMPT_TEMPLATE", "TEXT_SLOTS", "InternVideoPrepared", "InternVideoLoader", "build_tiny"]
