"""Explicit, lazy registries for plugin families (builders, loaders, estimators, protocols).

A registry maps a public name to ``"module.path:ClassName"``. Nothing is imported until a member is
asked for, so listing names is free and `import vqa_shap` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Generic, Iterator, Mapping, TypeVar

from vqa_shap.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named, lazily imported family of plugin classes.

    Args:
        family: what the members are (used in error messages), e.g. ``"builder"``.
        members: public name -> ``"module.path:ClassName"``.
        base: optional dotted path ``"module:Class"`` every member must subclass; checked on load.
    """

    def __init__(self, family: str, members: Mapping[str, str], base: str | None = None):
        for name, target in members.items():
            if ":" not in target:
                raise ValueError(f"{family} registry: {name!r} -> {target!r} is not 'module:Class'")
        self.family = family
        self._members = dict(members)
        self._base = base

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def target(self, name: str) -> str:
        """The ``module:Class`` path of ``name``."""
        self._check(name)
        return self._members[name]

    def get(self, name: str) -> type[T]:
        """Import and return the class registered as ``name``.

        Raises:
            RegistryError: ``name`` is not registered (the message lists the valid names).
        """
        self._check(name)
        module_name, _, attr = self._members[name].partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        if self._base is not None:
            base_module, _, base_attr = self._base.partition(":")
            base_cls = getattr(importlib.import_module(base_module), base_attr)
            if not (isinstance(cls, type) and issubclass(cls, base_cls)):
                raise TypeError(f"{self.family} {name!r} ({self._members[name]}) is not a {base_attr}")
        return cls

    def _check(self, name: str) -> None:
        if name not in self._members:
            raise RegistryError(
                f"unknown {self.family} {name!r}; valid {self.family}s: {', '.join(self.names())}"
            )
