"""The reference-free comparison of estimators on a trained game (vqa_shap.measure.trained_runs), checked
on a game whose values are known."""

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
    lo, hi = top["centred_msr"]["compute_ratio_ci"]
    assert lo <= top["centred_msr"]["compute_ratio"] <= hi
    save_json(runs, str(tmp_path / "r.json"), "cmd", {})
    again, _ = load_runs(str(tmp_path / "r.json"))
    assert summarise(again) == rows
    assert "higher-order test game" in format_table(rows)


def test_the_budget_to_reach_an_error_is_interpolated_log_log():
    budgets, errors = np.array([100.0, 400.0]), np.array([1.0, 0.5])
    assert np.isclose(_needed(budgets, errors, 0.5 ** 0.5), 200.0)     # error ∝ budget^-1/2 between them
    assert _needed(budgets, errors, 2.0) == 100.0                     # reached already: the smallest budget
    assert np.isnan(_needed(budgets, errors, 0.1))                     # never reached
