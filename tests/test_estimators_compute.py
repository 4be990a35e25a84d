"""Compute-aware estimators (shared video orders), bounded memory for huge budgets, the default rule,
the table games and the estimator benchmark's generated docs table."""

from __future__ import annotations

import collections
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.estimators import get_estimator
from vqa_shap.estimators import permutation as permutation_module
from vqa_shap.game import Game
from vqa_shap.measure.games import TableGame, brute_force_shapley, make_game

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- shared video orders
@pytest.mark.parametrize("stratify", [True, False])
def test_shared_video_permutations_are_uniform(stratify):
    # every permutation of a group is a uniform permutation (so φ is unbiased): chi-square over all 4! orders
    est = get_estimator("shared_video", per_video=4, stratify=stratify)
    game = Game(make_game("additive", 4), 4, video_features=2)
    perms = np.concatenate(list(est._orders(game, 24_000, seed=0, chunk=4000)))
    counts = collections.Counter(map(tuple, perms.tolist()))
    assert len(counts) == 24
    expected = len(perms) / 24
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 60, chi2   # 23 degrees of freedom: P(chi2 > 60) < 1e-4


def test_shared_video_group_shares_video_parts_and_converges():
    game = make_game("video_like", 40, seed=1)
    truth = game.shapley_values
    one = Game(game, 40, video_features=list(game.video_players), batch_size=10_000)
    group = Game(game, 40, video_features=list(game.video_players), batch_size=10_000)
    get_estimator("shared_video", per_video=8).estimate(one, budget=81, seed=3)       # 1 permutation
    get_estimator("shared_video", per_video=8).estimate(group, budget=8 * 81, seed=3)  # its whole group
    # the 7 extra permutations pass through the same video parts: (almost) no new prefix
    assert group.evaluations > 6 * one.evaluations
    assert group.distinct_prefixes <= one.distinct_prefixes + 2
    errors = [np.linalg.norm(get_estimator("shared_video").estimate(
        Game(game, 40, video_features=list(game.video_players)), budget, seed).values - truth)
        for budget in (810, 81_000) for seed in range(2)]
    # unbiased: error falls like 1/sqrt(budget) (100x budget -> ~10x smaller)
    assert np.mean(errors[2:]) < np.mean(errors[:2]) / 5


# ---------------------------------------------------------------- bounded memory
class _Stop(Exception):
    pass


def _raise_on_call(masks):
    raise _Stop(masks.shape)


