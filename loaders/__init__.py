"""Model loaders: one module per model family, found through a lazy registry built from their declarations.

A family module holds its loader class and one top-level literal ``FAMILY = declare_family(...)``,
read from source without importing it (:mod:`vqa_shap.families`), so ``import vqa_shap.loaders``
imports neither torch nor transformers and adding a family is adding one file. A declaration feeds
:data:`LOADERS`, :data:`MODEL_TYPES`, the tiny models and :func:`protocol_settings`;
:func:`resolve_model` turns ``--model`` into ``(loader class, checkpoint)``. Adding a family:
docs/contributing.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vqa_shap.errors import VqaShapError
# the declaration table is read by the core (the protocol asks it too)
from vqa_shap.families import families, model_types
from vqa_shap.registry import Registry

#: Prefix of the offline tiny random models: ``tiny-random/<family>``.
TINY_PREFIX = "tiny-random/"


#: family name -> loader class. Every declared family is a member (tested importable).
def _loader_table() -> dict[str, str]:
    """family name -> ``module:Class``, each family's per-protocol settings checked by the protocol layer."""
    from vqa_shap.protocol import check_family_protocols

    table = families()
    for name, family in table.items():
        check_family_protocols(name, family.protocols)
    return {n: f"{f.module}:{f.loader}" for n, f in table.items()}


LOADERS: Registry = Registry(
    "loader", _loader_table,
    base="vqa_shap.loaders.bases.loader:Loader",
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
        model: ``demo`` / ``demo-long`` (the committed demo models, :func:`vqa_shap.loaders.demo_models.demo_model_dir`),
            ``tiny-random/<family>`` (built offline once and cached, see
            :func:`vqa_shap.loaders.testing.tiny.tiny_model_dir`), a local ``save_pretrained`` folder, or a Hub id.
        loader: the family; ``None`` = from the checkpoint's ``config.json`` ``model_type``.

    Returns:
        ``(loader class, checkpoint path or id)``.

    Raises:
        VqaShapError: the family cannot be determined.
    """
    from vqa_shap.loaders.demo_models import DEMO_MODELS, demo_model_dir

    if model in DEMO_MODELS:  # the committed demo models (vqa_shap.demo), llava_onevision checkpoints
        if loader is not None and loader != "llava_onevision":
            raise VqaShapError(f"--loader {loader!r} does not match model {model!r} (llava_onevision)")
        return get_loader("llava_onevision"), str(demo_model_dir(model))
    if model.startswith(TINY_PREFIX):
        from vqa_shap.loaders.testing.tiny import tiny_model_dir

        family = model[len(TINY_PREFIX):]
        if loader is not None and loader != family:
            raise VqaShapError(f"--loader {loader!r} does not match model {model!r}")
        cls = get_loader(family)
        return cls, str(tiny_model_dir(family))
    if loader is not None:
        if Path(model).is_dir():  # a folder's config must be readable whichever loader reads it
            from vqa_shap.loaders.rebuilt.checkpoints import read_config

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
        from vqa_shap.loaders.rebuilt.checkpoints import read_config

        return read_config(path).get("model_type")
    try:  # a Hub id: config.json from the local cache or the Hub
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model, "config.json")).read_text()).get("model_type")
    except Exception as exc:  # noqa: BLE001 - any failure means we cannot tell; say so clearly
        raise VqaShapError(f"cannot read config.json of {model!r} ({exc.__class__.__name__}); "
                           f"pass --loader, one of: {', '.join(LOADERS.names())}") from exc


__all__ = ["LOADERS", "TINY_PREFIX", "get_loader", "resolve_model"]
