"""The shot-detector comparison (scripts/bench_shots.py): cut matching, and the table in docs/shots.md
generated from the committed benchmarks/shot_detectors.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vqa_shap.measure import shot_detectors as sd
from vqa_shap.measure.doc_tables import replace_between

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "shot_detectors.json"
DOC = ROOT / "docs" / "shots.md"


@pytest.mark.parametrize("found, reference, matched", [
    ([10, 50], [10, 50], 2),
    ([8, 52], [10, 50], 2),           # within 2 frames either way
    ([7, 52], [10, 50], 1),           # 3 frames off: no match
    ([10, 11], [10], 1),              # one to one: a reference cut matches once
    ([11, 12], [10, 13], 2),          # the nearest free reference cut is taken
    ([], [10], 0), ([10], [], 0),
])
def test_match_cuts(found, reference, matched):
    assert sd.match_cuts(found, reference) == matched


def test_docs_table_is_generated_from_the_committed_json():
    results = json.loads(RESULT.read_text())
    text = DOC.read_text(encoding="utf-8")
    expected = replace_between(text, sd.DOC_START, sd.DOC_END, "\n".join(sd.format_table(r) for r in results))
    assert text == expected, "docs/shots.md is stale: run python scripts/bench_shots.py"


def test_committed_comparison_is_consistent():
    (result,) = json.loads(RESULT.read_text())
    rows = {r["detector"]: r for r in result["detectors"]}
    reference = rows[sd.REFERENCE]["cuts"]
    assert rows[sd.REFERENCE]["precision"] == rows[sd.REFERENCE]["recall"] == 1.0
    assert rows[sd.PACKAGE_MODULE]["cuts"] == reference  # vqa-shap's network finds the package's cuts
    for row in rows.values():
        assert row["n_cuts"] == len(row["cuts"]) and row["matched"] == sd.match_cuts(row["cuts"], reference)
        assert row["fps"] == pytest.approx(result["video"]["n_frames"] / row["detect_s"])
    assert result["video"]["n_frames"] == 5301 and result["threads"] == 1
    players = {r["layout"]: r for r in result["players"]}
    assert set(players) == {"frames"} | {f"shots:{d}" for d in rows if d != sd.PACKAGE_MODULE}
    for layout, row in players.items():
        assert row["video_players"] <= result["n_frames"] and row["evaluations"] > 0
        if layout != "frames":
            assert row["video_players"] <= rows[layout.split(":", 1)[1]]["n_cuts"] + 1
