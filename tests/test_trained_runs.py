"""The reference-free comparison of estimators on a trained game (vqa_shap.measure.trained_runs), checked
on a game whose values are known."""

import json

import numpy as np

from vqa_shap.measure.games import make_game
from vqa_shap.measure.trained_runs import _needed, format_table, load_runs, run_specs, save_json, summarise


class Memo:
    """A synthetic game behind the memo's interface (what question_game returns for a trained model)."""

    def __init__(self, game):
        self.game, self.n_players, self.scored = game, game.n_players, 0

    def __call__(self, masks):
        self.scored += len(masks)
        return self.game(masks)

    def save(self):
        pass


def test_the_seeds_spread_measures_the_error_a_reference_would_and_ratios_follow(tmp_path):
    game = make_game("higher_order", 30, seed=4)
    memo = Memo(game)
    runs = run_specs(memo, 10, "g", "higher-order test game", ["permutation", "centred_msr"], [610, 2440], range(4),
                     progress=lambda _: None)
    rows = summarise(runs)
    target = int(np.argmax(game(np.ones((1, 30), dtype=bool))[0]))
    truth = game.shapley_values[:, target]
    for run, row in zip(sorted(runs, key=lambda r: (r.spec, r.budget)), sorted(rows, key=lambda r: (r["spec"], r["budget"]))):
        actual = np.mean([np.linalg.norm(np.asarray(v) - truth) ** 2 for v in run.values]) ** 0.5 / np.linalg.norm(truth)
        assert 0.5 < row["error"] / actual < 2.0, (row, actual)
    top = {r["spec"]: r for r in rows if r["budget"] == 2440}
    assert np.isclose(top["permutation"]["compute_ratio"], 1.0)
    save_json(runs, str(tmp_path / "r.json"), "cmd", {})
    again, _ = load_runs(str(tmp_path / "r.json"))
    assert json.dumps(summarise(again)) == json.dumps(rows)
    assert "higher-order test game" in format_table(rows)


def test_an_estimator_that_reaches_shaps_error_sooner_gets_a_ratio_above_one():
    # small player effects under a swing with coalition size (what masking does to a trained model's
    # scores): shap's paths see the swing in every marginal, centred_msr takes it out
    n = 40
    effects = np.random.default_rng(0).normal(0, 0.2, n)
    swing = 3.0 * np.sin(np.arange(n + 1) / 3.0)

    class SizeSwing:
        n_players = n

        def __call__(self, masks):
            return (masks @ effects + swing[masks.sum(axis=1)])[:, None]

    rows = summarise(run_specs(Memo(SizeSwing()), 0, "s", "size swing", ["permutation", "centred_msr"], [810, 3240],
                               range(3), progress=lambda _: None))
    row = next(r for r in rows if r["spec"] == "centred_msr" and "compute_ratio" in r)
    lo, hi = row["compute_ratio_ci"]
    assert 1.0 < lo <= row["compute_ratio"] <= hi, row


def test_the_budget_to_reach_an_error_is_interpolated_log_log():
    budgets, errors = np.array([100.0, 400.0]), np.array([1.0, 0.5])
    assert np.isclose(_needed(budgets, errors, 0.5 ** 0.5), 200.0)     # error ∝ budget^-1/2 between them
    assert _needed(budgets, errors, 2.0) == 100.0                     # reached already: the smallest budget
    assert np.isnan(_needed(budgets, errors, 0.1))                     # never reached


def test_the_committed_trained_runs_table_is_its_json():
    from pathlib import Path

    from vqa_shap.measure.trained_runs import DOC_END, DOC_START

    root = Path(__file__).resolve().parents[1]
    runs, data = load_runs(str(root / "benchmarks" / "estimators_trained_runs.json"))
    rows = summarise(runs)
    assert json.dumps(rows) == json.dumps(data["summary"])
    doc = (root / "docs" / "estimators.md").read_text(encoding="utf-8")
    assert doc.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip() == format_table(rows).strip()
    # every trained game of the table: shap's sampler is the baseline, centred_msr and forest_msr beside it
    for key in {r["key"] for r in rows}:
        specs = {r["spec"] for r in rows if r["key"] == key}
        assert {"permutation", "centred_msr", "forest_msr"} <= specs, key
    readme = (root / "README.md").read_text(encoding="utf-8")
    for spec in ("centred_msr", "forest_msr"):
        for r in [r for r in rows if r["spec"] == spec and r.get("compute_ratio") and r["key"].startswith("demo-realistic")]:
            assert f"{r['compute_ratio']:.1f}×" in readme, (spec, r["key"])
    for r in [r for r in rows if r["spec"] == "forest_msr" and r.get("compute_ratio")]:
        assert f"{r['compute_ratio']:.1f}× ({r['compute_ratio_ci'][0]:.1f}–{r['compute_ratio_ci'][1]:.1f})" in readme, r["key"]
        if r["key"].startswith("demo-realistic"):
            assert f"{r['evaluation_ratio']:.1f}×" in readme, r["key"]
