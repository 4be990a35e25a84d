"""Game: de-duplication, caching, batching, grouping, video ordering, cost model, validation."""

from __future__ import annotations

import numpy as np
import pytest

from vqa_shap.errors import VqaShapError
from vqa_shap.game import CostModel, Game, GameError, prefix_tree_order
from vqa_shap.measure.games import brute_force_shapley, make_game


class Recorder:
    """A value function that records every batch it is asked to score."""

    def __init__(self, fn):
        self.fn = fn
        self.batches: list[np.ndarray] = []

    def __call__(self, masks):
        self.batches.append(masks.copy())
        return self.fn(masks)

    @property
    def rows(self) -> int:
        return sum(len(b) for b in self.batches)


def linear(weights):
    weights = np.asarray(weights, dtype=float)
    return lambda masks: masks.astype(float) @ weights


def test_dedup_cache_and_order_of_results():
    rec = Recorder(linear(np.arange(8.0).reshape(4, 2)))
    game = Game(rec, 4, batch_size=64)
    coalitions = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=bool)
    out = game(coalitions)
    assert out.shape == (5, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out, coalitions.astype(float) @ np.arange(8.0).reshape(4, 2))
    assert game.evaluations == 3 and rec.rows == 3 and game.calls == 1
    assert game.n_outputs == 2
    # everything cached: no new model rows
    again = game(coalitions[::-1])
    np.testing.assert_array_equal(again, out[::-1])
    assert rec.rows == 3 and game.evaluations == 3
    # a partly new call scores only the new coalition
    game(np.array([[1, 1, 1, 1], [1, 0, 0, 0]], dtype=bool))
    assert rec.rows == 4 and game.evaluations == 4


def test_batches_never_exceed_batch_size():
    rec = Recorder(linear(np.ones((6, 1))))
    game = Game(rec, 6, batch_size=4)
    rng = np.random.default_rng(0)
    coalitions = rng.random((40, 6)) < 0.5
    distinct = len({row.tobytes() for row in coalitions})
    game(coalitions)
    assert game.evaluations == distinct == rec.rows
    assert all(len(b) <= 4 for b in rec.batches)
    assert game.calls == len(rec.batches) == -(-distinct // 4)


def test_value_full_and_empty_are_cached():
    rec = Recorder(linear([[1.0, 0.0], [2.0, 1.0], [3.0, 5.0]]))
    game = Game(rec, 3)
    np.testing.assert_allclose(game.value_full(), [6.0, 6.0])
    np.testing.assert_allclose(game.value_empty(), [0.0, 0.0])
    game.value_full(), game.value_empty()
    assert rec.rows == 2


def test_groups_expand_to_features_and_keep_ungrouped_features():
    seen = []

    def fn(masks):
        seen.append(masks.copy())
        return masks.astype(float) @ np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])

    game = Game(fn, 5, groups=[[0, 2], [1]])  # feature 3 and 4 in no group: always kept
    assert game.n_players == 2
    out = game(np.array([[True, False], [False, True], [False, False]]))
    np.testing.assert_allclose(out[:, 0], [101 + 11000, 10 + 11000, 11000])
    masks = np.concatenate(seen)
    assert masks.shape[1] == 5 and masks[:, 3].all() and masks[:, 4].all()


def test_a_request_goes_to_the_value_function_in_one_call_by_default():
    rec = Recorder(linear(np.ones((6, 1))))
    game = Game(rec, 6, video_features=3)
    coalitions = np.random.default_rng(0).random((50, 6)) < 0.5
    game(coalitions)
    assert game.calls == len(rec.batches) == 1 and rec.rows == len({r.tobytes() for r in coalitions})


def test_prefix_tree_order_walks_each_shared_prefix_once():
    seqs = [np.array(s, dtype=np.uint32) for s in ([3, 1, 2], [3, 1], [1, 2, 3, 4], [3, 0, 0, 0], [1, 2, 9], [3, 1, 2])]
    order, shared = prefix_tree_order(seqs)
    walk = [tuple(seqs[i]) for i in order]
    assert walk == sorted(walk)  # lexicographic: sequences sharing a prefix are neighbours
    assert shared == [0, 2, 0, 1, 2, 3]
    nodes = {tuple(s[:k]) for s in seqs for k in range(1, len(s) + 1)}
    # a depth-first walk runs every prefix-tree node once (the duplicate and the prefix [3, 1] run nothing new)
    assert sum(len(seqs[i]) - c for i, c in zip(order, shared)) == len(nodes)
    bools = [np.array(r) for r in ([True, False], [False, True], [False, False])]
    assert prefix_tree_order(bools) == ([2, 1, 0], [0, 1, 0])
    with pytest.raises(TypeError, match="unsigned"):
        prefix_tree_order([np.array([-1])])


