"""The calibration of the recorded ``relative_error`` (``vqa_shap.measure.error_calibration``): what it
measures on populations with known behaviour, and the docs table is the committed JSON's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from vqa_shap.measure.error_calibration import (CALIBRATION_END, CALIBRATION_START, PATHS, calibrate,
                                                calibration_rows, format_table, paths_for_error)

ROOT = Path(__file__).resolve().parents[1]


def test_many_independent_players_give_a_recorded_error_within_1_5x_of_the_expected_one():
    rng = np.random.default_rng(0)
    paths = rng.normal(1.0, 3.0, size=(400, 60))         # 60 players of equal, independent noise
    row = calibrate("g", "gaussian", paths, 16, reps=400)
    assert math.isclose(row.realised_rms, row.expected_error, rel_tol=0.05)
    assert row.expected_within > 0.97 and 0.9 < row.expected_median < 1.1
    assert row.realised_within > 0.9                      # many players: the realised error is near its mean
    assert row.complement_within is not None and row.complement_within > 0.95


def test_one_dominant_heavy_tailed_player_leaves_the_single_realised_error_unpredictable():
    rng = np.random.default_rng(1)
    paths = np.column_stack([rng.standard_t(3, size=400) * 20, rng.normal(1.0, 0.1, size=(400, 30))])
    row = calibrate("g", "heavy", paths, 8, reps=400)
    assert math.isclose(row.realised_rms, row.expected_error, rel_tol=0.15)
    assert row.realised_within < 0.6                      # one draw of a one-player error: about chi with 1 dof
    assert row.expected_within < 0.9                      # and the standard errors rest on 8 heavy-tailed draws
    assert row.complement_within is None or row.complement_within < 0.95


def test_paths_for_error_is_the_fewest_paths_reaching_the_expected_error():
    rng = np.random.default_rng(2)
    paths = rng.normal(0.5, 2.0, size=(50, 20))
    phi2, var = float(np.sum(paths.mean(axis=0) ** 2)), float(paths.var(axis=0).sum())
    for error in (1.0, 0.5, 0.3):
        k = paths_for_error(paths, error)
        assert math.sqrt(var / k / phi2) <= error < math.sqrt(var / (k - 1) / phi2)


def test_calibration_table_is_generated_from_the_committed_json():
    data = json.loads((ROOT / "benchmarks" / "error_calibration.json").read_text())
    doc = (ROOT / "docs" / "estimators.md").read_text()
    assert format_table(data) == doc.split(CALIBRATION_START + "\n", 1)[1].split(CALIBRATION_END, 1)[0]
    # the rows are what the stored paths give (nothing typed by hand): the first question recomputed
    first = json.loads((ROOT / data["samples"]).read_text())["questions"][:1]
    again = calibration_rows(first, data["reps"], data["seed"])
    assert again["rows"] == data["rows"][:len(PATHS)] and again["budgets"] == data["budgets"][:1]


def test_the_default_budget_and_its_help_are_the_tables():
    """--budget's help quotes the committed table's expected errors at the default and at 256, and the
    default reaches an expected error below 0.5 on every trained question."""
    from vqa_shap.explain_options import DEFAULT_BUDGET, OPTIONS

    data = json.loads((ROOT / "benchmarks" / "error_calibration.json").read_text())
    at = {b: [next(a["error"] for a in q["at_budgets"] if a["budget"] == b) for q in data["budgets"]]
          for b in (DEFAULT_BUDGET, 256)}
    assert max(at[DEFAULT_BUDGET]) < 0.5 and min(at[256]) > 1.0
    help_text = OPTIONS["budget"].help
    for b in (DEFAULT_BUDGET, 256):
        assert f"{min(at[b]):.2f}-{max(at[b]):.2f}" in help_text
    assert all(q["default_budget"] == DEFAULT_BUDGET for q in data["budgets"])
