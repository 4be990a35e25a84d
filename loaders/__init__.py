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
from their *source* with :func:`vqa_shap.registry.read_declarations` (``ast``, no import), so
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from vqa_shap.errors import RegistryError, VqaShapError
from vqa_shap.registry import Registry, read_declarations

#: Settings a family may give per protocol (see :func:`protocol_settings`).
PROTOCOL_SETTING_KEYS = ("baseline", "sampler")

#: Prefix of the offline tiny random models: ``tiny-random/<family>``.
TINY_PREFIX = "tiny-random/"
#: The ``--model`` value of the committed demo model (trained on the synthetic benchmark).
DEMO_MODEL = "demo"


@dataclass(frozen=True)
class Family:
    """A model family as its module declares it (see the package docstring).

    Attributes:
        name: the family name.
        loader: the name of the :class:`~vqa_shap.loaders.base.Loader` subclass in ``module``.
        module: the declaring module (empty inside the module itself).
        model_types: ``config.json`` ``model_type`` values this family loads.
        tiny: name of the module's tiny-model builder ``f(tokenizer, realistic) -> (model, processor)``,
            or ``None`` when the family has no tiny model.
        protocols: protocol name -> settings (``baseline``, ``sampler``).
    """

    name: str
    loader: str
    module: str = ""
    model_types: tuple[str, ...] = ()
    tiny: str | None = None
    protocols: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def declare_family(name: str, *, loader: str, model_types: tuple[str, ...] | list[str] = (),
                   tiny: str | None = None, protocols: Mapping[str, Mapping[str, str]] | None = None) -> Family:
    """Declare a model family; call it once, at the top level of the family's module, with literals.

    The call is read from the source without importing the module (so its arguments must be literals)
    and runs again when the module is imported; both give the same :class:`Family`.

    Raises:
        RegistryError: a malformed declaration (the message names the family and the field).
    """
    def bad(what: str) -> RegistryError:
        return RegistryError(f"family {name!r}: {what}")

    if not (isinstance(name, str) and name.isidentifier()):
        raise RegistryError(f"family name {name!r} must be an identifier")
    if not (isinstance(loader, str) and loader.isidentifier()):
        raise bad(f"loader {loader!r} must be a class name")
    if isinstance(model_types, str) or not all(isinstance(t, str) and t for t in model_types):
        raise bad(f"model_types {model_types!r} must be a tuple of strings")
    if tiny is not None and not (isinstance(tiny, str) and tiny.isidentifier()):
        raise bad(f"tiny {tiny!r} must be a function name")
    protocols = dict(protocols or {})
    for protocol, settings in protocols.items():
        _check_settings(protocol, settings, bad)
    return Family(name, loader, "", tuple(model_types), tiny,
                  {p: dict(s) for p, s in protocols.items()})


def _check_settings(protocol: str, settings: Mapping[str, str], bad) -> None:
    from vqa_shap.protocol import BASELINES, PROTOCOLS, SAMPLERS  # light (numpy), and only when declaring

    where = f"protocols[{protocol!r}]"
    if protocol not in PROTOCOLS:
        raise bad(f"{where}: unknown protocol; valid protocols: {', '.join(PROTOCOLS.names())}")
    unknown = set(settings) - set(PROTOCOL_SETTING_KEYS)
    if unknown:
        raise bad(f"{where} has unknown settings {sorted(unknown)}; valid: {', '.join(PROTOCOL_SETTING_KEYS)}")
    if settings.get("baseline", BASELINES[0]) not in BASELINES:
        raise bad(f"{where}: unknown baseline {settings['baseline']!r}; valid baselines: {', '.join(BASELINES)}")
    if settings.get("sampler", "linspace") not in SAMPLERS:
        raise bad(f"{where}: unknown sampler {settings['sampler']!r}; valid samplers: {', '.join(SAMPLERS)}")


# Read once per search path: extending __path__ (a test's throwaway family) reads again.
_TABLES: dict[tuple[str, ...], dict[str, Family]] = {}


def families() -> dict[str, Family]:
    """Every declared family, by name, read from the modules' source (no family module is imported).

    Raises:
        RegistryError: two modules declare the same family or claim the same ``model_type``, or a
            declaration is malformed.
    """
    key = tuple(__path__)
    if key not in _TABLES:
        table: dict[str, Family] = {}
        for module, (args, kwargs) in read_declarations(__name__, key, "declare_family").items():
            family = replace(declare_family(*args, **kwargs), module=module)
            if family.name in table:
                raise RegistryError(f"family {family.name!r} is declared by both {table[family.name].module} "
                                    f"and {module}")
            table[family.name] = family
        _model_types_of(table)  # validates: one family per model_type
        _TABLES[key] = table
    return _TABLES[key]


def get_family(name: str) -> Family:
    """The declaration of family ``name`` (raises ``RegistryError`` listing valid names)."""
    table = families()
    if name not in table:
        raise RegistryError(f"unknown loader {name!r}; valid loaders: {', '.join(sorted(table))}")
    return table[name]


def protocol_settings(protocol: str, family: str | None) -> Mapping[str, str]:
    """The settings family ``family`` declares for ``protocol``; empty for an unknown family or none."""
    found = families().get(family or "")
    return found.protocols.get(protocol, {}) if found is not None else {}


def model_types() -> dict[str, str]:
    """``config.json`` ``model_type`` -> family name, from the declarations."""
    return _model_types_of(families())


def _model_types_of(table: Mapping[str, Family]) -> dict[str, str]:
    result: dict[str, str] = {}
    for family in table.values():
        for model_type in family.model_types:
            if model_type in result:
                raise RegistryError(f"model_type {model_type!r} is claimed by families {result[model_type]!r} "
                                    f"and {family.name!r}")
            result[model_type] = family.name
    return result


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
    known = model_types()
    if model_type not in known:
        raise VqaShapError(f"cannot tell the loader of {model!r} (model_type {model_type!r}); "
                           f"pass --loader, one of: {', '.join(LOADERS.names())}")
    return get_loader(known[model_type]), model


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
