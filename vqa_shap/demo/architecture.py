"""The demo model's architecture: a small LLaVA-OneVision built from real transformers classes.

Imports torch and transformers only inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vqa_shap.errors import VqaShapError


#: Video layouts the demo models are trained and evaluated on: the benchmark's 8-frame videos, the
#: 64-frame ``short_evidence`` long videos of :mod:`vqa_shap.builders.shapes_long_video`, or ``realistic``:
#: the benchmark's questions in the long wording (:data:`vqa_shap.builders.shapes.WORDINGS`) on
#: 32-frame videos whose frames show the benchmark's 64-pixel drawing tiled 3 x 3 (192 pixels).
TRAIN_LAYOUTS = ("frames", "short_evidence", "realistic")
#: Frames per video, drawn frame size (pixels) and tiles per side of the ``realistic`` layout.
REALISTIC_FRAMES = 32
REALISTIC_FRAME_SIZE = 64
REALISTIC_TILES = 3
#: File in the model folder recording how it was trained and how well it does.
TRAINING_FILE = "vqa_shap_training.json"


@dataclass(frozen=True)
class DemoArchitecture:
    """The demo model's size: a SigLIP tower and a Qwen2 language model, both small.

    With 64-pixel frames and 16-pixel patches, a frame is 4x4 patches, pooled to 2x2 = 4 video tokens.
    ``long_words`` adds the long wording's words to the tokenizer; ``max_positions`` is the language
    model's context.
    """

    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 64
    vision_layers: int = 2
    hidden: int = 96
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    long_words: bool = False
    max_positions: int = 1024


#: The realistic-proportion demo model: 192-pixel frames in 16-pixel patches (12x12, pooled to 6x6 = 36
#: video tokens per frame, as the realistic random-weight LLaVA-OneVision), the long wording's words,
#: a context for 32 frames and an EgoSchema-length prompt.
REALISTIC_ARCHITECTURE = DemoArchitecture(image_size=REALISTIC_FRAME_SIZE * REALISTIC_TILES, patch_size=16,
                                          long_words=True, max_positions=2048)


def layout_architecture(layout: str) -> DemoArchitecture:
    """The architecture a model trained on ``layout`` has (the realistic layout's, else the demo's)."""
    return REALISTIC_ARCHITECTURE if layout == "realistic" else DemoArchitecture()


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

    from vqa_shap.builders.shapes import LONG_VOCABULARY, VOCABULARY
    from vqa_shap.loaders.llava_onevision import llava_onevision_parts
    from vqa_shap.loaders.testing.tiny import build_tokenizer

    # the long wording's words come after the benchmark's, so the demo model's token ids stay the same
    tok = build_tokenizer(VOCABULARY + (LONG_VOCABULARY if arch.long_words else ()))
    config, processor = llava_onevision_parts(
        tok, image_size=arch.image_size, patch_size=arch.patch_size, vision_hidden=arch.vision_hidden,
        vision_intermediate=2 * arch.vision_hidden, vision_layers=arch.vision_layers, vision_heads=2,
        hidden=arch.hidden, layers=arch.layers, heads=arch.heads, kv_heads=arch.kv_heads,
        max_position_embeddings=arch.max_positions)
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


def transfer_weights(model, source: str | Path) -> dict[str, str]:
    """Copy a trained demo model's weights from folder ``source`` into ``model`` of another size.

    Tensors of equal shape are copied; the token embeddings and unembedding keep their rows (a larger
    vocabulary only appends words) and new rows start at the mean of the trained ones; the patch
    embedding is resampled to a smaller patch (sums of pixel blocks: a patch of half the size on a
    frame of half the size sees the same); the position embeddings are tiled when the new patch grid
    is a multiple of the old one (a frame tiled the same way then gives every tile the old model's
    features: attention over identical copies averages as over one), else interpolated. Used to start
    the realistic-proportion model from the demo model.

    Returns:
        How each tensor was set (``copied``, ``rows``, ``resampled``, ``tiled``, ``interpolated``, or ``new``).
    """
    import torch

    trained = type(model).from_pretrained(str(source), dtype=torch.float32).state_dict()
    how: dict[str, str] = {}
    with torch.no_grad():
        for name, param in model.state_dict().items():
            old = trained.get(name)
            if old is None:
                how[name] = "new"
            elif old.shape == param.shape:
                param.copy_(old)
                how[name] = "copied"
            elif old.ndim == 2 and old.shape[1] == param.shape[1] and old.shape[0] < param.shape[0] \
                    and ("embed_tokens" in name or "lm_head" in name):
                param[:old.shape[0]] = old
                param[old.shape[0]:] = old.mean(0)
                how[name] = "rows"
            elif "patch_embedding.weight" in name and old.shape[:2] == param.shape[:2]:
                factor = old.shape[-1] // param.shape[-1]
                param.copy_(torch.nn.functional.avg_pool2d(old, factor) * factor ** 2)
                how[name] = "resampled"
            elif "position_embedding.weight" in name and old.shape[1] == param.shape[1]:
                side, new_side = round(old.shape[0] ** 0.5), round(param.shape[0] ** 0.5)
                grid = old.T.reshape(1, -1, side, side)
                if new_side % side == 0:
                    grid = grid.repeat(1, 1, new_side // side, new_side // side)
                    how[name] = "tiled"
                else:
                    grid = torch.nn.functional.interpolate(grid, size=(new_side, new_side), mode="bilinear",
                                                           align_corners=False)
                    how[name] = "interpolated"
                param.copy_(grid.reshape(old.shape[1], -1).T)
            else:
                raise VqaShapError(f"{source}: cannot transfer {name} of shape {tuple(old.shape)} "
                                   f"to {tuple(param.shape)}")
    return how