@pytest.mark.parametrize("name", ["permutation", "cyclic", "shared_video"])
def test_huge_budget_streams_permutations_with_bounded_memory(name):
    # a budget of 1e9 used to allocate every permutation's masks at once (tens of GiB); now the first
    # request to the game is one bounded chunk, and nothing big is allocated before it
    game = Game(_raise_on_call, 20, video_features=8)
    tracemalloc.start()
    try:
        with pytest.raises(_Stop) as info:
            get_estimator(name).estimate(game, budget=1_000_000_000, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows = info.value.args[0][0]
    assert 41 <= rows and rows * 20 <= 2 * permutation_module.MAX_CHUNK_CELLS
    assert peak < 400 * 2 ** 20, peak / 2 ** 20


@pytest.mark.parametrize("name", ["permutation", "cyclic", "shared_video"])
def test_streamed_chunks_give_the_same_estimate(monkeypatch, name):
    game = make_game("higher_order", 15, seed=4)
    contrasts = [range(0, 8), range(8, 15)]
    whole = get_estimator(name).estimate(Game(game, 15, video_features=8), 3100, seed=2, tol=1e-9, tol_groups=contrasts)
    monkeypatch.setattr(permutation_module, "MAX_CHUNK_CELLS", 3 * 31 * 15)   # 3 permutations per chunk
    chunked = get_estimator(name).estimate(Game(game, 15, video_features=8), 3100, seed=2, tol=1e-9,
                                           tol_groups=contrasts)
    np.testing.assert_array_equal(whole.values, chunked.values)
    np.testing.assert_allclose(whole.stderr, chunked.stderr, rtol=1e-9)


def test_streamed_standard_errors_equal_the_direct_formula():
    # per-permutation estimates recomputed by hand: stderr = sqrt(P/(P-1) * sum((x_p - mean)^2) / P^2)
    game = make_game("higher_order", 6, seed=0)
    est = get_estimator("permutation").estimate(Game(game, 6), budget=13 * 40, seed=5, tol=1e-12,
                                                tol_groups=[[0, 1, 2]], initial_budget=13 * 40)
    rng = np.random.RandomState(5)
    order, per_perm = np.arange(6), []
    for _ in range(40):
        rng.shuffle(order)
        x = np.zeros((6, 5))
        on = np.zeros(6, bool)
        prev = game(on[None])[0]
        for i in order:                                   # forward
            on[i] = True
            cur = game(on[None])[0]
            x[i] += (cur - prev) / 2
            prev = cur
        for i in order:                                   # backward, removing in the same order
            on[i] = False
            cur = game(on[None])[0]
            x[i] += (prev - cur) / 2
            prev = cur
        per_perm.append(x)
    per_perm = np.array(per_perm)
    np.testing.assert_allclose(est.values, per_perm.mean(axis=0), atol=1e-12)
    direct = np.sqrt(((per_perm - per_perm.mean(axis=0)) ** 2).sum(axis=0) / 40 / 39)
    np.testing.assert_allclose(est.stderr, direct, rtol=1e-8)


# ---------------------------------------------------------------- table games
def test_table_game_values_equal_brute_force():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(2 ** 7, 3))
    game = TableGame("random", 7, table, video_players=(0, 1, 2))
    np.testing.assert_allclose(game.shapley_values, brute_force_shapley(game, 7), atol=1e-12)
    coalition = np.array([[True, False, True, False, False, False, True]])
    np.testing.assert_array_equal(game(coalition)[0], table[1 + 4 + 64])
    with pytest.raises(ValueError, match="2\\^7 rows"):
        TableGame("bad", 7, table[:-1])


def test_enumerate_table_orders_requests_by_video_part():
    from vqa_shap.measure.model_games import enumerate_table

    game = make_game("video_like", 9, seed=0)
    calls = []

    def value_fn(masks):
        calls.append(masks.copy())
        return game(masks)

    table = enumerate_table(value_fn, 9, n_video=int(len(game.video_players)), chunk=64)
    table_game = TableGame("t", 9, table)
    np.testing.assert_allclose(table_game.shapley_values, game.shapley_values, atol=1e-10)
    n_video = len(game.video_players)
    assert all(len({row[:n_video].tobytes() for row in masks}) == 1 for masks in calls)


# ---------------------------------------------------------------- benchmark and its generated docs table
def test_docs_table_equals_what_the_committed_json_regenerates():
    from vqa_shap.measure.estimators import DOC_END, DOC_START, load_json, render_doc

    doc = (ROOT / "docs" / "estimators.md").read_text()
    assert DOC_START in doc and DOC_END in doc
    assert render_doc(doc, load_json(str(ROOT / "benchmarks" / "estimators.json"))) == doc


def test_committed_benchmark_covers_the_games_and_the_reference():
    from vqa_shap.measure.estimators import load_json

    result = load_json(str(ROOT / "benchmarks" / "estimators.json"))
    assert result.reference == "permutation" and result.reference_budget == 5000 and result.seeds >= 5
    games = {game for game, _ in result.keys()}
    assert {"demo_model", "video_like"} <= games
    assert all(len(p.errors) == result.seeds for p in result.points)


