"""InternVideo's original checkpoints: OpenAI/InternVideo names -> ours, the WiSE-FT merge, conversion.

Part of the ``internvideo`` family (:mod:`vqa_shap.loaders.internvideo`, which declares it and re-exports
these names); ``scripts/convert_internvideo.py`` runs :func:`convert`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import torch
from transformers import CLIPTextConfig, CLIPVisionConfig

from vqa_shap.loaders.bases.loader import LoaderError
from vqa_shap.loaders.rebuilt.checkpoints import load_exact, read_state_dict
from vqa_shap.loaders.rebuilt.internvideo_model import InternVideoConfig, build_config, build_model

#: The paper's WiSE-FT coefficient (weight of each of the two files).
WISEFT_ALPHA = 0.5


def _wiseft_keys(n_blocks: int = 12) -> tuple[str, ...]:
    """Substrings naming the parameters InternVideo averages with OpenAI CLIP (its ``clip_param_keys``).

    Written for ViT-B/16 (12 blocks), so for ViT-L/14 it covers the whole text tower, the visual stem,
    visual blocks 0-11 only, ``visual_ln_post`` and ``visual_proj``.
    """
    return ("positional_embedding", "class_embedding", "token_embedding", "text_projection", "ln_final",
            "conv1", "ln_pre", "visual_ln_post", "visual_proj",
            *(f"transformer.resblocks.{i}." for i in range(n_blocks)))


#: InternVideo's WiSE-FT key substrings.
WISEFT_KEYS = _wiseft_keys()


_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
          "attn.out_proj": "self_attn.out_proj"}
#: OpenAI TorchScript extras and InternVideo parameters that vtc scoring does not use.
_DROPPED = ("input_resolution", "context_length", "vocab_size", "text_mask_embedding")


def openai_to_internvideo(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI CLIP names -> InternVideo's (``visual.proj`` -> ``visual_proj``, ``visual.ln_post`` ->
    ``visual_ln_post``, 2-D ``conv1`` -> 3-D with temporal kernel 1), as InternVideo's CLIP does."""
    out = {}
    for key, value in state.items():
        if key in _DROPPED:
            continue
        if key == "visual.proj":
            key = "visual_proj"
        elif key.startswith("visual.ln_post."):
            key = "visual_ln_post." + key[len("visual.ln_post."):]
        elif key == "visual.conv1.weight" and value.dim() == 4:
            value = value.unsqueeze(2)
        out[key] = value
    return out


def wiseft_merge(pretrained: Mapping[str, torch.Tensor], finetuned: Mapping[str, torch.Tensor], *,
                 alpha: float = WISEFT_ALPHA, keys: Sequence[str] = WISEFT_KEYS) -> dict[str, torch.Tensor]:
    """InternVideo's effective weights: ``alpha * finetuned + (1 - alpha) * pretrained`` for every
    fine-tuned key containing one of ``keys`` (substring test, as the original), the fine-tuned value
    otherwise. Both state dicts in InternVideo names without the ``clip.`` prefix.

    Raises:
        LoaderError: a key to average is missing from the pretrained weights, or shapes differ.
    """
    merged = {}
    for key, value in finetuned.items():
        if any(k in key for k in keys):
            if key not in pretrained:
                raise LoaderError(f"WiSE-FT: {key!r} is averaged but absent from the pretrained CLIP weights")
            base = pretrained[key]
            if tuple(base.shape) != tuple(value.shape):
                raise LoaderError(f"WiSE-FT: {key!r} has shape {tuple(value.shape)} in the fine-tune and "
                                  f"{tuple(base.shape)} in the pretrained CLIP")
            value = alpha * value.float() + (1 - alpha) * base.float()
        merged[key] = value
    return merged


def _block_keys(src: str, dst: str, value: torch.Tensor, out: dict) -> bool:
    """One transformer-block parameter (``src`` relative to the block) -> ``dst`` prefix in ``out``."""
    for kind in ("weight", "bias"):
        if src == f"attn.in_proj_{kind}":
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"{dst}self_attn.{name}.{kind}"] = part.clone()
            return True
    for old, new in _BLOCK.items():
        if src.startswith(old + "."):
            out[dst + new + src[len(old):]] = value
            return True
    return False


