"""KernelSHAP designs that spend evaluations where they are cheap or certain: the border trick
(whole size classes enumerated), tail enumeration (all settings of the last players under every drawn
coalition), and the documented default rule that uses them."""

from __future__ import annotations

import re
from math import comb
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.measure.games import make_game
from vqa_shap.estimators import get_estimator
from vqa_shap.estimators.base import EstimatorError
from vqa_shap.game import Game

ROOT = Path(__file__).resolve().parents[1]


def _recording(game):
    seen = []

    def value_fn(masks):
        seen.append(np.array(masks, dtype=bool))
        return game(masks)

    return value_fn, seen


def test_border_plan_enumerates_the_classes_the_budget_covers():
    est = get_estimator("kernel", border=True)
    assert est._border(18, 499)[0] == [1]            # 18 pairs of sizes {1, 17}; 153 of {2, 16} not yet
    assert est._border(18, 2499)[0] == [1, 2]
    assert est._border(18, 10)[0] == []
    enumerated, q = est._border(18, 2499)
    assert q[[0, 1, 15, 16]].sum() == 0 and q.sum() == pytest.approx(1.0)
    assert get_estimator("kernel")._border(18, 10 ** 6)[0] == []     # off by default


def test_border_scores_every_coalition_of_the_enumerated_sizes():
    game = make_game("higher_order", 22, seed=3)
    value_fn, seen = _recording(game)
    get_estimator("kernel", border=True).estimate(Game(value_fn, 22), 1200, seed=0)
    masks = np.unique(np.concatenate(seen), axis=0)
    sizes = masks.sum(axis=1)
    for s in (1, 21):
        assert (sizes == s).sum() == 22                              # all of them, once
    assert 0 < (sizes == 2).sum() < comb(22, 2)                      # sampled, not enumerated


@pytest.mark.parametrize("options", [{"border": True}, {"border": True, "tail": 2}, {"tail": 3}, {"poststratify": True},
                                     {"border": True, "tail": 2, "sizes": "uniform"}])
def test_designs_are_consistent_and_efficient(options):
    # importance weights right: the error falls like 1/sqrt(budget) towards the exact values
    game = make_game("higher_order", 16, seed=6)
    truth = game.shapley_values
    errors = {}
    for budget in (200, 20_000):
        runs = [get_estimator("kernel", **options).estimate(Game(game, 16, video_features=10), budget, seed)
                for seed in range(3)]
        errors[budget] = np.mean([np.linalg.norm(e.values - truth) for e in runs])
        assert all(e.efficiency_residual < 1e-9 for e in runs)
        assert all(e.evaluations <= budget for e in runs)
    assert errors[20_000] < errors[200] / 5, errors
    assert errors[20_000] / np.linalg.norm(truth) < 0.05, errors


def test_regression_adjusted_with_a_kernel_residual_converges():
    # the surrogate's exact values plus KernelSHAP on the cross-fitted residual game
    game = make_game("higher_order", 14, seed=6)
    truth = game.shapley_values
    est = {b: [get_estimator("regression_adjusted", order=2, sizes="kernel", residual="kernel")
               .estimate(Game(game, 14), b, seed) for seed in range(3)] for b in (300, 30_000)}
    err = {b: np.mean([np.linalg.norm(e.values - truth) for e in runs]) for b, runs in est.items()}
    assert err[30_000] < err[300] / 5 and all(e.efficiency_residual < 1e-9 for e in est[30_000])
    assert all(np.isfinite(e.stderr).all() for e in est[30_000])


def test_tail_scores_every_setting_of_the_last_players_under_each_head():
    game = make_game("video_like", 20, seed=2)
    value_fn, seen = _recording(game)
    get_estimator("kernel", tail=2).estimate(Game(value_fn, 20, video_features=list(game.video_players)), 600, 1)
    masks = np.unique(np.concatenate(seen[2:]), axis=0)              # after v(∅), v(all)
    tails = {}
    for row in masks:
        tails.setdefault(row[:18].tobytes(), set()).add(row[18:].tobytes())
    # ∅ and the grand coalition were scored first (cached): their heads miss that one setting
    complete = [len(t) == 4 or (not np.frombuffer(h, bool).any() or np.frombuffer(h, bool).all()) and len(t) == 3
                for h, t in tails.items()]
    assert all(complete) and len(tails) > 50


