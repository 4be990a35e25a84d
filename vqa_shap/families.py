"""Model-family declarations: the table every family module of the loaders package declares, read
from the modules' source.

A family module (``loaders/<family>.py``, installed as ``vqa_shap.loaders.<family>``) starts with one
literal :func:`declare_family` call (the loaders package docstring shows one). This core module reads
those calls with :func:`vqa_shap.registry.read_declarations` (``ast``, no import) from the files on the
loaders package's search path (:func:`vqa_shap.registry.package_search_path`), so the protocol asks it
for a family's settings (:func:`protocol_settings`) without importing the loaders package, a loader, torch
or transformers. The loaders package builds its registry (``get_loader``, ``MODEL_TYPES``, the tiny
models) from the same table and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from vqa_shap.errors import RegistryError
from vqa_shap.registry import package_search_path, read_declarations

#: The package whose modules declare the model families.
LOADERS_PACKAGE = "vqa_shap.loaders"
#: Settings a family may give per protocol (see :func:`protocol_settings`).
PROTOCOL_SETTING_KEYS = ("baseline", "sampler")


@dataclass(frozen=True)
class Family:
    """A model family as its module declares it (see the package docstring).

    Attributes:
        name: the family name.
        loader: the name of the :class:`~vqa_shap.loaders.bases.loader.Loader` subclass in ``module``.
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
    """The setting keys; their values (protocol, baseline and sampler names) are checked by the protocol
    layer, which reads this table (:func:`vqa_shap.protocol.check_family_protocols`)."""
    unknown = set(settings) - set(PROTOCOL_SETTING_KEYS)
    if unknown:
        raise bad(f"protocols[{protocol!r}] has unknown settings {sorted(unknown)}; "
                  f"valid: {', '.join(PROTOCOL_SETTING_KEYS)}")


# Read once per search path: extending __path__ (a test's throwaway family) reads again.
_TABLES: dict[tuple[str, ...], dict[str, Family]] = {}


def families() -> dict[str, Family]:
    """Every declared family, by name, read from the modules' source (no family module is imported).

    Raises:
        RegistryError: two modules declare the same family or claim the same ``model_type``, or a
            declaration is malformed.
    """
    key = tuple(package_search_path(LOADERS_PACKAGE))
    if key not in _TABLES:
        table: dict[str, Family] = {}
        for module, (args, kwargs) in read_declarations(LOADERS_PACKAGE, key, "declare_family").items():
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
