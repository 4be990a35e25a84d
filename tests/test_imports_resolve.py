"""Every ``from vqa_shap... import name`` in the repository, at any depth (function-level imports
included), names something that exists: moves and removed re-exports cannot leave an import that
fails only when its function first runs."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("vqa_shap", "loaders", "builders", "scripts", "tests")


def _imports():
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vqa_shap"):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", node.module, [a.name for a in node.names]


def _exists(module, name: str) -> bool:
    if name == "*" or hasattr(module, name):
        return True
    try:
        importlib.import_module(f"{module.__name__}.{name}")
        return True
    except ImportError:
        return False


def test_every_vqa_shap_import_names_something_that_exists():
    missing = []
    for where, module_name, names in _imports():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing.append(f"{where}: {module_name}: {exc}")
            continue
        missing += [f"{where}: {module_name} has no {name!r}" for name in names if not _exists(module, name)]
    assert not missing, "\n".join(missing)


def test_the_check_finds_a_missing_name(tmp_path):
    """The walk sees a function-level import, and a name that does not exist fails the check."""
    module = importlib.import_module("vqa_shap.errors")
    assert _exists(module, "VqaShapError") and not _exists(module, "NoSuchName")
    found = [names for where, mod, names in _imports() if where.startswith("tests/test_imports_resolve.py")]
    assert ["VqaShapError"] in found  # the function-level import below


def _uses_a_function_level_import():
    from vqa_shap.errors import VqaShapError

    return VqaShapError