def test_tail_costs_less_per_evaluation_under_prefix_sharing():
    game = make_game("video_like", 20, seed=2)
    video = list(game.video_players)
    plain = get_estimator("kernel", border=True).estimate(Game(game, 20, video_features=video), 2000, 0)
    tail = get_estimator("kernel", border=True, tail=2).estimate(Game(game, 20, video_features=video), 2000, 0)
    assert tail.cost / tail.evaluations < 0.8 * plain.cost / plain.evaluations


def test_tail_standard_errors_cover_the_error():
    game = make_game("higher_order", 14, seed=1)
    truth = game.shapley_values
    z = []
    for seed in range(20):
        est = get_estimator("kernel", border=True, tail=2).estimate(Game(game, 14, video_features=8), 600, seed)
        z.append((est.values - truth) / est.stderr)
    z = np.concatenate(z).ravel()
    assert np.isfinite(z).all() and 0.6 < z.std() < 1.6, z.std()


def test_tail_must_leave_a_head():
    with pytest.raises(EstimatorError, match="tail must be in 0..5"):
        get_estimator("kernel", tail=6).estimate(Game(make_game("additive", 6), 6), 30, 0)


# ---------------------------------------------------------------- the documented rule
def test_rule_picks_what_the_docs_say():
    """docs/estimators.md lists examples of the rule as a table; choose() and pilot_budget() must agree
    with every row."""
    from vqa_shap.estimators.auto import choose, pilot_budget
    from vqa_shap.estimators.spec import format_spec

    doc = (ROOT / "docs" / "estimators.md").read_text()
    section = doc.split("<!-- rule-table:start -->", 1)[1].split("<!-- rule-table:end -->", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (\d+) \| (yes|no) \| `([^`]+)` \| (\d+|–) \|", section, flags=re.M)
    assert len(rows) >= 5 and any(pilot != "–" for *_, pilot in rows)
    for n, budget, video, spec, pilot in rows:
        assert format_spec(*choose(int(n), int(budget), has_video=video == "yes")) == spec, (n, budget, video)
        assert pilot_budget(int(n), int(budget), has_video=video == "yes") == (0 if pilot == "–" else int(pilot))


def test_auto_records_the_member_it_ran():
    game = make_game("video_like", 18, seed=0)
    video = list(game.video_players)
    small = get_estimator("auto").estimate(Game(game, 18, video_features=video), 2000, 0)
    assert small.estimator == "auto/kernel:border=True,tail=2"
    no_video = get_estimator("auto").estimate(Game(game, 18), 2000, 0)
    assert no_video.estimator == "auto/kernel:border=True"
    large = get_estimator("auto").estimate(Game(make_game("video_like", 40, seed=0), 40, video_features=30), 2000, 0)
    assert large.estimator == "auto/text_flips:shifts=2,text_draws=8"
    large_no_video = get_estimator("auto").estimate(Game(make_game("video_like", 40, seed=0), 40), 2000, 0)
    assert large_no_video.estimator == "auto/cyclic"


def jumps(n: int, n_video: int, seed: int = 0):
    """A rough game with video players and known values: small main effects plus twelve jumps of 2 when
    two players are present and a third absent (a trained model's answer when an evidence word and its
    frame are there and a distracting option word is not); each jump's Shapley values in closed form."""
    rng = np.random.default_rng(seed)
    effects = rng.normal(0, 0.05, n)
    triples = [tuple(rng.choice(n, 3, replace=False)) for _ in range(12)]
    truth = effects.copy()
    for a, b, c in triples:
        truth[[a, b]] += 2.0 / 6        # present: (2-1)! 1! / 3!
        truth[c] -= 2.0 * 2 / 6         # absent: 2! 0! / 3!

    def value(masks):
        return (masks @ effects + sum(2.0 * masks[:, a] * masks[:, b] * (1 - masks[:, c]) for a, b, c in triples))[:, None]
    return Game(value, n, video_features=n_video), truth


def test_auto_pilot_leaves_a_smooth_game_to_its_member():
    # the pilot's permutations are text_flips' own first paths: same coalitions, same values
    from vqa_shap.estimators.auto import pilot_budget

    game = make_game("video_like", 60, seed=0)
    assert pilot_budget(60, 2000) > 0
    runs = [get_estimator(spec).estimate(Game(game, 60, video_features=list(game.video_players)), 2000, 3)
            for spec in ("auto", "text_flips:shifts=2,text_draws=8")]
    assert runs[0].estimator == "auto/text_flips:shifts=2,text_draws=8"
    assert runs[0].evaluations == runs[1].evaluations
    np.testing.assert_allclose(runs[0].values, runs[1].values, atol=1e-12)


def test_auto_runs_forest_msr_on_a_rough_game_within_the_budget():
    from vqa_shap.estimators.auto import pilot_budget

    game, truth = jumps(40, 30)
    estimate = get_estimator("auto").estimate(game, 1500, 0)
    assert estimate.estimator == "auto/forest_msr" and estimate.evaluations <= 1500
    assert pilot_budget(40, 1500) == 2 * 81
    # below two pilots' budget no pilot runs: the large-game member as it is
    assert get_estimator("auto").estimate(jumps(40, 30)[0], 300, 0).estimator == "auto/text_flips:shifts=2,text_draws=8"


def test_autos_rough_branch_does_not_depend_on_what_the_game_scored_before():
    # an adaptive run calls auto again on the same Game: forest_msr's own rows from the stage before are
    # then in the Game's cache, and must not join its surrogate's fit (a fold would fit on its own rows)
    first = get_estimator("auto").estimate(jumps(40, 30)[0], 1500, 0)
    game = jumps(40, 30)[0]
    get_estimator("auto").estimate(game, 1200, 0)
    again = get_estimator("auto").estimate(game, 1500, 0)
    assert again.estimator == first.estimator == "auto/forest_msr"
    np.testing.assert_allclose(again.values, first.values, atol=1e-12)


def test_autos_rough_branch_is_unbiased(monkeypatch):
    # forest_msr draws its coalitions with a seed of its own, independent of the pilot whose rows join its
    # surrogate's fit: every player's mean over many seeds is the truth. The threshold is set to 0 so the
    # branch runs for every seed (the test is of the estimate, not of the choice); 10 trees for speed
    from vqa_shap.estimators import auto, forest_surrogate

    monkeypatch.setitem(forest_surrogate.FOREST_SETTINGS, "n_estimators", 10)
    monkeypatch.setattr(auto, "ROUGH_PILOT_ERROR", 0.0)
    runs = []
    for seed in range(200):
        game, truth = jumps(30, 20)
        estimate = get_estimator("auto").estimate(game, 400, seed)
        assert estimate.estimator == "auto/forest_msr"
        runs.append(estimate.values[:, 0])
    runs = np.array(runs)
    z = (runs.mean(axis=0) - truth) / (runs.std(axis=0, ddof=1) / np.sqrt(len(runs)))
    assert np.abs(z).max() < 4.5, z


# ---------------------------------------------------------------- re-measuring part of the benchmark
def test_merge_replaces_only_the_remeasured_cells():
    from vqa_shap.measure.estimators import format_tables, merge_results, run_benchmark

    kwargs = dict(seeds=2, reference_budget=200, progress=False)
    old = run_benchmark(["additive"], [6], ["kernel", "cyclic"], [100], **kwargs)
    new = run_benchmark(["additive"], [6], ["kernel:border=True"], [100], **kwargs)
    merged = merge_results(old, new)
    names = {p.estimator for p in merged.points}
    assert names == {"permutation", "kernel", "cyclic", "kernel:border=True"}
    added = [p for p in new.points if p.estimator != "permutation"]
    assert len(merged.points) == len(old.points) + len(added)       # the reference replaced, not doubled
    assert merged.meta["runs"][1]["cells"] == ["additive:6:kernel:border=True", "additive:6:permutation"]
    assert "of run 2 (2 re-measured cells)" in format_tables(merged)
    with pytest.raises(ValueError, match="different reference"):
        merge_results(old, run_benchmark(["additive"], [6], ["kernel"], [100], seeds=3, reference_budget=200,
                                         progress=False))
