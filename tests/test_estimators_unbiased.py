"""The variance-reduced estimators (text flips, learned control variate) are unbiased: the mean of
many independent estimates converges to the analytic Shapley values of games with known values."""

from __future__ import annotations

import numpy as np
import pytest

from vqa_shap.measure.games import make_game
from vqa_shap.estimators import get_estimator
from vqa_shap.estimators.base import EstimatorError
from vqa_shap.estimators.text_flips import allocate_flips, flip_marginals, flip_masks
from vqa_shap.game import Game
from vqa_shap.measure.games import Additive, TestGame, TwoBlock


def _mean_and_stderr(name, game, n_video, budget, seeds, **options):
    runs = np.array([get_estimator(name, **options).estimate(Game(game, game.n_players, video_features=n_video),
                                                            budget, seed).values for seed in range(seeds)])
    return runs.mean(axis=0), runs.std(axis=0, ddof=1) / np.sqrt(seeds), runs


# higher-order interactions between frames and words: no estimator here is exact on them
HIGHER_ORDER = ("higher_order", 10, 5, 0.05)       # (family, F, video players, noise of one estimate)
# frames gated by words: there the pilot of text_draws="neyman" picks 0 to 3 flip sets per path
# (depending on the seed), so the test covers a data-dependent allocation
VIDEO_LIKE = ("video_like", 12, 10, 0.003)


@pytest.mark.parametrize("name, options, seeds, budget, family", [
    ("text_flips", {"text_draws": 3}, 300, 4 * (2 * 10 + 1) + 3 * 2 * 5 * 4, HIGHER_ORDER),
    ("text_flips", {"text_draws": "neyman"}, 300, 800, VIDEO_LIKE),
    # the per-player allocation varies by seed here (test_neyman_flips_allocation_depends_on_the_pilot)
    ("neyman_flips", {}, 300, 1000, VIDEO_LIKE),
    ("neyman_flips", {"shifts": 2}, 300, 1500, HIGHER_ORDER),
    ("control_variate", {"steps": 60, "surrogate_paths": 400, "hidden": 4}, 60, 4 * (2 * 10 + 1), HIGHER_ORDER),
])
def test_mean_of_estimates_is_the_shapley_value(name, options, seeds, budget, family):
    kind, n, n_video, noise = family
    game = make_game(kind, n, n_outputs=2, seed=4) if kind == "higher_order" else make_game(kind, n, seed=1)
    truth = game.shapley_values
    mean, se, runs = _mean_and_stderr(name, game, n_video, budget, seeds, **options)
    single_error = np.sqrt(np.mean((runs - truth) ** 2))
    assert single_error > noise                                 # one estimate is visibly noisy...
    z = np.abs(mean - truth) / se
    assert z.max() < 4.5, (z.max(), np.abs(mean - truth).max())  # ...their mean has no bias
    assert np.sqrt(np.mean((mean - truth) ** 2)) < single_error / 4


def test_text_flips_with_no_draws_is_permutation_and_its_paths_are_permutations():
    game = make_game("video_like", 20, seed=1)
    a = get_estimator("text_flips", text_draws=0).estimate(Game(game, 20, video_features=16), 400, 3)
    b = get_estimator("permutation").estimate(Game(game, 20, video_features=16), 400, 3)
    np.testing.assert_array_equal(a.values, b.values)


def test_text_flips_spends_less_compute_than_permutation_for_the_same_error_on_a_video_like_game():
    errors, costs = {}, {}
    for name in ("permutation", "text_flips"):
        e, c = [], []
        for seed in range(6):
            game = make_game("video_like", 60, seed=seed)
            g = Game(game, 60, video_features=list(game.video_players))
            est = get_estimator(name).estimate(g, 3000, seed)
            e.append(np.linalg.norm(est.values[:, 0] - game.shapley_values[:, 0]) / np.linalg.norm(game.shapley_values[:, 0]))
            c.append(est.cost)
        errors[name], costs[name] = np.mean(e), np.mean(c)
        assert est.efficiency_residual < 1e-9
    # error^2 x compute: the inverse efficiency of an unbiased estimator
    assert errors["text_flips"] ** 2 * costs["text_flips"] < 0.8 * errors["permutation"] ** 2 * costs["permutation"]


