"""FrozenBiLM (Yang et al., 2022), How2QA checkpoint, rebuilt from transformers parts (DeBERTa-v2 with
adapters + CLIP ViT-L/14 frame features): one ``... Is it '{option}'? [MASK].`` prompt per option,
scored by ``P("Yes")``.

A masked frame is a zeroed feature, so cached masking is exact. The model is
:mod:`~vqa_shap.loaders.rebuilt.frozenbilm_model`, the checkpoint conversion
:mod:`~vqa_shap.loaders.rebuilt.frozenbilm_convert`; architecture and checkpoints: docs/loaders.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from transformers import CLIPVisionConfig, DebertaV2Config

from vqa_shap.families import declare_family
from vqa_shap.loaders.bases.option_head import FramesPrepared, OptionHeadLoader, clip_pixels
from vqa_shap.loaders.bases.loader import LoaderError, UnsupportedQuestionError
# the model and the checkpoint conversion live in their own modules; their public names are re-exported
from vqa_shap.loaders.rebuilt.frozenbilm_model import ANSWER_WORDS, FrozenBiLMModel, answer_token_ids, build_config, build_model

if TYPE_CHECKING:
    from vqa_shap.protocol.base import FramePlan, Protocol
    from vqa_shap.schema.records import Question

#: ``frozenbilm``: folders converted by scripts/convert_frozenbilm.py. No protocol settings: the
#: protocol's defaults apply (``normalized_zero``, ``linspace``).
FAMILY = declare_family(
    "frozenbilm",
    loader="FrozenBiLMLoader",
    model_types=("frozenbilm",),
    tiny="build_tiny",
)

#: The paper's prompt per option; ``{mask}`` is the tokenizer's mask token.
PROMPT_TEMPLATE = "Question: {question} Is it '{option}'? {mask}."


# ---------------------------------------------------------------------------------------------
# the loader
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrozenBiLMPrepared(FramesPrepared):
    """One question ready for FrozenBiLM scoring (:class:`FramesPrepared` plus):

    Attributes:
        frame_features: ``[T, features_dim]`` per-frame features, float16-rounded as the paper's.
        cache: prompt string -> (token ids, mask position); filled by ``score``.
    """

    frame_features: Any
    cache: dict[str, tuple[list[int], int]] = field(default_factory=dict, repr=False, compare=False)


class FrozenBiLMLoader(OptionHeadLoader):
    """FrozenBiLM as the paper scores it: ``P("Yes")`` per option prompt (``model_type`` ``frozenbilm``).

    Args:
        model: a FrozenBiLM model (:func:`build_model`, :func:`load_original` or ``from_pretrained``).
        tokenizer: its DeBERTa-v2 tokenizer.
        checkpoint: where it came from (messages).
        batch_size: coalitions per forward (each gives ``K`` prompts).
    """

    family = FAMILY.name
    temporal_unit = 1
    exact_cached_masking = True
    model_class = FrozenBiLMModel
    convert_script = "convert_frozenbilm.py"

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        if tokenizer.mask_token is None:
            raise LoaderError(f"{self.checkpoint}: the tokenizer has no mask token")
        expected = answer_token_ids(tokenizer)
        if list(model.config.answer_token_ids or []) != expected:
            raise LoaderError(f"{self.checkpoint}: answer token ids {model.config.answer_token_ids} in the config "
                              f"differ from the tokenizer's {expected} for {ANSWER_WORDS}")

    @property
    def max_options(self) -> int:
        """No limit: every option has its own prompt."""
        return sys.maxsize

    # -- prepare --------------------------------------------------------------------------
    def pixel_values(self, frames: np.ndarray) -> "torch.Tensor":
        """uint8 ``[T, H, W, 3]`` -> normalised ``[T, 3, S, S]``: squashed to ``S`` (the shared loaders'
        resize), scaled to [0, 1], CLIP mean/std."""
        return clip_pixels(frames, self.model.config.image_size, self.model.config.image_mean,
                           self.model.config.image_std, device=self.device, dtype=self.model.dtype)

    def _features(self, frames: Sequence[np.ndarray]) -> "torch.Tensor":
        pixels = torch.cat([self.pixel_values(f) for f in frames])
        feats = self.model.frame_features(pixels)
        # the paper stored features as float16 and cast them back
        return feats.to(getattr(torch, self.model.config.feature_dtype)).to(self.model.dtype)

    def prepare(self, question: "Question", frames: Sequence[np.ndarray], plan: "FramePlan",
                protocol: "Protocol") -> FrozenBiLMPrepared:
        """CLIP features of every frame, once.

        Raises:
            UnsupportedQuestionError: no frames.
        """
        base = self.frames_prepared(question, frames, plan, protocol)
        with torch.inference_mode():
            feats = self._features(base.frames)
        return FrozenBiLMPrepared(**vars(base), frame_features=feats)

    # -- text -------------------------------------------------------------------------------
    def prompts(self, prepared: FrozenBiLMPrepared, text_keep: np.ndarray) -> list[str]:
        """The K option prompts of one text mask (HD-EPIC tags rewritten after masking, as the paper)."""
        p = prepared.protocol
        rendered = p.render(prepared.question, prepared.plan, text_keep)
        return [p.rewrite(prepared.question, prepared.plan,
                          PROMPT_TEMPLATE.format(question=rendered.question, option=o,
                                                 mask=self.tokenizer.mask_token))
                for o in rendered.options]

    def _tokens(self, prepared: FrozenBiLMPrepared, text: str) -> tuple[list[int], int]:
        cached = prepared.cache.get(text)
        if cached is None:
            ids = list(self.tokenizer(text)["input_ids"])
            positions = [i for i, t in enumerate(ids) if t == self.tokenizer.mask_token_id]
            if len(positions) != 1:
                raise LoaderError(f"{self.family}: prompt of {prepared.question.qid!r} has {len(positions)} mask "
                                  f"tokens after tokenisation: {text!r}")
            limit = self.model.position_embeddings.num_embeddings - prepared.n_video
            if len(ids) > limit:
                raise UnsupportedQuestionError(
                    f"question {prepared.question.qid!r}: a prompt has {len(ids)} tokens; with "
                    f"{prepared.n_video} frames {self.family} takes at most {limit}")
            cached = (ids, positions[0])
            prepared.cache[text] = cached
        return cached

    # -- scoring ----------------------------------------------------------------------------
    def score_batch(self, prepared: FrozenBiLMPrepared, batch: np.ndarray) -> np.ndarray:
        """``P("Yes")`` of every option prompt of every coalition of ``batch``: ``[b, K]``."""
        k = prepared.n_options
        rows = [self._tokens(prepared, t) for m in batch for t in self.prompts(prepared, m[prepared.n_video:])]
        keep = torch.as_tensor(batch[:, :prepared.n_video], device=self.device)
        feats = prepared.frame_features[None] * keep[..., None].to(prepared.frame_features.dtype)
        feats = feats.repeat_interleave(k, dim=0)  # row b*K + j: coalition b, option j
        return self._p_yes(feats, rows).reshape(len(batch), k)

    def _p_yes(self, feats: "torch.Tensor", rows: list[tuple[list[int], int]]) -> np.ndarray:
        length = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), length), pad, dtype=torch.long, device=self.device)
        attention = torch.zeros((len(rows), length), dtype=torch.long, device=self.device)
        for r, (tokens, _) in enumerate(rows):  # right padding keeps every position of the real tokens
            ids[r, :len(tokens)] = torch.as_tensor(tokens)
            attention[r, :len(tokens)] = 1
        where = torch.as_tensor([m for _, m in rows], device=self.device)
        logits = self.model.answer_logits(feats, ids, attention, where).float()
        return logits.softmax(-1)[:, 0].cpu().numpy()

    def score_pixels_one(self, prepared: FrozenBiLMPrepared, mask: np.ndarray) -> np.ndarray:
        """Uncached reference: CLIP on the frames again, masked features zeroed, one unpadded forward
        per option prompt."""
        feats = self._features(prepared.frames)
        feats = feats * torch.as_tensor(mask[:prepared.n_video], device=self.device)[:, None].to(feats.dtype)
        out = np.empty(prepared.n_options, dtype=np.float32)
        for j, text in enumerate(self.prompts(prepared, mask[prepared.n_video:])):
            ids = list(self.tokenizer(text)["input_ids"])
            out[j] = self._p_yes(feats[None], [(ids, ids.index(self.tokenizer.mask_token_id))])[0]
        return out


# ---------------------------------------------------------------------------------------------
# tiny random model (tests, benchmarks): see vqa_shap.loaders.testing.tiny
# ---------------------------------------------------------------------------------------------


def build_tiny(tok=None, realistic: bool = False):
    """A tiny random FrozenBiLM and its own tokenizer (``tok`` is unused; see :mod:`vqa_shap.loaders.testing.tiny`)."""
    from vqa_shap.loaders.testing.tiny import build_deberta_tokenizer, randomise

    tok = build_deberta_tokenizer()
    hidden = 64 if realistic else 32
    text = DebertaV2Config(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=2 * hidden, max_position_embeddings=128, relative_attention=True, position_buckets=16,
        max_relative_positions=-1, pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
        conv_kernel_size=3, conv_act="gelu", position_biased_input=False, type_vocab_size=0,
        layer_norm_eps=1e-7, hidden_act="gelu", pad_token_id=tok.pad_token_id)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=8, hidden_act="quick_gelu")
    config = build_config(text, vision, answer_token_ids(tok), ds_factor_attn=4, ds_factor_ff=4, image_size=28)
    return randomise(build_model(config)), tok


__all__ = ["FAMILY", "PROMPT_TEMPLATE", "FrozenBiLMPrepared", "FrozenBiLMLoader", "build_tiny"]
