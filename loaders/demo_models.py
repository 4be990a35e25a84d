"""The demo models: the ``--model`` values ``demo``, ``demo-long`` and ``demo-realistic``
and their folders here in ``loaders/`` (package data), trained by ``scripts/train_demo_model.py`` (:mod:`vqa_shap.demo`)."""

from __future__ import annotations

from pathlib import Path

from vqa_shap.errors import VqaShapError

#: The ``--model`` value that names the demo model.
DEMO_MODEL = "demo"
#: The ``--model`` value of the long-video demo model (the demo model fine-tuned on 64-frame videos).
DEMO_LONG_MODEL = "demo-long"
#: The ``--model`` value of the realistic-proportion demo model (32 frames x 36 video tokens, EgoSchema-length
#: questions with five long options), started from the demo model's weights.
DEMO_REALISTIC_MODEL = "demo-realistic"
#: ``--model`` value -> (folder under ``loaders/``, the training command's extra arguments).
DEMO_MODELS = {
    DEMO_MODEL: ("demo_model", ""),
    DEMO_LONG_MODEL: ("demo_long_model", " --resume loaders/demo_model --layout short_evidence --steps 2500 --lr 1e-3"),
    # the first run of docs/demo.md's recipe; the committed model continued from it with --resume
    DEMO_REALISTIC_MODEL: ("demo_realistic_model", " --init-from loaders/demo_model --layout realistic --steps 280"
                                                   " --batch-size 8 --lr 1e-3 --warmup 20 --max-minutes 35"),
}


def demo_model_dir(model: str = DEMO_MODEL) -> Path:
    """A committed demo model's folder (``loaders/demo_model/``, ``loaders/demo_long_model/``).

    Args:
        model: the ``--model`` value, a key of :data:`DEMO_MODELS`.

    Raises:
        VqaShapError: an unknown name, or the folder or its weights are missing (train it with
            scripts/train_demo_model.py).
    """
    if model not in DEMO_MODELS:
        raise VqaShapError(f"unknown demo model {model!r}; valid: {', '.join(DEMO_MODELS)}")
    name, recipe = DEMO_MODELS[model]
    folder = Path(__file__).resolve().parent / name
    if not (folder / "model.safetensors").is_file():
        more = " (then continue with --resume, see docs/demo.md)" if model == DEMO_REALISTIC_MODEL else ""
        raise VqaShapError(f"{folder}: the demo model is missing; train it with "
                           f"python scripts/train_demo_model.py --out {folder}{recipe}{more}")
    return folder