def test_neyman_draws_follow_the_variance_and_cost_of_the_two_strata():
    from vqa_shap.estimators.text_flips import neyman_draws

    kw = dict(video_var=0.0, text_path_var=1.0, text_flip_var=1.0, candidates=range(9))
    # text carries all the variance: flip sets cheaper than a path pay at any number, dearer never
    assert neyman_draws(path_cost=10.0, flip_cost=4.0, **kw) == 8
    assert neyman_draws(path_cost=10.0, flip_cost=12.0, **kw) == 0
    # text without variance: nothing to buy
    assert neyman_draws(video_var=1.0, text_path_var=0.0, text_flip_var=0.0, path_cost=1.0, flip_cost=0.1,
                        candidates=range(9)) == 0
    # video variance makes every unit pay for a path: an interior optimum, by hand
    # (1 + 1/(1+d)) (10 + d) = 20, 16.5, 16.0, 16.25, 16.8 for d = 0..4
    assert neyman_draws(video_var=1.0, text_path_var=1.0, text_flip_var=1.0, path_cost=10.0, flip_cost=1.0,
                        candidates=range(9)) == 2
    assert neyman_draws(video_var=1.0, text_path_var=1.0, text_flip_var=1.0, path_cost=10.0, flip_cost=1.0,
                        candidates=[0, 1]) == 1


def test_text_flips_neyman_is_efficient_and_refuses_bad_draws():
    game = make_game("video_like", 30, seed=2)
    est = get_estimator("text_flips:text_draws=neyman").estimate(Game(game, 30, video_features=24), 3000, 1)
    assert est.efficiency_residual < 1e-9 and np.all(np.isfinite(est.stderr)) and est.evaluations <= 3000
    with pytest.raises(EstimatorError, match="text_draws"):
        get_estimator("text_flips", text_draws="many").estimate(Game(game, 30, video_features=24), 3000, 1)


def test_neyman_flips_allocation_depends_on_the_pilot():
    kind, n, n_video, _ = VIDEO_LIKE
    game = make_game(kind, n, seed=1)
    allocations = {tuple(get_estimator("neyman_flips").allocation(Game(game, n, video_features=n_video), 1000, seed).flips)
                   for seed in range(20)}
    assert len(allocations) > 3, allocations       # the unbiasedness test above covers many allocations
    assert any(max(a) > 1 for a in allocations)    # and nested flip sets (players in only some of them)


def test_allocate_flips_follows_each_players_variance_and_cost():
    # player 0 has variance and cheap flips, player 1 variance and dear flips, player 2 no variance
    path_var, flip_var, flip_cost = np.array([4.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0]), np.array([1.0, 100.0, 1.0])
    flips = allocate_flips(path_var, flip_var, flip_cost, path_cost=10.0, base_cost=0.0, max_flip_coalitions=1000)
    # by hand: (1 + (4 + n)/(1 + n)^2)(10 + n) = 50, 24.75, 20, 18.69, 18.48, 18.75 for n = 0..5
    assert flips.tolist() == [4, 0, 0]
    # the cap on the flip sets' coalitions (2m + 2 Σ n_i) binds
    assert allocate_flips(path_var, flip_var, flip_cost, 10.0, 0.0, max_flip_coalitions=6).tolist() == [1, 0, 0]
    # the base pair of each flip set is paid once per set: dear enough, it buys fewer
    assert allocate_flips(path_var, flip_var, flip_cost, 10.0, 5.0, max_flip_coalitions=1000)[0] < 4
    # flips dearer than a path buy nothing; no variance buys nothing
    assert not allocate_flips(np.array([4.0, 1.0]), np.array([4.0, 1.0]), np.full(2, 50.0), 10.0, 0.0, 1000).any()
    assert not allocate_flips(np.zeros(3), np.zeros(3), np.full(3, 0.1), 10.0, 1.0, 1000).any()
    # a base pair that no single flip repays is still bought when many flips share it: 20 players of
    # path variance 1 and flip variance 1/4; one flip alone: (19 + 5/16)(1 + 1 + 0.01) = 38.8 > 20 · 1,
    # one flip each: 20 · 5/16 · (1 + 1 + 0.2) = 13.75 < 20
    many = allocate_flips(np.ones(20), np.full(20, 0.25), np.full(20, 0.01), path_cost=1.0, base_cost=1.0,
                          max_flip_coalitions=1000)
    assert many.min() > 0


