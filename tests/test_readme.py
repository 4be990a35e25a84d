"""The README and the docs/ pages: their examples run as written, their links resolve, their figures hold.

The text is read from README.md and docs/*.md, not copied here. Every ``python`` block of those pages
must be covered by a test below, so a new example fails this file until it is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
PAGES = (README, *sorted(DOCS.glob("*.md")))

#: Pages written on other branches and linked from these ones; missing until those branches are merged.
#: Remove a name once its page exists on the branch under test.
PENDING_PAGES: set[str] = set()  # every linked docs page exists

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.M | re.S)


def _blocks(lang: str) -> list[tuple[Path, str]]:
    return [(page, m.group(2)) for page in PAGES for m in _FENCE.finditer(page.read_text())
            if m.group(1) == lang]


def _block(lang: str, marker: str) -> tuple[Path, str]:
    found = [(page, b) for page, b in _blocks(lang) if marker in b]
    assert len(found) == 1, f"{len(found)} {lang} blocks in README.md and docs/ contain {marker!r} (expected 1)"
    return found[0]


def _run(block: tuple[Path, str], namespace: dict | None = None) -> dict:
    page, code = block
    namespace = {"__name__": "__readme__"} if namespace is None else namespace
    exec(compile(code, str(page), "exec"), namespace)
    return namespace


def _bash(block: tuple[Path, str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", "-e", "-c", block[1]], cwd=cwd, env={**os.environ, "PATH": path, **env},
                          capture_output=True, text=True, timeout=600)


#: A line that identifies each self-contained Python example.
README_READ_BACK = "Attribution.from_row(rows[0])"
SAMPLE_VARIANT = 'get_builder("egoschema").build(SAMPLE_DIR'
TINY_LOADER = 'resolve_model("tiny-random/llava_onevision")'
SHAPLEY_API = "vqa_shap.shapley(value_fn"
SYNTHETIC = 'generate_source("synthetic_src"'
SCHEMA_ROW = "row = q.to_row()"
INTERACTIONS_API = "exact_interactions(Game(value"
VIEWER_API = 'build_site({"demo__synthetic"'
#: The example that needs the paper-tables commands (a bash block) run first.
PAPER_EXPORT = 'load_dataset("paper_attributions"'
#: The README's command-line example.
README_COMMANDS = "vqa-shap metrics ex_attributions"


def test_every_python_example_is_covered():
    markers = (README_READ_BACK, SAMPLE_VARIANT, TINY_LOADER, SHAPLEY_API, SYNTHETIC, SCHEMA_ROW, PAPER_EXPORT,
               INTERACTIONS_API, VIEWER_API)
    assert len(_blocks("python")) == len(markers)
    for marker in markers:
        _block("python", marker)


def test_readme_is_a_front_page():
    """At most 250 lines, and its command table names every command the CLI has."""
    from vqa_shap.cli import COMMANDS

    text = README.read_text()
    assert len(text.splitlines()) <= 250
    table = {m.group(1) for m in re.finditer(r"^\| `([\w-]+)` \|", text, flags=re.M)}
    assert set(COMMANDS) <= table, sorted(set(COMMANDS) - table)


def test_readme_example_runs(tmp_path):
    """The README's commands, then its Python read-back, from a checkout-like folder."""
    (tmp_path / "builders").symlink_to(REPO_ROOT / "builders", target_is_directory=True)
    done = _bash(_block("bash", README_COMMANDS), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tiny-random-llava_onevision__egoschema" in done.stdout  # the metrics table's row

    import contextlib
    import io

    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            ns = _run(_block("python", README_READ_BACK))
    finally:
        os.chdir(cwd)
    lines = out.getvalue().splitlines()
    attr = ns["attr"]
    assert len(lines) == 5 and attr.error is None and attr.shapley.shape[0] == len(attr.features)
    # the comment's claim, checked by efficiency: the values add up to the answer's score change
    full, empty = np.asarray(attr.value_full), np.asarray(attr.value_empty)
    assert ns["phi"].sum() == pytest.approx(full[attr.answer] - empty[attr.answer], abs=1e-3)
    values = [float(line.split()[-1]) for line in lines]
    assert values == sorted(values, key=abs, reverse=True)  # printed in order of |value|


def _checkout(tmp_path: Path) -> Path:
    """A folder that looks like the repository root to the examples (they name ``builders/sample``)."""
    (tmp_path / "builders").symlink_to(REPO_ROOT / "builders", target_is_directory=True)
    return tmp_path


def test_publishing_workflow_runs(tmp_path):
    """docs/publishing.md's build -> augment -> load_dataset commands (all but the push, which needs the Hub)."""
    page, code = _block("bash", "vqa-shap augment my_questions")
    local = "\n".join(line for line in code.splitlines() if not line.startswith("vqa-shap push"))
    assert local != code  # the push line was there and is the only one left out
    done = _bash((page, local), _checkout(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "num_rows: 8" in done.stdout  # the hard_5 config loaded back with the sample's 8 questions
    from vqa_shap.hub.folder import list_configs

    assert set(list_configs(tmp_path / "my_questions")) == {"egoschema", "egoschema_easy", "egoschema_hard_5"}


def test_explain_example_runs(tmp_path):
    """docs/explain.md's complete run: build, videos, explain with a tiny model, load the attributions."""
    done = _bash(_block("bash", "# 3. explain with a tiny random LLaVA-OneVision"), _checkout(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "num_rows: 8" in done.stdout and "'shapley'" in done.stdout


def test_features_example_runs(tmp_path):
    """docs/protocol.md's features listing: frames first, then question and option words, per question."""
    done = _bash(_block("bash", "vqa-shap features f_questions"), _checkout(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    listing = json.loads((tmp_path / "features.json").read_text())["questions"]
    assert len(listing) == 8
    for entry in listing:
        modalities = [f["modality"] for f in entry["features"]]
        assert entry["n_frames"] == 8 and modalities[:8] == ["video"] * 8
        assert modalities[8:] == sorted(modalities[8:], key=["video", "question", "answer"].index)
        assert "video" not in modalities[8:] and "answer" in modalities


def test_variant_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = _run(_block("python", SAMPLE_VARIANT))
    q = ns["q"]  # EgoSchema's 5 options + 5 distractors; the answer still points at its own option
    assert len(q.options) == 10 and q.option_origin[q.answer].qid == q.qid
    assert capsys.readouterr().out.startswith("10 ")
    # the comment's claim: ours never duplicates an option (ignoring case and spacing)
    for question in ns["hard"]:
        words = [" ".join(o.lower().split()) for o in question.options]
        assert len(set(words)) == len(words), question.qid


def test_schema_example(capsys):
    ns = _run(_block("python", SCHEMA_ROW))
    assert ns["row"]["option_origin"] == [{"qid": "q1", "index": 0}, {"qid": "q1", "index": 1}]
    assert ns["row"]["extra"] == "{}" and capsys.readouterr().out.rstrip().endswith("video 1")


def test_tiny_loader_example(tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    try:
        ns = _run(_block("python", TINY_LOADER))
    finally:
        torch.set_num_threads(threads)
    loader, prepared, coalitions = ns["loader"], ns["prepared"], ns["coalitions"]
    cached = loader.score(prepared, coalitions)
    assert cached.shape == (3, 2)
    # the comment's claim: the uncached reference gives the same numbers
    np.testing.assert_allclose(cached, loader.score_pixels(prepared, coalitions), atol=1e-4)


def test_shapley_api_example(capsys):
    ns = _run(_block("python", SHAPLEY_API))
    assert ns["est"].values.shape == (20, 2) and ns["est"].efficiency_residual < 1e-9
    assert ns["modal"].values.shape == (3, 2) and ns["modal"].evaluations == 8
    assert ns["adaptive"].converged
    assert "True" in capsys.readouterr().out


def test_synthetic_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = _run(_block("python", SYNTHETIC))
    assert len(ns["questions"]) == 60 and (tmp_path / "synthetic_src" / "questions.json").is_file()


def test_viewer_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = _run(_block("python", VIEWER_API))
    assert ns["result"].n_questions == 50 and (tmp_path / "view_site" / "index.html").is_file()
    assert capsys.readouterr().out.split()[1:] == ["50", "0"]  # 50 rows, none an error row (every 97th is)


def test_paper_tables_commands_and_export_example(pollard_dir, tmp_path, monkeypatch):
    """The bash block that imports the published tables, then the export example: byte-equal CSVs."""
    done = _bash(_block("bash", "vqa-shap import-paper"), tmp_path, PAPER=str(pollard_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    _run(_block("python", PAPER_EXPORT))
    source = pollard_dir / "shapley" / "internvideo" / "mvbench"
    exported = sorted((tmp_path / "exported").iterdir())
    assert [p.name for p in exported] == sorted(p.name for p in source.glob("*_5000_joint.csv"))
    for path in exported:
        assert path.read_bytes() == (source / path.name).read_bytes(), path.name


def test_demo_model_figures_match_its_training_record():
    """docs/demo.md's training table states what loaders/demo_model/vqa_shap_training.json records."""
    info = json.loads((REPO_ROOT / "loaders" / "demo_model" / "vqa_shap_training.json").read_text())
    text = (DOCS / "demo.md").read_text()
    evaluation = info["evaluation"]
    per_task = ", ".join(f"{task} {acc:.2f}" for task, acc in sorted(evaluation["per_task"].items()))
    assert f"| training | {info['total_steps']} steps of {info['runs'][-1]['train_config']['batch_size']} questions, " \
           f"**{info['train_seconds'] / 60:.1f} min wall time on {info['torch_threads']} thread**" in text
    assert f"({evaluation['n_questions']} fresh questions" in text
    assert f"**{evaluation['accuracy']:.2f}** ({per_task})" in text


# -- links ------------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", flags=re.M)


def _prose(text: str) -> str:
    """The page without its fenced code blocks (a ``# comment`` in bash is not a heading)."""
    return _FENCE.sub("", text)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation removed, spaces -> '-'."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_anchor(h) for h in _HEADING.findall(_prose(page.read_text()))}


def test_anchor_matches_github():
    assert _anchor("What `prepare` caches, and why it is exact") == "what-prepare-caches-and-why-it-is-exact"
    assert _anchor("Pipeline: the paper's vs vqa-shap's (earlier run)") == "pipeline-the-papers-vs-vqa-shaps-earlier-run"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(page):
    """Every relative link names an existing file (or a page still pending) and an existing heading."""
    broken = []
    for target in _LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            if not (dest.parent == DOCS and dest.name in PENDING_PAGES):
                broken.append(target)
            continue
        if fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


#: Notes and fixtures that live outside the repository (spelled so that this file does not match itself).
_OUTSIDE = re.compile(r"SEED_SPE[C]|SEED §|DESIGN\.md|NON-?NATIVE_MODELS|\.\./shared")


def test_docs_refer_to_nothing_outside_the_repository():
    for page in (*PAGES, *sorted((REPO_ROOT / "cards").glob("*.j2"))):
        found = _OUTSIDE.findall(page.read_text())
        assert not found, f"{page.name} refers to {found}"


def test_readme_performance_figures_equal_the_committed_benchmarks():
    """The README's pipeline and loader speed-ups are the committed benchmark JSON's, rounded."""
    import json

    perf = README.read_text().split("## Performance", 1)[1].split("\n## ", 1)[0]
    pipeline = json.loads((REPO_ROOT / "benchmarks" / "bench_pipeline.json").read_text())["models"]
    paper_budget = json.loads((REPO_ROOT / "benchmarks" / "bench_pipeline_paper_budget.json").read_text())["models"]
    trained = json.loads((REPO_ROOT / "benchmarks" / "bench_pipeline_demo_realistic.json").read_text())["models"]
    pilot = json.loads((REPO_ROOT / "benchmarks" / "bench_pipeline_demo_realistic_auto_pilot.json").read_text())["models"]
    for key, s in (("realistic", pipeline["realistic"]["summary"]), ("demo", pipeline["demo"]["summary"]),
                   ("realistic at the paper's budget", paper_budget["realistic"]["summary"]),
                   ("trained realistic-proportion model at the paper's budget", trained["demo-realistic"]["summary"]),
                   ("the default with its rough-game pilot there", pilot["demo-realistic"]["summary"])):
        low, high = s["speedup_ci"]
        assert f"{s['speedup']:.1f}×" in perf and f"{low:.1f}–{high:.1f}" in perf, key
    speedup, ci = json.loads((REPO_ROOT / "benchmarks" / "bench_loader.json").read_text())["summary"]["speedup"]
    assert f"{speedup:.1f}× (± {ci:.1f})" in perf


def test_interactions_example_prints_what_its_comments_say(capsys):
    ns = _run(_block("python", INTERACTIONS_API))
    assert capsys.readouterr().out.strip() == "((0, 1), (0, 2), (1, 2)) [ 1. -1.  0.]"
    assert ns["approx"].estimator == "exact" and ns["approx"].budget == 8  # 6 < 2 (1 + 3 + 3): raised


def test_the_readme_python_api_names_real_parameters():
    """The README's API table calls each function with its own parameter names (it once showed
    ``n_players``, which raises TypeError)."""
    import importlib
    import inspect

    calls = re.findall(r"`(vqa_shap(?:\.\w+)+)\(([\w, ]+)\)`", README.read_text(encoding="utf-8"))
    assert any(name == "vqa_shap.shapley" for name, _ in calls), calls
    for dotted, args in calls:
        module, _, attr = dotted.rpartition(".")
        params = list(inspect.signature(getattr(importlib.import_module(module), attr)).parameters)
        named = [a.strip() for a in args.split(",")]
        assert named == params[:len(named)], (dotted, named, params)


def test_the_readme_test_command_requires_the_browser_tests_as_ci_does():
    """CI runs the README's command; that command asks for the browser tests (VQA_SHAP_BROWSER=1), so a
    machine that cannot run them fails them instead of skipping 11 tests CI runs."""
    root = REPO_ROOT
    readme, ci = README.read_text(encoding="utf-8"), (root / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/run_tests.sh    #" in readme
    assert [line for line in ci.splitlines() if line.startswith("bash ")] == ["bash scripts/run_tests.sh -q --timeout=1800"]
    script = (root / "scripts" / "run_tests.sh").read_text(encoding="utf-8")
    assert 'export VQA_SHAP_BROWSER="${VQA_SHAP_BROWSER:-1}"' in script
    assert script.index("VQA_SHAP_BROWSER=") < script.index("setup_env.sh\"")  # setup sees it: installs chromium


@pytest.mark.parametrize("required", ["1", "0"])
def test_browser_tests_that_cannot_run_fail_under_the_readme_command_and_skip_otherwise(required, tmp_path):
    env = {**os.environ, "VQA_SHAP_BROWSER": required, "PATH": str(tmp_path)}  # no chromium on this PATH
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_view_browser.py", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    if required == "1":
        assert done.returncode == 1 and "headless Chromium not found" in done.stdout, done.stdout[-2000:]
        assert "VQA_SHAP_BROWSER=0 bash scripts/run_tests.sh" in done.stdout and " passed" not in done.stdout
    else:
        assert done.returncode == 0 and " skipped" in done.stdout and "error" not in done.stdout, done.stdout[-2000:]


def test_the_contributing_guide_names_files_that_exist():
    text = (DOCS / "contributing.md").read_text(encoding="utf-8")
    named = {p for p in re.findall(r"`([\w./-]+\.(?:py|md|json|sh))`", text)}
    assert {"builders/__init__.py", "vqa_shap/estimators/__init__.py", "vqa_shap/explain_options.py",
            "tests/test_builders.py"} <= named
    missing = sorted(p for p in named if not (REPO_ROOT / p).is_file())
    assert not missing, missing
    assert "docs/contributing.md" in README.read_text(encoding="utf-8")


def test_readme_labels_the_random_weight_headline_and_links_the_realistic_model():
    """The README leads with the trained model's figure; the random-weight one says so (the committed run's
    model is untrained), and the trained model links to its section in the demo docs."""
    import json

    perf = README.read_text(encoding="utf-8").split("## Performance", 1)[1].split("\n## ", 1)[0]
    bench = json.loads((REPO_ROOT / "benchmarks" / "bench_pipeline_paper_budget.json").read_text())["models"]["realistic"]
    assert bench["trained"] is False and "**random weights**" in perf
    trained = json.loads((REPO_ROOT / "benchmarks" / "bench_pipeline_demo_realistic.json").read_text())["models"]
    assert trained["demo-realistic"]["trained"] is True
    assert perf.index("on a **trained** model") < perf.index(f"{trained['demo-realistic']['summary']['speedup']:.1f}×") \
        < perf.index("**random weights**")
    assert "([demo-realistic](docs/demo.md#the-realistic-proportion-demo-model---model-demo-realistic)" in perf
    assert "## The realistic-proportion demo model (`--model demo-realistic`)\n" in \
        (DOCS / "demo.md").read_text(encoding="utf-8")