def test_bench_script_writes_json_and_regenerates_a_doc(tmp_path, capsys):
    import json
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "bench_estimators.py"))
    out_json, doc = tmp_path / "bench.json", tmp_path / "doc.md"
    doc.write_text("# title\n\n<!-- estimators-table:start -->\nold\n<!-- estimators-table:end -->\n\ntail\n")
    assert script["main"](["--quick", "--json", str(out_json), "--doc", str(doc)]) == 0
    printed = capsys.readouterr().out
    for name in ("shap", "permutation", "cyclic", "shared_video", "kernel"):
        assert f"| {name} |" in printed
    data = json.loads(out_json.read_text())
    points = {(p["estimator"], p["budget"]): p for p in data["points"]}
    # permutation and shap draw the same coalitions: same errors, same evaluations
    assert points[("permutation", 400)]["errors"] == pytest.approx(points[("shap", 400)]["errors"], abs=1e-12)
    assert points[("permutation", 400)]["evaluations"] == points[("shap", 400)]["evaluations"]
    for p in data["points"]:
        assert 0 <= p["error"] < 1 and p["cost"] > 0 and p["evaluations"] <= p["budget"]
    text = doc.read_text()
    assert text.startswith("# title\n") and text.endswith("\n\ntail\n") and "old" not in text
    assert "| shared_video |" in text
    # regenerating from the JSON alone changes nothing
    assert script["main"](["--regenerate-doc", "--json", str(out_json), "--doc", str(doc)]) == 0
    assert doc.read_text() == text


def test_crossing_interpolates_log_log():
    from vqa_shap.measure.estimators import _crossing

    x, at_most = _crossing([100, 10_000], [1.0, 0.01], 0.1)
    assert x == pytest.approx(1000) and not at_most
    assert _crossing([100, 1000], [0.05, 0.01], 0.1) == (100.0, True)
    assert _crossing([100, 1000], [0.5, 0.2], 0.1) == (None, False)


# ---------------------------------------------------------------- the default rule
def test_default_is_the_auto_rule():
    from vqa_shap.estimators import DEFAULT_ESTIMATOR, ESTIMATORS
    from vqa_shap.estimators.auto import (LARGE_CHOICE, LARGE_CHOICE_NO_VIDEO, SMALL_CHOICE, SMALL_CHOICE_LOW_BUDGET,
                                          SMALL_CHOICE_NO_VIDEO, SMALL_GAME, choose)

    assert DEFAULT_ESTIMATOR == "auto" and ESTIMATORS.target("default") == ESTIMATORS.target("auto")
    assert choose(18, 5000) == SMALL_CHOICE and choose(18, 5000, has_video=False) == SMALL_CHOICE_NO_VIDEO
    assert choose(SMALL_GAME, 16 * SMALL_GAME) == SMALL_CHOICE
    assert choose(SMALL_GAME, 4 * SMALL_GAME + 2) == SMALL_CHOICE_LOW_BUDGET  # too few draws for the tail
    assert choose(18, 40) == LARGE_CHOICE == ("text_flips", {"shifts": 2, "text_draws": 8})  # below the regression's minimum (4F+2)
    assert choose(SMALL_GAME + 1, 100_000) == LARGE_CHOICE
    assert choose(SMALL_GAME + 1, 100_000, has_video=False) == LARGE_CHOICE_NO_VIDEO == ("cyclic", {})
    for budget in (501, 8 * 501, 18 * 501):  # at every budget (text_flips keeps two units with fewer flip sets)
        assert choose(250, budget) == LARGE_CHOICE
    assert choose(132, 2 * 265) == LARGE_CHOICE
    assert get_estimator("default").min_budget(250) == 501 and get_estimator("default").min_budget(18) == 37


@pytest.mark.parametrize("n_players, budget", [(14, 2000), (14, 60), (40, 2000)])
def test_auto_equals_the_estimator_it_chooses(n_players, budget):
    from vqa_shap.estimators.auto import choose
    from vqa_shap.estimators.spec import format_spec

    game = make_game("video_like", n_players, seed=2)
    video = list(game.video_players)
    ours = get_estimator("auto").estimate(Game(game, n_players, video_features=video), budget, seed=3)
    name, options = choose(n_players, budget, has_video=True)
    theirs = get_estimator(name, **options).estimate(Game(game, n_players, video_features=video), budget, seed=3)
    np.testing.assert_array_equal(ours.values, theirs.values)
    np.testing.assert_array_equal(ours.stderr, theirs.stderr)
    assert ours.estimator == f"auto/{format_spec(name, options)}" and theirs.estimator == name
    assert ours.evaluations == theirs.evaluations