def _one_frame_game(n=30, n_video=24, frame=5, seed=0):
    """Weak additive players, and one frame whose value swings with how many of the other frames are
    present (a cosine of their share, two periods: neither antithetic nor half-shifted orders cancel
    it): nearly all the path variance is that frame's (another frame's marginal is a small step of the
    cosine; the words' are constant)."""
    rng = np.random.default_rng(seed)
    others = tuple(i for i in range(n_video) if i != frame)
    swing = 2.0 * np.cos(4 * np.pi * np.arange(len(others) + 1) / len(others))
    table = np.stack([np.zeros_like(swing), swing])[:, :, None] * np.array([1.0, -0.5])[None, None, :]
    return TestGame("one_frame", n, 2, [Additive(0.1 * rng.normal(size=(n, 2))), TwoBlock((frame,), others, table)],
                    video_players=tuple(range(n_video)))


def test_neyman_flips_puts_the_most_flips_on_the_high_variance_frame():
    game = _one_frame_game()
    for seed in range(5):
        # the pilot's own per-player variances (no shrinking towards the frames' mean)
        allocation = get_estimator("neyman_flips", prior_samples=0).allocation(Game(game, 30, video_features=24), 6000,
                                                                              seed)
        assert allocation.path_variance.argmax() == 5
        others = np.delete(allocation.flips, 5)
        assert allocation.flips[5] > 0 and allocation.flips[5] > others.max(), allocation.flips
        assert not allocation.flips[24:].any()      # the words' samples do not vary: nothing to buy
        # a flip of that frame re-runs the video prefix from it on: dearer than later frames' and words'
        assert allocation.flip_cost[5] > allocation.flip_cost[6:].max()
    # and it pays: at the same budget, less error than text_flips, whose flips never touch that frame
    truth = game.shapley_values[:, 0]
    errors = {name: np.mean([np.sum((get_estimator(name).estimate(Game(game, 30, video_features=24), 6000, seed)
                                     .values[:, 0] - truth) ** 2) for seed in range(20)])
              for name in ("neyman_flips", "text_flips")}
    assert errors["neyman_flips"] < errors["text_flips"] / 2, errors


def test_neyman_flips_is_efficient_and_never_exceeds_its_budget():
    game = make_game("video_like", 30, seed=2)
    est = get_estimator("neyman_flips").estimate(Game(game, 30, video_features=24), 3000, 1)
    assert est.efficiency_residual < 1e-9 and np.all(np.isfinite(est.stderr)) and est.evaluations <= 3000
    # every budget, from the smallest (text_flips' fallback, then permutation's) up; also with shifts
    for shifts in (1, 2):
        for budget in (61, 62, 200, 400, 523, 524, 900, 1234, 2000, 2999, 5001):
            if budget < 61 * shifts:
                continue
            spec = f"neyman_flips:shifts={shifts}"
            counted = Game(game, 30, video_features=24)
            est = get_estimator(spec).estimate(counted, budget, budget)
            assert est.evaluations == counted.evaluations <= budget, (spec, budget, est.evaluations)
            assert est.efficiency_residual < 1e-9
    for bad in ({"pilot_share": 1.0}, {"prior_samples": -1}):
        with pytest.raises(EstimatorError, match="pilot_share must be between 0 and 1 and prior_samples >= 0"):
            get_estimator("neyman_flips", **bad).estimate(Game(game, 30, video_features=24), 3000, 1)
    # without video players every flip costs a full forward, and the allocation still runs
    plain = make_game("higher_order", 10, seed=1)
    allocation = get_estimator("neyman_flips").allocation(Game(plain, 10), 2000, 0)
    assert allocation is not None and np.all(allocation.flip_cost == 2 * Game(plain, 10).cost_model.full_cost)


