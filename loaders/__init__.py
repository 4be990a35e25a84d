"""Model loaders: one module per model family, an explicit lazy registry, and model resolution.

``get_loader("llava_onevision")`` returns the class; ``resolve_model(model)`` turns a ``--model``
value (a Hub id, a local folder, or ``tiny-random/<family>``) into ``(loader class, checkpoint)``.
Importing this package is cheap (no torch/transformers).
"""

from __future__ import annotations

import json
from pathlib import Path

from vqa_shap.errors import VqaShapError
from vqa_shap.registry import Registry

#: family name -> loader class. Every member is tested to be registered and importable.
LOADERS: Registry = Registry(
    "loader",
    {
        "llava_onevision": "vqa_shap.loaders.llava_onevision:LlavaOnevisionLoader",
        "qwen2_5_vl": "vqa_shap.loaders.qwen2_5_vl:Qwen2_5_VLLoader",
        "video_llama3": "vqa_shap.loaders.video_llama3:VideoLlama3Loader",
        "longva": "vqa_shap.loaders.longva:LongVALoader",
        "video_llama2": "vqa_shap.loaders.videollama2:VideoLlama2Loader",
        "frozenbilm": "vqa_shap.loaders.frozenbilm:FrozenBiLMLoader",
        "internvideo": "vqa_shap.loaders.internvideo:InternVideoLoader",
    },
    base="vqa_shap.loaders.base:Loader",
)

#: transformers ``model_type`` (config.json) -> loader family.
MODEL_TYPES = {
    "llava_onevision": "llava_onevision",
    "qwen2_5_vl": "qwen2_5_vl",
    "video_llama_3": "video_llama3",
    "longva": "longva",  # converted by scripts/convert_longva.py
    "llava_qwen": "longva",  # the original LongVA checkpoint (LLaVA-NeXT's type; other models are refused on load)
    "videollama2": "video_llama2",  # converted by scripts/convert_videollama2.py
    "videollama2_mistral": "video_llama2",  # the original checkpoint
    "frozenbilm": "frozenbilm",  # converted by scripts/convert_frozenbilm.py
    "internvideo": "internvideo",  # converted by scripts/convert_internvideo.py
}

#: Prefix of the offline tiny random models: ``tiny-random/<family>``.
TINY_PREFIX = "tiny-random/"
#: The ``--model`` value of the committed demo model (trained on the synthetic benchmark).
DEMO_MODEL = "demo"


def get_loader(name: str):
    """The loader class registered as ``name`` (raises ``RegistryError`` listing valid names)."""
    return LOADERS.get(name)


def resolve_model(model: str, loader: str | None = None) -> tuple[type, str]:
    """The loader class and checkpoint for a ``--model`` value.

    Args:
        model: ``demo`` (the committed demo model, :func:`vqa_shap.demo.model.demo_model_dir`),
            ``tiny-random/<family>`` (built offline once and cached, see
            :func:`vqa_shap.loaders.tiny.tiny_model_dir`), a local ``save_pretrained`` folder, or a Hub id.
        loader: the family; ``None`` = from the checkpoint's ``config.json`` ``model_type``.

    Returns:
        ``(loader class, checkpoint path or id)``.

    Raises:
        VqaShapError: the family cannot be determined.
    """
    if model == DEMO_MODEL:  # the committed demo model (vqa_shap.demo.model), a llava_onevision checkpoint
        from vqa_shap.demo.model import demo_model_dir

        if loader is not None and loader != "llava_onevision":
            raise VqaShapError(f"--loader {loader!r} does not match model {model!r} (llava_onevision)")
        return get_loader("llava_onevision"), str(demo_model_dir())
    if model.startswith(TINY_PREFIX):
        from vqa_shap.loaders.tiny import tiny_model_dir

        family = model[len(TINY_PREFIX):]
        if loader is not None and loader != family:
            raise VqaShapError(f"--loader {loader!r} does not match model {model!r}")
        cls = get_loader(family)
        return cls, str(tiny_model_dir(family))
    if loader is not None:
        return get_loader(loader), model
    model_type = _model_type(model)
    if model_type not in MODEL_TYPES:
        raise VqaShapError(f"cannot tell the loader of {model!r} (model_type {model_type!r}); "
                           f"pass --loader, one of: {', '.join(LOADERS.names())}")
    return get_loader(MODEL_TYPES[model_type]), model


def _model_type(model: str) -> str | None:
    path = Path(model)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise VqaShapError(f"{model}: no config.json in this folder")
        return json.loads(config.read_text()).get("model_type")
    try:  # a Hub id: config.json from the local cache or the Hub
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model, "config.json")).read_text()).get("model_type")
    except Exception as exc:  # noqa: BLE001 - any failure means we cannot tell; say so clearly
        raise VqaShapError(f"cannot read config.json of {model!r} ({exc.__class__.__name__}); "
                           f"pass --loader, one of: {', '.join(LOADERS.names())}") from exc
