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


def _module_files() -> dict[str, Path]:
    """Every module of the installed package, by dotted name (``builders/`` and ``loaders/`` are
    ``vqa_shap.builders`` and ``vqa_shap.loaders``)."""
    roots = {"vqa_shap": PACKAGE, "vqa_shap.builders": REPO_ROOT / "builders", "vqa_shap.loaders": REPO_ROOT / "loaders"}
    found = {}
    for package, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its source (function bodies and
    ``TYPE_CHECKING`` blocks too: a cycle hidden in a function is still a cycle). Importing a
    submodule counts as importing it and its parent packages, except the importer's own packages."""
    graph = {}
    for module, path in files.items():
        named = {name for _, name in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))}
        edges = set()
        for name in named:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in files and target != module and not module.startswith(target + "."):
                    edges.add(target)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path):
    sources = {"a": "import vqa_shap.b\n", "b": "def f():\n    from vqa_shap.a import x\n",
               "c": "from vqa_shap import a\n"}
    for name, text in sources.items():
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    graph = _import_graph({f"vqa_shap.{name}": tmp_path / f"{name}.py" for name in sources})
    assert graph == {"vqa_shap.a": {"vqa_shap.b"}, "vqa_shap.b": {"vqa_shap.a"}, "vqa_shap.c": {"vqa_shap.a"}}
    assert _cycles(graph) == [["vqa_shap.a", "vqa_shap.b"]]


def test_the_package_has_no_import_cycle_and_only_commands_import_commands():
    files = _module_files()
    assert "vqa_shap.loaders.bases.loader" in files and "vqa_shap.hub.folder" in files and len(files) > 150
    graph = _import_graph(files)
    assert not _cycles(graph), "import cycles:\n" + "\n".join(" <-> ".join(c) for c in _cycles(graph))
    upward = sorted(m for m, edges in graph.items() if not m.startswith(("vqa_shap.commands", "vqa_shap.cli"))
                    and any(e.startswith("vqa_shap.commands") for e in edges))
    assert not upward, f"modules outside the commands import vqa_shap.commands: {upward}"
