"""The interactions study: README/docs tables equal the committed JSON; the script runs on the demo model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import script_main
from vqa_shap.measure.interactions import DOC_END, DOC_START, QUANTITIES, key_word, render_doc, summarise

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "interactions.json"


@pytest.mark.parametrize("page", ["README.md", "docs/interactions.md"])
def test_tables_equal_what_the_committed_json_regenerates(page):
    text = (ROOT / page).read_text()
    assert DOC_START in text and DOC_END in text
    data = json.loads(DATA.read_text())
    assert render_doc(text, data) == text
    assert "python scripts/bench_interactions.py --json benchmarks/interactions.json" in text


def test_committed_summary_is_the_summary_of_its_questions():
    data = json.loads(DATA.read_text())
    assert json.loads(json.dumps(summarise(data["questions"]))) == data["summary"]
    settings = data["settings"]
    assert len(data["questions"]) == settings["n_questions"] * len(settings["seeds"])
    assert set(QUANTITIES) <= set(data["summary"]) and len(settings["loadavg"]) == 3


def test_key_word_names_what_to_look_for():
    from vqa_shap.schema.records import Question

    frames = [None, {"shape": "square", "colour": "red"}]
    base = dict(qid="q", benchmark="synthetic", question="?", options=("a", "b"), answer=0)
    assert key_word(Question(task="colour_of_shape", extra={"evidence_frames": [1], "frames": frames}, **base)) == "square"
    assert key_word(Question(task="shape_of_colour", extra={"evidence_frames": [1], "frames": frames}, **base)) == "red"
    assert key_word(Question(task="shape_shown", extra={"evidence_frames": [1], "frames": frames}, **base)) is None


def test_script_writes_json_and_regenerates_a_doc(tmp_path):
    out, doc = tmp_path / "inter.json", tmp_path / "doc.md"
    doc.write_text(f"# t\n\n{DOC_START}\nold\n{DOC_END}\n")
    main = script_main("bench_interactions.py")
    assert main(["--questions", "2", "--seeds", "3", "--approximator-budgets", "512", "--approximator-seeds", "0",
                 "--json", str(out), "--doc", str(doc)]) == 0
    data = json.loads(out.read_text())
    rows = data["questions"]
    assert len(rows) == 2 and all(r["evaluations"] <= 512 + 8 for r in rows)
    # shapiq with the whole 2^9 budget reproduces the exact values (through the Game's cache)
    assert all(r["approx_error"]["512"] < 1e-4 for r in rows)
    text = doc.read_text()
    assert "old" not in text and "| video × question (modality groups) | 2 |" in text
    doc.write_text(f"# t\n\n{DOC_START}\n{DOC_END}\n")
    assert main(["--regenerate-doc", "--json", str(out), "--doc", str(doc)]) == 0
    assert doc.read_text() == text