def brute_force_call_cost(batch: np.ndarray, video: np.ndarray, cm: CostModel) -> float:
    """The cost model's definition, spelled out: walk in lexicographic order, charge from the first change."""
    rows = sorted(tuple(r) for r in batch)
    n_video, n_text = int(video.sum()), int((~video).sum())
    total = cm.full_cost
    for prev, row in zip(rows, rows[1:]):
        j = next(k for k in range(len(row)) if row[k] != prev[k])
        rank = int(video[:j].sum()) if video[j] else int((~video[:j]).sum())
        if video[j]:
            total += cm.step_cost + cm.prefix_cost * (n_video - rank) / n_video + cm.suffix_cost
        else:
            total += cm.step_cost + cm.suffix_cost * (n_text - rank) / n_text
    return total


def test_calls_are_in_prefix_tree_order_and_charged_what_they_rerun():
    rec = Recorder(linear(np.ones((6, 1))))
    game = Game(rec, 6, batch_size=8, video_features=3)  # first 3 features are video
    rng = np.random.default_rng(1)
    coalitions = rng.random((60, 6)) < 0.5
    game(coalitions)
    video = np.arange(6) < 3
    prefixes, cost = 0, 0.0
    for batch in rec.batches:
        assert [tuple(r) for r in batch] == sorted(tuple(r) for r in batch)
        prefixes += len({row[:3].tobytes() for row in batch})
        cost += brute_force_call_cost(batch, video, game.cost_model)
    assert len(rec.batches) > 1 and game.distinct_prefixes == prefixes
    assert game.cost == pytest.approx(cost)


def test_a_permutation_path_costs_less_than_random_coalitions():
    n = 12
    order = np.random.default_rng(2).permutation(n)
    mask, rows = np.zeros(n, bool), [np.zeros(n, bool)]
    for keep in (True, False):  # shap's antithetic path: add the players in order, then remove them
        for i in order:
            mask[i] = keep
            rows.append(mask.copy())
    path = np.array(rows)
    random_rows = np.random.default_rng(3).random((2 * n + 1, n)) < 0.5
    costs = []
    for rows in (path, random_rows):
        game = Game(linear(np.ones((n, 1))), n, video_features=4)
        game(rows)
        costs.append(game.cost / game.evaluations)
    cm = CostModel()
    assert costs[0] < costs[1] < cm.full_cost


def test_cost_without_video_counts_full_forwards_and_custom_model():
    game = Game(linear(np.ones((3, 1))), 3, cost_model=CostModel(prefix_cost=5, suffix_cost=1, full_cost=9))
    game(np.eye(3, dtype=bool))
    assert game.distinct_prefixes == 0 and game.cost == 27


def test_grouped_video_players_follow_their_features():
    game = Game(linear(np.ones((6, 1))), 6, groups=[[0, 1], [2, 3], [4, 5]], video_features=[0, 1, 2])
    np.testing.assert_array_equal(game.video_player_mask, [True, True, False])


def test_modality_shapley_is_exact_with_eight_evaluations():
    from vqa_shap.estimators import get_estimator

    test_game = make_game("video_like", 20, seed=4)   # 16 frames, 4 words
    rec = Recorder(test_game)
    modalities = [list(range(16)), [16, 17], [18, 19]]  # video, "question", "answers"
    game = Game(rec, 20, groups=modalities, video_features=16)
    est = get_estimator("exact").estimate(game, budget=8)
    assert est.evaluations == 8 and rec.rows == 8
    assert est.values.shape == (3, 5)

    def three_players(coalitions):
        return test_game(game.features_of(coalitions))

    np.testing.assert_allclose(est.values, brute_force_shapley(three_players, 3), atol=1e-12)
    assert est.efficiency_residual < 1e-12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(groups=[[0, 1], [1, 2]]), "disjoint"),
        (dict(groups=[[0, 9]]), "outside"),
        (dict(groups=[[]]), "empty"),
        (dict(batch_size=0), "batch_size"),
        (dict(video_features=[7]), "outside"),
    ],
)
def test_bad_configuration_is_reported(kwargs, message):
    with pytest.raises(GameError, match=message):
        Game(linear(np.ones((3, 1))), 3, **kwargs)


def test_bad_value_fn_output_is_reported():
    with pytest.raises(VqaShapError, match="shape"):
        Game(lambda m: np.ones((len(m) + 1, 2)), 3)(np.ones((2, 3), dtype=bool))
    with pytest.raises(GameError, match="non-finite"):
        Game(lambda m: np.full((len(m), 2), np.nan), 3)(np.ones((1, 3), dtype=bool))
    with pytest.raises(GameError, match=r"\(B, 3\)"):
        Game(linear(np.ones((3, 1))), 3)(np.ones((2, 4), dtype=bool))
    game = Game(lambda m: np.ones((len(m), 1 + int(m[0, 0]))), 3)
    game(np.zeros((1, 3), dtype=bool))
    with pytest.raises(GameError, match="outputs"):
        game(np.ones((1, 3), dtype=bool))


def test_one_dimensional_scores_mean_one_output():
    game = Game(lambda m: m.sum(axis=1).astype(float), 4)
    assert game(np.ones((2, 4), dtype=bool)).shape == (2, 1)