def test_default_rule_is_what_the_committed_benchmark_measured():
    # the default needs less compute than permutation sampling (= shap) for shap@5000's error on the
    # real-model game, and never more than cyclic on the synthetic games above F = 24 (it runs
    # text_flips with cyclic paths there; exactly cyclic without video players)
    from vqa_shap.measure.estimators import load_json

    rows = load_json(str(ROOT / "benchmarks" / "estimators.json")).to_json()["match"]
    ratio = {(r["game"], r["n_players"], r["estimator"]): r["compute_ratio"] or 0.0 for r in rows}
    games = {(g, n) for g, n, _ in ratio}
    assert ratio[("demo_model", 18, "auto")] > 2.0
    for game, n in games:
        assert ratio[(game, n, "auto")] >= ratio[(game, n, "cyclic")], (game, n)
        if n > 24:
            # the same estimate (the pilot's permutations are text_flips' own first paths, and these smooth games
            # stay with it), its compute ~1% higher: the pilot is scored in a call of its own
            assert ratio[(game, n, "auto")] == pytest.approx(ratio[(game, n, "text_flips:shifts=2,text_draws=8")],
                                                             rel=0.02), (game, n)
        if n > 24 and game == "higher_order":   # no video players
            assert ratio[(game, n, "auto")] == ratio[(game, n, "cyclic")], (game, n)


# ---------------------------------------------------------------- regression adjustment
@pytest.mark.parametrize("options", [{}, {"order": 2}, {"order": 2, "sizes": "kernel"}])
def test_regression_adjusted_is_unbiased_and_efficient(options):
    game = make_game("higher_order", 14, seed=6)
    truth = game.shapley_values
    errors = {}
    for budget in (300, 30_000):
        runs = [get_estimator("regression_adjusted", **options).estimate(Game(game, 14), budget, seed)
                for seed in range(3)]
        errors[budget] = np.mean([np.linalg.norm(e.values - truth) for e in runs])
        assert all(e.efficiency_residual < 1e-9 for e in runs)
    # unbiased: error falls like 1/sqrt(budget) (100x budget -> ~10x smaller)
    assert errors[30_000] < errors[300] / 5, errors


@pytest.mark.parametrize("options", [{"order": 0, "size_effects": True}, {"size_effects": True},
                                     {"fit": "ridge", "size_effects": True}, {"fit": "forest", "size_effects": True}])
def test_size_effects_keep_regression_adjustment_unbiased(options, monkeypatch):
    # the surrogate and size means are fitted on the other fold, so every player's mean over many seeds is
    # the truth (a forest of 10 trees: unbiasedness does not depend on how good the surrogate is)
    from vqa_shap.estimators import forest_surrogate

    monkeypatch.setitem(forest_surrogate.FOREST_SETTINGS, "n_estimators", 10)
    game = make_game("higher_order", 16, seed=3)
    truth = game.shapley_values[:, 0]
    runs = np.array([get_estimator("regression_adjusted", **options).estimate(Game(game, 16), 400, seed).values[:, 0]
                     for seed in range(200)])
    z = (runs.mean(axis=0) - truth) / (runs.std(axis=0, ddof=1) / np.sqrt(len(runs)))
    assert np.abs(z).max() < 4.5, z


