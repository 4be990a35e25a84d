"""Explicit, lazy registries for plugin families (builders, loaders, estimators, protocols).

A registry maps a public name to ``"module.path:ClassName"``. Nothing is imported until a member is
asked for, so listing names is free and `import vqa_shap` stays cheap.

Members are given either as a fixed mapping or as a function returning it, called when the names are
first needed: the loaders build theirs from declarations read in their modules' source
(:func:`read_declarations`, on the path :func:`package_search_path` finds without importing the
package; see :mod:`vqa_shap.families`), so a new member is one new file and still nothing is imported
to list it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, TypeVar

from vqa_shap.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named, lazily imported family of plugin classes.

    Args:
        family: what the members are (used in error messages), e.g. ``"builder"``.
        members: public name -> ``"module.path:ClassName"``, or a function returning that mapping
            (called on every look-up, so it should cache; it may change, e.g. when a package's search
            path grows).
        base: optional dotted path ``"module:Class"`` every member must subclass; checked on load.
    """

    def __init__(self, family: str, members: Mapping[str, str] | Callable[[], Mapping[str, str]],
                 base: str | None = None):
        self.family = family
        if callable(members):
            self._source = members
        else:
            _check_targets(family, members)
            fixed = dict(members)
            self._source = lambda: fixed
        self._base = base

    @property
    def _members(self) -> Mapping[str, str]:
        members = self._source()
        _check_targets(self.family, members)
        return members

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
        target = self._members[name]
        module_name, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        if self._base is not None:
            base_module, _, base_attr = self._base.partition(":")
            base_cls = getattr(importlib.import_module(base_module), base_attr)
            if not (isinstance(cls, type) and issubclass(cls, base_cls)):
                raise TypeError(f"{self.family} {name!r} ({target}) is not a {base_attr}")
        return cls

    def _check(self, name: str) -> None:
        if name not in self._members:
            raise RegistryError(
                f"unknown {self.family} {name!r}; valid {self.family}s: {', '.join(self.names())}"
            )


def _check_targets(family: str, members: Mapping[str, str]) -> None:
    for name, target in members.items():
        if ":" not in target:
            raise ValueError(f"{family} registry: {name!r} -> {target!r} is not 'module:Class'")


def package_search_path(package: str) -> list[str]:
    """The search path of ``package`` without importing it (its parent packages are imported).

    An imported package's live ``__path__`` (which a caller may have extended), else the one its
    import spec gives.

    Raises:
        RegistryError: ``package`` is not an importable package.
    """
    module = sys.modules.get(package)
    if module is not None and hasattr(module, "__path__"):
        return list(module.__path__)
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise RegistryError(f"{package} is not an importable package")
    return list(spec.submodule_search_locations)


def read_declarations(package: str, paths: Iterable[str], function: str) -> dict[str, tuple[tuple, dict[str, Any]]]:
    """The literal arguments of each module's top-level call to ``function``, read without importing.

    Every module of ``package`` found on ``paths`` (:func:`pkgutil.iter_modules`, no import) is read;
    a top-level statement ``NAME = function(...)`` or ``function(...)`` is parsed alone (a few lines, not
    the whole module); the call's arguments must be Python literals (strings, numbers, tuples, lists,
    dicts, ``None``, booleans).

    Args:
        package: the package's dotted name, e.g. ``"vqa_shap.loaders"``.
        paths: its search path (``package.__path__``).
        function: the declaring function's name, e.g. ``"declare_family"``.

    Returns:
        Full module name -> ``(positional arguments, keyword arguments)``, for the modules declaring.

    Raises:
        RegistryError: a module calls ``function`` more than once, or with non-literal arguments
            (the message names the file and line).
    """
    found: dict[str, tuple[tuple, dict[str, Any]]] = {}
    for info in pkgutil.iter_modules(list(paths)):
        if info.ispkg or info.name in found:
            continue
        path = Path(getattr(info.module_finder, "path", "")) / f"{info.name}.py"
        try:
            source = path.read_text(encoding="utf-8")
        except OSError:  # not a plain source file (e.g. a compiled extension): declares nothing
            continue
        calls = _declaring_statements(source, path, function)
        if len(calls) > 1:
            raise RegistryError(f"{path}: {function}() is called {len(calls)} times; one module declares once")
        if calls:
            found[f"{package}.{info.name}"] = _literal_arguments(calls[0], path, function)
    return found


def _declaring_statements(source: str, path: Path, function: str) -> list[ast.Call]:
    """The top-level calls to ``function``, parsing only their statements (not the whole, longer file).

    A top-level statement starts at column 0, so each candidate line is grown until it parses.
    """
    start = re.compile(rf"^(?:[A-Za-z_]\w*\s*(?::[^=]*)?=\s*)?(?:[A-Za-z_]\w*\.)*{function}\(")
    lines = source.splitlines()
    calls: list[ast.Call] = []
    for i, line in enumerate(lines):
        if not start.match(line):
            continue
        for j in range(i + 1, len(lines) + 1):
            try:
                tree = ast.parse("\n".join(lines[i:j]))
            except SyntaxError:
                continue
            calls += [ast.fix_missing_locations(ast.increment_lineno(c, i)) for c in _top_level_calls(tree, function)]
            break
        else:
            raise RegistryError(f"{path}:{i + 1}: cannot parse the {function}() statement")
    return calls


def _top_level_calls(tree: ast.Module, function: str) -> Iterator[ast.Call]:
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr)) else None
        if isinstance(value, ast.Call):
            func = value.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name == function:
                yield value


def _literal_arguments(call: ast.Call, path: Path, function: str) -> tuple[tuple, dict[str, Any]]:
    if any(k.arg is None for k in call.keywords) or any(isinstance(a, ast.Starred) for a in call.args):
        raise RegistryError(f"{path}:{call.lineno}: {function}() cannot take *args or **kwargs")
    try:
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except ValueError as exc:
        raise RegistryError(f"{path}:{call.lineno}: the arguments of {function}() must be literals "
                            f"(it is read without importing the module): {exc}") from None
    return args, kwargs
