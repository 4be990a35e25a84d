"""The README's Python examples run as written (the text is read from README.md, not copied here).

Every ``python`` block must be covered by a test below, so a new example fails this file until it is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

README = REPO_ROOT / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def _block(lang: str, marker: str) -> str:
    found = [b for b in _blocks(lang) if marker in b]
    assert len(found) == 1, f"README.md: {len(found)} {lang} blocks contain {marker!r} (expected 1)"
    return found[0]


def _run(code: str, namespace: dict | None = None) -> dict:
    namespace = {"__name__": "__readme__"} if namespace is None else namespace
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


#: A line that identifies each self-contained Python example.
SAMPLE_VARIANT = 'get_builder("egoschema").build(SAMPLE_DIR'
TINY_LOADER = 'resolve_model("tiny-random/llava_onevision")'
SHAPLEY_API = "vqa_shap.shapley(value_fn"
SYNTHETIC = 'generate_source("synthetic_src"'
#: The example that needs the paper-tables commands (a bash block) run first.
PAPER_EXPORT = 'load_dataset("paper_attributions"'


def test_every_python_example_is_covered():
    markers = (SAMPLE_VARIANT, TINY_LOADER, SHAPLEY_API, SYNTHETIC, PAPER_EXPORT)
    assert len(_blocks("python")) == len(markers)
    for marker in markers:
        _block("python", marker)


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


def test_paper_tables_commands_and_export_example(pollard_dir, tmp_path, monkeypatch):
    """The bash block that imports the published tables, then the export example: byte-equal CSVs."""
    # the README runs from a checkout with ../shared beside it
    work = tmp_path / "checkout"
    work.mkdir()
    (tmp_path / "shared").symlink_to(pollard_dir.parent.parent, target_is_directory=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-c", _block("bash", "vqa-shap import-paper")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.chdir(work)
    _run(_block("python", PAPER_EXPORT))
    source = pollard_dir / "shapley" / "internvideo" / "mvbench"
    exported = sorted((work / "exported").iterdir())
    assert [p.name for p in exported] == sorted(p.name for p in source.glob("*_5000_joint.csv"))
    for path in exported:
        assert path.read_bytes() == (source / path.name).read_bytes(), path.name