def test_flip_marginals_are_the_marginal_contributions_at_the_set_and_its_complement():
    game = make_game("higher_order", 7, n_outputs=1, seed=0)
    rng = np.random.default_rng(0)
    base = rng.random((5, 7)) < 0.5
    text = np.array([4, 5, 6])
    out = game(flip_masks(base, text).reshape(-1, 7)).reshape(5, 2, 4, 1)
    got = flip_marginals(base, text, out)
    for c in range(5):
        for t, i in enumerate(text):
            with_i, without = base[c].copy(), base[c].copy()
            with_i[i], without[i] = True, False
            here = game(with_i[None])[0] - game(without[None])[0]
            comp = ~base[c]
            with_c, without_c = comp.copy(), comp.copy()
            with_c[i], without_c[i] = True, False
            there = game(with_c[None])[0] - game(without_c[None])[0]
            np.testing.assert_allclose(got[c, t], (here + there) / 2)


def test_trained_game_table_is_generated_from_the_committed_json():
    import json
    from pathlib import Path

    from vqa_shap.measure.sample_efficiency import DOC_END, DOC_START, QuestionSamples, format_table, summary

    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "benchmarks" / "estimators_trained.json").read_text())
    doc = (root / "docs" / "estimators.md").read_text()
    assert format_table(data["summary"]) == doc.split(DOC_START + "\n", 1)[1].split(DOC_END, 1)[0]
    # the summaries are what the stored samples give (nothing typed by hand)
    for stored, question in zip(data["summary"], data["questions"]):
        samples = QuestionSamples(**{k: tuple(map(tuple, v)) if k in ("paths", "flips") else v
                                     for k, v in question.items()})
        again = summary(samples)
        assert again["ratios"] == stored["ratios"] and again["text_variance_share"] == stored["text_variance_share"]
        assert again["allocation_gain_video"] == stored["allocation_gain_video"] >= 1.0
        if stored["key"].startswith("demo-long_"):
            # the default's flips pay on the long-video game: more than 1.5x less compute, CI above 1
            four = next(r for r in again["ratios"] if r["draws"] == 4)
            assert four["ratio"] > 1.5 and four["ci"][0] > 1.0


def test_relative_error_estimates_the_actual_error_and_target_error_stops_below_it():
    game = make_game("video_like", 40, seed=3)
    truth = game.shapley_values
    ratios = []
    for seed in range(20):
        est = get_estimator("text_flips").estimate(Game(game, 40, video_features=list(game.video_players)), 4000, seed)
        c = int(np.argmax(est.value_full))
        actual = np.linalg.norm(est.values[:, c] - truth[:, c]) / np.linalg.norm(truth[:, c])
        ratios.append(est.relative_error / actual)
    # the estimate tracks the actual error: right on average (root mean square), within 2x for most
    assert 0.7 < np.sqrt(np.mean(np.square(ratios))) < 1.5, ratios
    assert np.mean((np.array(ratios) > 0.5) & (np.array(ratios) < 2.0)) >= 0.7, ratios
    exact = get_estimator("exact").estimate(Game(make_game("additive", 6), 6), 64)
    assert exact.relative_error == 0.0
    g = Game(game, 40, video_features=list(game.video_players))
    est = get_estimator("permutation").estimate(g, 40_000, 0, target_error=0.05)
    assert est.converged and est.relative_error < 0.05 and est.evaluations < 40_000
    capped = get_estimator("permutation").estimate(Game(game, 40, video_features=30), 400, 0, target_error=1e-6)
    assert capped.converged is False and capped.relative_error > 1e-6
