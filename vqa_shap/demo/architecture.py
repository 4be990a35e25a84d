"""The demo model's architecture and folder: a small LLaVA-OneVision built from real transformers classes.

Imports torch and transformers only inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vqa_shap.errors import VqaShapError

#: The ``--model`` value that names the demo model.
DEMO_MODEL = "demo"
#: The ``--model`` value of the long-video demo model (the demo model fine-tuned on 64-frame videos).
DEMO_LONG_MODEL = "demo-long"
#: ``--model`` value -> (folder under ``loaders/``, the training command's extra arguments).
DEMO_MODELS = {
    DEMO_MODEL: ("demo_model", ""),
    DEMO_LONG_MODEL: ("demo_long_model", " --resume loaders/demo_model --layout short_evidence --steps 2500 --lr 1e-3"),
}
#: Video layouts the demo models are trained and evaluated on: the benchmark's 8-frame videos, or the
#: 64-frame ``short_evidence`` long videos of :mod:`vqa_shap.builders.shapes_long_video`.
TRAIN_LAYOUTS = ("frames", "short_evidence")
#: File in the model folder recording how it was trained and how well it does.
TRAINING_FILE = "vqa_shap_training.json"


def demo_model_dir(model: str = DEMO_MODEL) -> Path:
    """A committed demo model's folder (``loaders/demo_model/``, ``loaders/demo_long_model/``).

    Args:
        model: the ``--model`` value, a key of :data:`DEMO_MODELS`.

    Raises:
        VqaShapError: an unknown name, or the folder or its weights are missing (train it with
            scripts/train_demo_model.py).
    """
    from vqa_shap import loaders

    if model not in DEMO_MODELS:
        raise VqaShapError(f"unknown demo model {model!r}; valid: {', '.join(DEMO_MODELS)}")
    name, recipe = DEMO_MODELS[model]
    folder = Path(loaders.__file__).resolve().parent / name
    if not (folder / "model.safetensors").is_file():
        raise VqaShapError(f"{folder}: the demo model is missing; train it with "
                           f"python scripts/train_demo_model.py --out {folder}{recipe}")
    return folder


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
