"""FrozenBiLM's original checkpoints: the key map, assembling the model from its three original parts,
conversion to a ``save_pretrained`` folder.

Part of the ``frozenbilm`` family (:mod:`vqa_shap.loaders.frozenbilm`, which declares it and re-exports
these names); ``scripts/convert_frozenbilm.py`` runs :func:`convert`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from vqa_shap.loaders.bases.loader import LoaderError
from vqa_shap.loaders.rebuilt.checkpoints import load_exact, read_state_dict
from vqa_shap.loaders.rebuilt.frozenbilm_model import ANSWER_WORDS, answer_token_ids, build_config, build_model

#: original key (regex) -> our key (``\1`` etc. substituted); first match wins.
_KEY_MAP = (
    (r"^deberta\.embeddings\.position_embeddings\.weight$", r"position_embeddings.weight"),
    (r"^deberta\.embeddings\.linear_video\.(weight|bias)$", r"linear_video.\1"),
    (r"^deberta\.(embeddings\.(?:word_embeddings|LayerNorm)\..+)$", r"deberta.\1"),
    (r"^deberta\.(encoder\..+)$", r"deberta.\1"),
    (r"^(lm_predictions\.lm_head\.(?:dense|LayerNorm)\.(?:weight|bias))$", r"\1"),
    (r"^(lm_predictions\.lm_head\.bias)$", r"\1"),
    (r"^answer_bias$", r"answer_bias"),
)
#: original keys we drop on purpose: the decoder copy of the word embeddings (unused by the answer head)
#: and the answer embeddings, which the paper overwrites with the "Yes"/"No" word embeddings.
_DROPPED = (r"^lm_predictions\.lm_head\.decoder\..+$", r"^answer_embeddings\.weight$",
            r"^deberta\.embeddings\.position_ids$")


def map_original_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """Map a FrozenBiLM state dict in the original names (base + fine-tune merged) to ours.

    Args:
        state: original key -> tensor (the DeBERTa-v2 base ``pytorch_model.bin`` updated with the
            fine-tune's ``ckpt["model"]``, as the paper's non-strict load does).

    Returns:
        Our key -> tensor, without the CLIP (``vision.*``) part.

    Raises:
        LoaderError: keys that are neither mapped nor deliberately dropped (listed).
    """
    out, unknown = {}, []
    for key, value in state.items():
        if any(re.match(p, key) for p in _DROPPED):
            continue
        for pattern, target in _KEY_MAP:
            if re.match(pattern, key):
                out[re.sub(pattern, target, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise LoaderError(f"FrozenBiLM checkpoint has {len(unknown)} unexpected key(s): "
                          f"{', '.join(sorted(unknown)[:10])}")
    return out


def load_original(deberta: str | Path, finetune: str | Path, clip: str | Path, *, tokenizer=None, **config_kw):
    """Assemble FrozenBiLM from its original files.

    Args:
        deberta: folder of ``microsoft/deberta-v2-xlarge`` (``config.json``, ``pytorch_model.bin``,
            ``spm.model``); its state dict must contain ``deberta.embeddings.position_embeddings.weight``
            and ``lm_predictions.lm_head.*`` (the EMD needs them).
        finetune: the FrozenBiLM fine-tuned checkpoint (``{"model": state_dict, ...}``), e.g. How2QA.
        clip: folder of ``openai/clip-vit-large-patch14`` (transformers format).
        tokenizer: the DeBERTa-v2 tokenizer (default: loaded from ``deberta``).
        **config_kw: :class:`FrozenBiLMConfig` values other than the defaults (adapter factors,
            ``image_size`` …).

    Returns:
        ``(model, tokenizer)``; the model loaded with no missing and no unexpected keys.
    """
    from transformers import AutoTokenizer, CLIPVisionConfig, CLIPVisionModelWithProjection, DebertaV2Config

    deberta, finetune, clip = Path(deberta), Path(finetune), Path(clip)
    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(str(deberta))
    state = read_state_dict(deberta, allow_pickle=True)  # the paper's own files: trusted
    state.update(read_state_dict(finetune, allow_pickle=True))  # fine-tuned parameters override the base's
    if "answer_bias" not in state:  # the paper's model keeps its zero init when absent
        state["answer_bias"] = torch.zeros(len(ANSWER_WORDS))
    vision = CLIPVisionModelWithProjection.from_pretrained(str(clip))
    config = build_config(DebertaV2Config.from_pretrained(str(deberta)), CLIPVisionConfig.from_pretrained(str(clip)),
                          answer_token_ids(tokenizer), **config_kw)
    model = build_model(config)
    mapped = map_original_keys(state)
    mapped.update({f"vision.{k}": v for k, v in vision.state_dict().items()})
    load_exact(model, mapped, "FrozenBiLM")
    return model.eval(), tokenizer


def convert(deberta: str | Path, finetune: str | Path, clip: str | Path, out: str | Path, **config_kw) -> Path:
    """Write FrozenBiLM assembled from its original files as a ``save_pretrained`` folder (model +
    tokenizer) that :meth:`FrozenBiLMLoader.load` reads. Returns ``out``."""
    model, tokenizer = load_original(deberta, finetune, clip, **config_kw)
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def add_convert_arguments(parser) -> None:
    """The arguments of ``scripts/convert_frozenbilm.py`` (read by :func:`convert_from_args`)."""
    parser.add_argument("--deberta", required=True, help="microsoft/deberta-v2-xlarge folder")
    parser.add_argument("--checkpoint", required=True, help="FrozenBiLM fine-tuned checkpoint (.pth)")
    parser.add_argument("--clip", required=True, help="openai/clip-vit-large-patch14 folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--ds-factor", type=int, default=8, help="adapter down-sampling factor (paper: 8)")
    parser.add_argument("--image-size", type=int, default=224, help="frame size for CLIP (paper: 224)")


def convert_from_args(args) -> Path:
    """:func:`convert` with the arguments of :func:`add_convert_arguments`."""
    return convert(args.deberta, args.checkpoint, args.clip, args.out, ds_factor_attn=args.ds_factor,
                   ds_factor_ff=args.ds_factor, image_size=args.image_size)