def test_size_effects_remove_what_coalition_size_does_to_every_value():
    # a game whose values swing with |S| (as a trained model's scores swing with how much of the prompt is
    # masked) plus small player effects: the size part's Shapley values are (g(n) - g(0))/n for everyone
    n = 60
    rng = np.random.default_rng(0)
    effects = rng.normal(0, 0.1, n)
    swing = 5.0 * np.sin(np.arange(n + 1) / 4.0)
    game = Game(lambda masks: (masks @ effects + swing[masks.sum(axis=1)])[:, None], n)
    truth = effects + (swing[n] - swing[0]) / n
    error = {}
    for options in ({"order": 0}, {"order": 0, "size_effects": True}):
        runs = [get_estimator("regression_adjusted", **options).estimate(game, 2000, seed).values[:, 0] for seed in range(3)]
        error[bool(options.get("size_effects"))] = np.mean([np.linalg.norm(r - truth) / np.linalg.norm(truth) for r in runs])
    assert error[True] < error[False] / 3, error


def test_the_ridge_surrogate_keeps_an_additive_games_main_effects():
    # leave-one-out picks a small penalty when the main effects explain the game, so the residual left to
    # Monte Carlo is tiny; without player terms (order=0) the same design is far noisier
    game = make_game("additive", 40, seed=2)
    truth = game.shapley_values[:, 0]
    error = {spec: rel_error_of(get_estimator(spec).estimate(Game(game, 40), 2000, seed=0).values[:, 0], truth)
             for spec in ("centred_msr", "regression_adjusted:order=0,size_effects=True,text_per_video=8")}
    assert error["centred_msr"] < 0.05 < error["regression_adjusted:order=0,size_effects=True,text_per_video=8"], error


def test_a_trees_shapley_values_are_exact():
    # the closed form per leaf against the Shapley values of the fitted forest's own game, enumerated
    from vqa_shap.estimators.forest_surrogate import forest_surrogate

    n, rng = 7, np.random.default_rng(0)
    z = rng.random((300, n)) < 0.5
    values = np.c_[3.0 * z[:, 0] * z[:, 1] - z[:, 2] + rng.normal(0, 0.1, 300), z.sum(axis=1) ** 2 / 10]
    phi, predict = forest_surrogate(z.astype(float), values, seed=0)
    np.testing.assert_allclose(phi, get_estimator("exact").estimate(Game(predict, n), 2 ** n, 0).values, atol=1e-10)


def test_a_forest_surrogate_follows_what_players_do_together():
    # a trained model's answer jumps when evidence word and frame are present together: trees learn the
    # jump from the fold's coalitions, a linear surrogate cannot, so the forest leaves MSR far less residual
    n = 40
    effects = np.random.default_rng(1).normal(0, 0.05, n)
    game = Game(lambda masks: (masks @ effects + 4.0 * masks[:, 3] * masks[:, 17] * (1 - masks[:, 25]))[:, None], n)
    truth = exact_interaction_truth(effects, n)
    error = {fit: np.mean([rel_error_of(get_estimator("centred_msr", fit=fit).estimate(game, 1500, seed).values[:, 0], truth)
                           for seed in range(3)]) for fit in ("ridge", "forest", "stack")}
    assert error["forest"] < error["ridge"] / 2 and error["stack"] < error["ridge"] / 2, error


def test_the_stacked_surrogate_keeps_an_additive_games_main_effects():
    # fit=stack weighs ridge against forest by cross-validation inside the fold: on an additive game the
    # weight goes to the ridge, so it keeps what the trees alone would miss
    game = make_game("additive", 40, seed=2)
    truth = game.shapley_values[:, 0]
    error = {fit: rel_error_of(get_estimator("centred_msr", fit=fit).estimate(Game(game, 40), 2000, seed=0).values[:, 0], truth)
             for fit in ("forest", "stack")}
    assert error["stack"] < 0.05 < error["forest"], error


def exact_interaction_truth(effects, n):
    # Shapley values of masks @ effects + 4 [3 ∈ S, 17 ∈ S, 25 ∉ S]: a = 2 present, b = 1 absent
    truth = effects.copy()
    truth[[3, 17]] += 4.0 * 1 / 6      # (a-1)! b! / (a+b)! = 1/6
    truth[25] -= 4.0 * 2 / 6           # a! (b-1)! / (a+b)! = 2/6
    return truth


def rel_error_of(values, truth):
    return float(np.linalg.norm(values - truth) / np.linalg.norm(truth))


