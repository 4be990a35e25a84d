"""Pairwise Shapley interactions (k-SII) on games whose interactions are known, and shapiq over the Game."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest

from vqa_shap.game import Game
from vqa_shap.interactions.index import (InteractionError, exact_interactions, interactions, mobius, modality_groups,
                                         shapiq_interactions, top_players)
from vqa_shap.interactions.record import InteractionPlayer, InteractionRecord


def pair_product_game(a: np.ndarray, b: np.ndarray, c: float = 0.0):
    """v(S) = Σ a_i x_i + Σ_{i<j} b_ij x_i x_j + c x_0 x_1 x_2, two outputs (the second: -2 v)."""
    def value(x):
        x = x.astype(float)
        v = x @ a + np.einsum("bi,ij,bj->b", x, np.triu(b, 1), x) + c * x[:, 0] * x[:, 1] * x[:, 2]
        return np.stack([v, -2 * v], axis=1)
    return value


def brute_sii(value_fn, n: int, i: int, j: int, column: int = 0) -> float:
    """SII of pair (i, j) straight from its definition (a sum over subsets; independent of the Möbius code)."""
    rest = [p for p in range(n) if p not in (i, j)]
    total = 0.0
    for size in range(len(rest) + 1):
        weight = factorial(n - size - 2) * factorial(size) / factorial(n - 1)
        for subset in combinations(rest, size):
            rows = np.zeros((4, n), dtype=bool)
            rows[:, list(subset)] = True
            rows[1, i] = rows[2, j] = rows[3, [i, j]] = True
            v = value_fn(rows)[:, column]
            total += weight * (v[3] - v[1] - v[2] + v[0])
    return total


def test_sum_of_pair_products_has_its_coefficients_as_sii():
    rng = np.random.default_rng(0)
    n = 6
    a, b = rng.normal(size=n), rng.normal(size=(n, n))
    result = exact_interactions(Game(pair_product_game(a, b), n))
    for p, (i, j) in enumerate(result.pairs):
        assert result.values[p, 0] == pytest.approx(b[i, j], abs=1e-12)
        assert result.values[p, 1] == pytest.approx(-2 * b[i, j], abs=1e-12)
    np.testing.assert_allclose(result.main[:, 0], a, atol=1e-12)  # k-SII main effects: the linear part
    upper = np.triu(b, 1)
    np.testing.assert_allclose(result.shapley[:, 0], a + (upper.sum(0) + upper.sum(1)) / 2, atol=1e-12)
    assert result.estimator == "exact" and result.evaluations == 2 ** n


def test_a_three_way_term_is_shared_as_the_sii_says():
    n, c = 4, 3.0
    result = exact_interactions(Game(pair_product_game(np.zeros(n), np.zeros((n, n)), c=c), n))
    m = result.matrix(0)
    assert m[0, 1] == pytest.approx(c / 2) and m[0, 2] == pytest.approx(c / 2) and m[1, 2] == pytest.approx(c / 2)
    assert m[0, 3] == pytest.approx(0) and m[2, 3] == pytest.approx(0)


def test_two_player_sii_is_the_second_difference():
    table = np.array([[1.0], [4.0], [2.5], [3.0]])  # codes 0, {0}, {1}, {0,1}
    result = exact_interactions(Game(lambda x: table[x[:, 0].astype(int) + 2 * x[:, 1].astype(int)], 2))
    assert result.values[0, 0] == pytest.approx(3.0 - 4.0 - 2.5 + 1.0)


def test_efficiency_symmetry_and_agreement_with_shapiq_exact_on_a_random_game():
    import shapiq

    rng = np.random.default_rng(1)
    n = 5
    table = rng.normal(size=(2 ** n, 2))
    table[:, 1] = (table[:, 1] + table[_swap01(n), 1]) / 2  # output 1 is symmetric in players 0 and 1

    def value(x):
        return table[(x.astype(int) << np.arange(n)).sum(axis=1)]

    result = exact_interactions(Game(value, n))
    assert result.efficiency_residual() < 1e-12
    full = result.main.sum(axis=0) + result.values.sum(axis=0)
    np.testing.assert_allclose(full, table[-1] - table[0], atol=1e-12)
    m = result.matrix(1)
    assert result.main[0, 1] == pytest.approx(result.main[1, 1]) and m[0, 3] == pytest.approx(m[1, 3])
    for i, j in [(0, 1), (2, 4)]:
        assert m[i, j] == pytest.approx(brute_sii(value, n, i, j, 1), abs=1e-12)
    reference = shapiq.ExactComputer(lambda c: value(c)[:, 0], n_players=n)(index="k-SII", order=2)
    np.testing.assert_allclose(result.matrix(0), reference.get_n_order_values(2), atol=1e-10)
    np.testing.assert_allclose(result.main[:, 0], reference.get_n_order_values(1), atol=1e-10)


def _swap01(n: int) -> np.ndarray:
    codes = np.arange(2 ** n)
    b0, b1 = codes & 1, (codes >> 1) & 1
    return (codes & ~3) | (b0 << 1) | b1


def test_mobius_inverts_to_the_table():
    rng = np.random.default_rng(2)
    table = rng.normal(size=(8, 1))
    m = mobius(table)
    codes = np.arange(8)
    rebuilt = np.array([m[[t for t in codes if t & s == t]].sum() for s in codes])
    np.testing.assert_allclose(rebuilt, table[:, 0], atol=1e-12)


def test_modality_interactions_take_eight_evaluations_and_match_brute_force():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(9, 3))

    def features_fn(x):  # nonlinear in the features: every order of interaction among modalities
        x = x.astype(float)
        return np.tanh(x @ w) + (x[:, :3].sum(1) * x[:, 3:6].sum(1) * x[:, 6:].mean(1))[:, None]

    modalities = ["video"] * 3 + ["question"] * 3 + ["answer"] * 3
    groups = modality_groups(modalities)
    calls = []
    game = Game(lambda x: calls.append(len(x)) or features_fn(x), 9, groups=groups, video_features=3)
    result = exact_interactions(game)
    assert game.evaluations == 8 and sum(calls) == 8

    def group_value(s):
        return features_fn(game.features_of(s))

    for p, (i, j) in enumerate(result.pairs):
        for col in range(3):
            assert result.values[p, col] == pytest.approx(brute_sii(group_value, 3, i, j, col), abs=1e-12)
    assert result.efficiency_residual() < 1e-12
    with pytest.raises(InteractionError, match="no answer"):
        modality_groups(["video", "question"])


def test_shapiq_with_the_whole_budget_is_exact_and_runs_through_the_game_cache():
    rng = np.random.default_rng(4)
    n = 5
    table = rng.normal(size=(2 ** n, 3))
    calls = []

    def value(x):
        calls.append(len(x))
        return table[(x.astype(int) << np.arange(n)).sum(axis=1)]

    game = Game(value, n)
    exact = exact_interactions(Game(value, n))
    calls.clear()
    approx = shapiq_interactions(game, 2 ** n, approximator="KernelSHAPIQ", seed=0)
    np.testing.assert_allclose(approx.values, exact.values, atol=1e-6)
    np.testing.assert_allclose(approx.main, exact.main, atol=1e-6)
    assert game.evaluations <= 2 ** n and sum(calls) == game.evaluations  # 3 outputs, each coalition once


def test_shapiq_approximator_recovers_a_second_order_game_below_full_budget():
    rng = np.random.default_rng(5)
    n = 10
    a, b = rng.normal(size=n), rng.normal(size=(n, n))
    game = Game(pair_product_game(a, b), n)
    approx = interactions(game, 300, approximator="KernelSHAPIQ", seed=1)  # 2^10 > 300: shapiq
    assert approx.estimator == "KernelSHAPIQ" and approx.evaluations <= 300
    exact = exact_interactions(Game(pair_product_game(a, b), n))
    assert np.max(np.abs(approx.values - exact.values)) < 1e-4  # regression is exact on an order-2 game (up to solver noise)
    assert approx.efficiency_residual() < 1e-4


def test_permutation_sampling_converges_towards_exact():
    rng = np.random.default_rng(6)
    n = 6
    table = rng.normal(size=(2 ** n, 1))

    def value(x):
        return table[(x.astype(int) << np.arange(n)).sum(axis=1)]

    exact = exact_interactions(Game(value, n)).values
    errors = [np.abs(shapiq_interactions(Game(value, n), budget, approximator="PermutationSamplingSII",
                                         seed=0).values - exact).mean() for budget in (200, 20000)]
    assert errors[1] < errors[0] / 3


def test_bad_arguments():
    game = Game(lambda x: x.sum(1, keepdims=True).astype(float), 3)
    with pytest.raises(InteractionError, match="valid: KernelSHAPIQ"):
        shapiq_interactions(game, 8, approximator="Nope")
    with pytest.raises(InteractionError, match="limit is 2"):
        exact_interactions(game, max_players=2)


def test_top_players_and_record_round_trip():
    phi = np.array([[0.1, 5.0], [-3.0, 0.0], [2.0, 1.0], [-2.0, 0.0]])
    assert top_players(phi, 0, 2) == [1, 2]
    assert top_players(phi, 0, 3) == [1, 2, 3]  # ties: the earlier player first, then in player order
    from vqa_shap.schema.records import Feature

    record = InteractionRecord(
        "q", "synthetic", "t", "original", "demo", "llava_onevision", "pollard2025",
        features=(Feature("frame_0", "video", input=0, time=0.0), Feature("red", "question")),
        players=(InteractionPlayer("frame_0", (0,)), InteractionPlayer("red", (1,))), pairs=((0, 1),),
        interactions=np.array([[-1.5, 0.25]]), main=np.zeros((2, 2)), value_full=(1.0, 2.0),
        value_empty=(0.0, 0.0), answer=1, prediction=1, index="k-SII", players_kind="top-k",
        phi_source="attributions", estimator="exact", budget=4, evaluations=4, seed=0)
    back = InteractionRecord.from_row(record.to_row())
    assert back.pair_value(1, 0, 0) == -1.5 and back.players == record.players and back.features == record.features
