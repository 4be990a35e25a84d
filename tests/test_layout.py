"""The layout the architecture promises, checked on the source: imports go one way (the core never
imports a loader, the demo, the analysis, the benchmarks or the commands), modules and functions stay
small, and no Python file refers to notes outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "vqa_shap"

#: The core: the top-level modules and these subpackages.
CORE_PACKAGES = ("protocol", "explain", "estimators", "hub", "schema", "long_video")
#: What the core never imports (``loaders`` and ``vqa_shap.loaders`` are the same package, installed).
FORBIDDEN = ("vqa_shap.loaders", "loaders", "vqa_shap.demo", "vqa_shap.analysis", "vqa_shap.measure",
             "vqa_shap.commands")
#: The one allowed edge: the explain run resolves ``--model`` to a loader class (``resolve_model``);
#: it is where a model meets the estimators, above the rest of the core.
ALLOWED = {("vqa_shap/explain/explain_run.py", "vqa_shap.loaders")}

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
#: Longer functions tolerated (none: add an entry only with the reason beside it).
LONG_FUNCTIONS: set[tuple[str, str]] = set()


def _core_files() -> list[Path]:
    files = sorted(PACKAGE.glob("*.py"))
    for sub in CORE_PACKAGES:
        files += sorted((PACKAGE / sub).rglob("*.py"))
    return files


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an ``import``/``from … import`` names, including ``from vqa_shap import loaders``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _forbidden(module: str) -> str | None:
    return next((f for f in FORBIDDEN if module == f or module.startswith(f + ".")), None)


def test_the_import_check_sees_every_import_form():
    tree = ast.parse("import vqa_shap.loaders.bases.loader\nfrom vqa_shap import demo\n"
                     "def f():\n    from vqa_shap.analysis.metrics import x\n    import loaders\n")
    hits = sorted({_forbidden(m) for _, m in _imported_modules(tree)} - {None})
    assert hits == ["loaders", "vqa_shap.analysis", "vqa_shap.demo", "vqa_shap.loaders"]


def test_the_core_never_imports_loaders_demo_analysis_bench_or_commands():
    files = _core_files()
    assert len(files) > 30 and PACKAGE / "protocol" / "base.py" in files
    bad = []
    for path in files:
        rel = path.relative_to(REPO_ROOT).as_posix()
        for line, module in _imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            hit = _forbidden(module)
            if hit is not None and (rel, hit) not in ALLOWED:
                bad.append(f"{rel}:{line} imports {module}")
    assert not bad, "the core imports upward:\n" + "\n".join(sorted(set(bad)))


def _source_files() -> list[Path]:
    return sorted(p for root in ("vqa_shap", "builders", "loaders") for p in (REPO_ROOT / root).rglob("*.py"))


def _functions(tree: ast.AST, prefix: str = ""):
    """``(qualified name, lines)`` of every function, methods as ``Class.method``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node.end_lineno - node.lineno + 1
            yield from _functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def test_modules_and_functions_stay_small():
    files = _source_files()
    assert len(files) > 60
    too_long = []
    for path in files:
        rel = path.relative_to(REPO_ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {len(source.splitlines())} lines (> {MAX_MODULE_LINES})")
        for name, lines in _functions(ast.parse(source)):
            if lines > MAX_FUNCTION_LINES and (rel, name) not in LONG_FUNCTIONS:
                too_long.append(f"{rel}: {name} has {lines} lines (> {MAX_FUNCTION_LINES})")
    assert not too_long, "split these along their seams:\n" + "\n".join(too_long)


def test_the_size_check_measures_nested_functions_and_methods():
    tree = ast.parse("class A:\n    def m(self):\n        def inner():\n            pass\n        return 1\n")
    assert dict(_functions(tree)) == {"A.m": 4, "A.m.inner": 2}


#: Notes that live outside the repository (spelled so that this file does not match itself).
_OUTSIDE = re.compile(r"SEED_SPE[C]|DESIGN\.m[d]|NONNATIV[E]")


def test_no_python_file_refers_to_notes_outside_the_repository():
    files = sorted(p for p in REPO_ROOT.rglob("*.py")
                   if not any(part.startswith(".") or part in ("build", "dist", "node_modules")
                              for part in p.relative_to(REPO_ROOT).parts))
    assert REPO_ROOT / "tests" / "test_layout.py" in files
    found = [f"{p.relative_to(REPO_ROOT)}: {m}" for p in files for m in _OUTSIDE.findall(p.read_text(encoding="utf-8"))]
    assert not found, found