def map_original_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """InternVideo names (``clip.`` stripped; after :func:`wiseft_merge`) -> our model's names.

    Raises:
        LoaderError: keys that are neither mapped nor deliberately dropped (listed).
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    simple = {
        "visual.class_embedding": "vision.embeddings.class_embedding",
        "visual.positional_embedding": "vision.embeddings.position_embedding.weight",
        "token_embedding.weight": "text.text_model.embeddings.token_embedding.weight",
        "positional_embedding": "text.text_model.embeddings.position_embedding.weight",
        "logit_scale": "logit_scale",
    }
    for key, value in state.items():
        if key in _DROPPED:
            continue
        if key in simple:
            out[simple[key]] = value
        elif key == "visual.conv1.weight":
            out["vision.embeddings.patch_embedding.weight"] = value.squeeze(2) if value.dim() == 5 else value
        elif key in ("visual_proj", "text_projection"):  # x @ W  ->  Linear weight W^T
            out["visual_proj.weight" if key == "visual_proj" else "text.text_projection.weight"] = value.T.contiguous()
        elif m := re.match(r"^visual\.ln_pre\.(weight|bias)$", key):
            out[f"vision.pre_layrnorm.{m[1]}"] = value
        elif m := re.match(r"^visual_ln_post\.(weight|bias)$", key):
            out[f"visual_ln_post.{m[1]}"] = value
        elif m := re.match(r"^ln_final\.(weight|bias)$", key):
            out[f"text.text_model.final_layer_norm.{m[1]}"] = value
        elif m := re.match(r"^visual\.transformer\.((?:temporal_cls_token|balance|dpe\.|dec\.).*)$", key):
            out[f"temporal.{m[1]}"] = value
        elif (m := re.match(r"^visual\.transformer\.resblocks\.(\d+)\.(.+)$", key)) and \
                _block_keys(m[2], f"vision.encoder.layers.{m[1]}.", value, out):
            pass
        elif (m := re.match(r"^transformer\.resblocks\.(\d+)\.(.+)$", key)) and \
                _block_keys(m[2], f"text.text_model.encoder.layers.{m[1]}.", value, out):
            pass
        else:
            unknown.append(key)
    if unknown:
        raise LoaderError(f"InternVideo checkpoint has {len(unknown)} unexpected key(s): "
                          f"{', '.join(sorted(unknown)[:10])}")
    return out


def read_original(pretrained: str | Path | Mapping[str, torch.Tensor],
                  finetuned: str | Path | Mapping[str, torch.Tensor], *, alpha: float = WISEFT_ALPHA
                  ) -> dict[str, torch.Tensor]:
    """The effective InternVideo state dict (our names) from the two original files.

    Args:
        pretrained: OpenAI's ``ViT-L-14.pt`` (TorchScript archive or plain state dict), or its state dict.
        finetuned: InternVideo's ``MSRVTT.ckpt`` (Lightning checkpoint, keys ``clip.*`` in
            ``state_dict``), or that state dict. Keys outside ``clip.`` (other task heads) are ignored.
        alpha: WiSE-FT coefficient (the paper's 0.5).
    """
    pre = openai_to_internvideo(_load(pretrained))
    ft = _load(finetuned)
    ft = {k[len("clip."):]: v for k, v in ft.items() if k.startswith("clip.")}
    if not ft:
        raise LoaderError("the InternVideo fine-tuned checkpoint has no 'clip.*' keys")
    return map_original_keys(wiseft_merge(pre, ft, alpha=alpha))


def _load(source) -> dict[str, torch.Tensor]:
    # the original files are Lightning / TorchScript archives, opened as the trusted local files they are
    return dict(source) if isinstance(source, Mapping) else read_state_dict(source, allow_pickle=True)


def infer_config(state: Mapping[str, torch.Tensor], **kw) -> InternVideoConfig:
    """The config of a mapped (our names) InternVideo state dict, read from its shapes."""
    def count(prefix):
        return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})

    width = state["vision.embeddings.class_embedding"].shape[0]
    patch = state["vision.embeddings.patch_embedding.weight"].shape[-1]
    n_pos = state["vision.embeddings.position_embedding.weight"].shape[0]
    text_width = state["text.text_model.final_layer_norm.weight"].shape[0]
    vocab, _ = state["text.text_model.embeddings.token_embedding.weight"].shape
    vision_mlp = state["vision.encoder.layers.0.mlp.fc1.weight"].shape[0]
    vision = CLIPVisionConfig(hidden_size=width, intermediate_size=vision_mlp,
                              num_hidden_layers=count("vision.encoder.layers."), num_attention_heads=width // 64,
                              image_size=patch * math.isqrt(n_pos - 1), patch_size=patch, hidden_act="quick_gelu",
                              layer_norm_eps=1e-5)
    text = CLIPTextConfig(vocab_size=vocab, hidden_size=text_width,
                          intermediate_size=state["text.text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
                          num_hidden_layers=count("text.text_model.encoder.layers."),
                          num_attention_heads=text_width // 64,
                          max_position_embeddings=state[
                              "text.text_model.embeddings.position_embedding.weight"].shape[0],
                          projection_dim=state["text.text_projection.weight"].shape[0], hidden_act="quick_gelu",
                          layer_norm_eps=1e-5, bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=0)
    kw.setdefault("image_size", vision.image_size)
    kw.setdefault("n_decoder_layers", count("temporal.dec."))
    kw.setdefault("decoder_mlp_ratio", state["temporal.dec.0.mlp.c_fc.weight"].shape[0] / width)
    kw.setdefault("projection_dim", state["visual_proj.weight"].shape[0])
    return build_config(vision, text, **kw)


def load_original(pretrained, finetuned, *, alpha: float = WISEFT_ALPHA, config: InternVideoConfig | None = None):
    """InternVideo from OpenAI's ``ViT-L-14.pt`` + ``MSRVTT.ckpt`` (WiSE-FT merged), no key missing or unexpected.

    Args:
        pretrained, finetuned: see :func:`read_original`.
        alpha: WiSE-FT coefficient.
        config: default: read from the weights' shapes (:func:`infer_config`; heads = width / 64 as CLIP).
    """
    state = read_original(pretrained, finetuned, alpha=alpha)
    model = build_model(config if config is not None else infer_config(state))
    load_exact(model, state, "InternVideo")
    return model.eval()


def convert(pretrained, finetuned, tokenizer: str | Path, out: str | Path, *, alpha: float = WISEFT_ALPHA,
            **config_kw) -> Path:
    """Write InternVideo (WiSE-FT merged) and its CLIP tokenizer as a ``save_pretrained`` folder.

    Args:
        pretrained, finetuned: see :func:`read_original`.
        tokenizer: a CLIP tokenizer folder (e.g. ``openai/clip-vit-large-patch14``).
        out: the folder to write.
        alpha: WiSE-FT coefficient.
        **config_kw: :class:`InternVideoConfig` values other than the ones read from the weights.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    state = read_original(pretrained, finetuned, alpha=alpha)
    model = build_model(infer_config(state, **config_kw))
    load_exact(model, state, "InternVideo")
    model.config.text_config.eos_token_id = tok.eos_token_id  # first-EOT pooling = OpenAI's argmax pooling
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def add_convert_arguments(parser) -> None:
    """The arguments of ``scripts/convert_internvideo.py`` (read by :func:`convert_from_args`)."""
    parser.add_argument("--openai", required=True, help="OpenAI CLIP ViT-L-14.pt")
    parser.add_argument("--checkpoint", required=True, help="InternVideo MSRVTT.ckpt")
    parser.add_argument("--tokenizer", required=True, help="CLIP tokenizer folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--alpha", type=float, default=WISEFT_ALPHA, help="WiSE-FT coefficient (paper: 0.5)")
    parser.add_argument("--resize-short", type=int, default=256, help="resize before the centre crop (paper: 256)")


def convert_from_args(args) -> Path:
    """:func:`convert` with the arguments of :func:`add_convert_arguments`."""
    return convert(args.openai, args.checkpoint, args.tokenizer, args.out, alpha=args.alpha,
                   resize_short=args.resize_short)
