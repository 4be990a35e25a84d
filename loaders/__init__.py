"""Model loaders: one module per model family, a lazy registry built from their declarations.

**One file per family.** A family module (e.g. ``loaders/llava_onevision.py``) holds the loader class
and, at its top level, one literal declaration::

    FAMILY = declare_family(
        "llava_onevision",                       # the family name (--loader, tiny-random/<name>)
        loader="LlavaOnevisionLoader",           # the Loader subclass in this module
        model_types=("llava_onevision",),        # config.json model_type values it loads
        tiny="build_tiny",                       # optional: function(tokenizer, realistic) -> (model, processor)
        protocols={"pollard2025": {"baseline": "normalized_zero", "sampler": "linspace"}},
    )

    class LlavaOnevisionLoader(ChatVLMLoader):
        family = FAMILY.name

Adding a family is adding such a file: nothing else lists it. The registry stays explicit and lazy:
the package's modules are enumerated with :func:`pkgutil.iter_modules` and the declarations are read
from their *source* (``ast``, no import) by the core's table :mod:`vqa_shap.families` (which the
protocol asks too; its names are re-exported here), so
``import vqa_shap.loaders`` imports neither torch nor transformers, and listing the families imports no
family module. A module is imported only when its family is asked for (:func:`get_loader`,
``tiny-random/<family>``). The same ``declare_family`` call runs when the module is imported, so the
declaration read from source and the one in the module are the same value (a test checks it).

What a declaration feeds:

* :data:`LOADERS` (``get_loader(name)``) and :func:`resolve_model` (``--model``/``--loader``);
* :data:`MODEL_TYPES` (config ``model_type`` -> family), for checkpoints given without ``--loader``;
* :func:`vqa_shap.loaders.tiny.build_tiny_model` (``tiny-random/<family>``, offline tests);
* :func:`protocol_settings`: per protocol, the family's masked-frame ``baseline`` (``"black"`` or
  ``"normalized_zero"``) and its default frame ``sampler`` where the benchmark does not fix one.

``resolve_model(model)`` turns a ``--model`` value (a Hub id, a local folder, ``demo`` or
``tiny-random/<family>``) into ``(loader class, checkpoint)``. docs/loaders.md explains how to add a
family.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vqa_shap.errors import VqaShapError
# the declaration table is read by the core (the protocol asks it too); its names are re-exported here
from vqa_shap.families import (PROTOCOL_SETTING_KEYS, Family, declare_family, families, get_family,
                               model_types, protocol_settings)
from vqa_shap.registry import Registry

#: Prefix of the offline tiny random models: ``tiny-random/<family>``.
TINY_PREFIX = "tiny-random/"
#: The ``--model`` value of the committed demo model (trained on the synthetic benchmark).
DEMO_MODEL = "demo"


#: family name -> loader class. Every declared family is a member (tested importable).
LOADERS: Registry = Registry(
    "loader", lambda: {n: f"{f.module}:{f.loader}" for n, f in families().items()},
    base="vqa_shap.loaders.base:Loader",
)


def __getattr__(name: str) -> Any:
    if name == "MODEL_TYPES":  # computed from the declarations on first use (keeps the import cheap)
        return model_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_loader(name: str):
    """The loader class registered as ``name`` (raises ``RegistryError`` listing valid names)."""
    return LOADERS.get(name)


def resolve_model(model: str, loader: str | None = None) -> tuple[type, str]:
    """The loader class and checkpoint for a ``--model`` value.

    Args:
        model: ``demo`` / ``demo-long`` (the committed demo models, :func:`vqa_shap.demo.model.demo_model_dir`),
            ``tiny-random/<family>`` (built offline once and cached, see
            :func:`vqa_shap.loaders.tiny.tiny_model_dir`), a local ``save_pretrained`` folder, or a Hub id.
        loader: the family; ``None`` = from the checkpoint's ``config.json`` ``model_type``.

    Returns:
        ``(loader class, checkpoint path or id)``.

    Raises:
        VqaShapError: the family cannot be determined.
    """
    from vqa_shap.demo.architecture import DEMO_MODELS, demo_model_dir

    if model in DEMO_MODELS:  # the committed demo models (vqa_shap.demo.model), llava_onevision checkpoints
        if loader is not None and loader != "llava_onevision":
            raise VqaShapError(f"--loader {loader!r} does not match model {model!r} (llava_onevision)")
        return get_loader("llava_onevision"), str(demo_model_dir(model))
    if model.startswith(TINY_PREFIX):
        from vqa_shap.loaders.tiny import tiny_model_dir

        family = model[len(TINY_PREFIX):]
        if loader is not None and loader != family:
            raise VqaShapError(f"--loader {loader!r} does not match model {model!r}")
        cls = get_loader(family)
        return cls, str(tiny_model_dir(family))
    if loader is not None:
        if Path(model).is_dir():  # a folder's config must be readable whichever loader reads it
            from vqa_shap.loaders.checkpoints import read_config

            read_config(model)
        return get_loader(loader), model
    model_type = _model_type(model)
    known = model_types()
    if model_type not in known:
        raise VqaShapError(f"cannot tell the loader of {model!r} (model_type {model_type!r}); "
                           f"pass --loader, one of: {', '.join(LOADERS.names())}")
    return get_loader(known[model_type]), model


def _model_type(model: str) -> str | None:
    path = Path(model)
    if path.is_dir():
        from vqa_shap.loaders.checkpoints import read_config

        return read_config(path).get("model_type")
    try:  # a Hub id: config.json from the local cache or the Hub
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model, "config.json")).read_text()).get("model_type")
    except Exception as exc:  # noqa: BLE001 - any failure means we cannot tell; say so clearly
        raise VqaShapError(f"cannot read config.json of {model!r} ({exc.__class__.__name__}); "
                           f"pass --loader, one of: {', '.join(LOADERS.names())}") from exc


__all__ = ["LOADERS", "TINY_PREFIX", "DEMO_MODEL", "get_loader", "resolve_model",
           # the declaration table (vqa_shap.families)
           "PROTOCOL_SETTING_KEYS", "Family", "declare_family", "families", "get_family", "model_types",
           "protocol_settings"]
