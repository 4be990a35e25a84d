"""The demo model's architecture: a small LLaVA-OneVision built from real transformers classes.

Imports torch and transformers only inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass


#: Video layouts the demo models are trained and evaluated on: the benchmark's 8-frame videos, or the
#: 64-frame ``short_evidence`` long videos of :mod:`vqa_shap.builders.shapes_long_video`.
TRAIN_LAYOUTS = ("frames", "short_evidence")
#: File in the model folder recording how it was trained and how well it does.
TRAINING_FILE = "vqa_shap_training.json"


@dataclass(frozen=True)
class DemoArchitecture:
    """The demo model's size: a SigLIP tower and a Qwen2 language model, both small.

    With 64-pixel frames and 16-pixel patches, a frame is 4x4 patches, pooled to 2x2 = 4 video tokens.
    """

    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 64
    vision_layers: int = 2
    hidden: int = 96
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2



#: Seed of the held-out questions used during training (never used for training questions).
HELD_OUT_SEED = 999_983


# ---------------------------------------------------------------------------------------------
# building


def build_demo_model(arch: DemoArchitecture = DemoArchitecture(), seed: int = 0):
    """An untrained demo model and its processor (real transformers classes, built offline).

    Returns:
        ``(model, processor)``.
    """
    import torch
    from transformers import LlavaOnevisionForConditionalGeneration

    from vqa_shap.builders.shapes import VOCABULARY
    from vqa_shap.loaders.llava_onevision import llava_onevision_parts
    from vqa_shap.loaders.testing.tiny import build_tokenizer

    tok = build_tokenizer(VOCABULARY)
    config, processor = llava_onevision_parts(
        tok, image_size=arch.image_size, patch_size=arch.patch_size, vision_hidden=arch.vision_hidden,
        vision_intermediate=2 * arch.vision_hidden, vision_layers=arch.vision_layers, vision_heads=2,
        hidden=arch.hidden, layers=arch.layers, heads=arch.heads, kv_heads=arch.kv_heads,
        max_position_embeddings=1024)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaOnevisionForConditionalGeneration(config)
        # PyTorch's default init for the projector: with transformers' N(0, 0.02) the projected video
        # tokens hardly vary between frames (what a frame shows is ~1% of the token), a long plateau
        for module in model.model.multi_modal_projector.modules():
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, processor