def test_pairwise_surrogate_makes_order_two_games_exact():
    # the residual of a game of order <= 2 after a (well-determined) pairwise fit is 0: exact values
    game = make_game("pairwise", 12, seed=1)
    est = get_estimator("regression_adjusted", order=2, ridge=0.0).estimate(Game(game, 12), 1500, seed=0)
    np.testing.assert_allclose(est.values, game.shapley_values, atol=1e-8)
    with pytest.raises(Exception, match="at most 32 players"):
        get_estimator("regression_adjusted", order=2).estimate(Game(make_game("additive", 40), 40), 2000)


def test_readme_summary_quotes_the_committed_benchmark():
    from vqa_shap.measure.estimators import load_json

    rows = load_json(str(ROOT / "benchmarks" / "estimators.json")).to_json()["match"]
    section = (ROOT / "README.md").read_text().split("## Performance", 1)[1]
    by_key = {(r["game"], r["n_players"], r["estimator"]): r for r in rows}
    for game, n in [("demo_model", 18), ("video_like", 250), ("video_like", 60), ("higher_order", 250)]:
        r = by_key[(game, n, "auto")]
        low, high = r["compute_ratio_ci"]
        assert f"{r['compute_ratio']:.3g}× ({low:.2g}–{high:.2g})" in section, (game, n)
        assert f"{by_key[(game, n, 'cyclic')]['compute_ratio']:.3g}×" in section, (game, n)
    best = by_key[("demo_model", 18, "shapiq")]
    assert f"{best['compute_ratio']:.3g}× ({best['compute_ratio_ci'][0]:.2g}–{best['compute_ratio_ci'][1]:.2g})" in section


def test_the_demo_game_diagnosis_in_the_docs_is_the_committed_json():
    import json

    data = json.loads((ROOT / "benchmarks" / "demo_game_variance.json").read_text())
    doc = " ".join((ROOT / "docs" / "estimators.md").read_text().split())
    s, v, fit = data["sampling"], data["per_marginal_sample_variance"], data["surrogates"]
    share = s["video_share_of_path_variance"]
    for figure in (f"the words carry {1 - share:.0%} of the path variance (the frames {share:.0%})",
                   f"({s['text_flip_variance_mean']:.2f} vs {s['text_path_variance_mean']:.2f} per sample",
                   f"simple random sampling leaves {v['simple']:.0f}, stratifying by coalition size "
                   f"{v['proportional']:.1f}, Neyman allocation over sizes {v['neyman']:.1f} "
                   f"({v['simple'] / v['neyman']:.2f}× less)",
                   f"antithetic pairs leave {v['antithetic_pair']:.1f} per pair",
                   f"the best additive fit explains {fit['order_1_explained_variance']:.0%}",
                   f"the best pairwise one {fit['order_2_explained_variance']:.0%}"):
        assert figure in doc, figure


def test_the_demo_game_prose_quotes_the_committed_estimator_table():
    import json

    rows = json.loads((ROOT / "benchmarks" / "estimators.json").read_text())["match"]
    match = {(r["game"], r["n_players"], r["estimator"]): r for r in rows}
    doc = " ".join((ROOT / "docs" / "estimators.md").read_text().split())
    section = doc.split("### The demo game (F = 18)", 1)[1].split("### Estimated errors", 1)[0]
    demo = ("demo_model", 18)
    for game, spec in [(demo, "text_flips"), (demo, "text_flips:shifts=2"), (demo, "text_flips:shifts=2,text_draws=8"),
                       (demo, "text_flips:text_draws=2"), (demo, "kernel:border=True,tail=3"),
                       (demo, "text_flips:text_draws=neyman"), (demo, "text_flips:shifts=2,text_draws=neyman"),
                       (("video_like", 60), "text_flips:text_draws=neyman"),
                       (("video_like", 60), "text_flips:shifts=2,text_draws=neyman")]:
        ratio = match[(*game, spec)]["compute_ratio"]
        assert f"{ratio:.3g}×" in section, (game, spec)
