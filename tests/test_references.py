"""Stored references (two independent halves, keyed by game) and the on-disk evaluation memo."""

from __future__ import annotations

import numpy as np

from vqa_shap.measure.games import make_game
from vqa_shap.measure.model_games import EvaluationMemo
from vqa_shap.measure.references import grow_reference, load_reference


class Counting:
    def __init__(self, fn):
        self.fn, self.rows = fn, 0

    def __call__(self, masks):
        self.rows += len(masks)
        return self.fn(masks)


def test_memo_scores_each_coalition_once_across_processes(tmp_path):
    game = make_game("higher_order", 12, seed=0)
    counting = Counting(game)
    memo = EvaluationMemo(counting, 12, tmp_path / "memo.npz")
    masks = np.random.default_rng(0).random((50, 12)) < 0.5
    np.testing.assert_allclose(memo(np.concatenate([masks, masks[:10]])), game(np.concatenate([masks, masks[:10]])))
    assert counting.rows == len(np.unique(masks, axis=0)) == memo.scored
    memo.save()
    again = EvaluationMemo(Counting(game), 12, tmp_path / "memo.npz")   # a new process: loads, scores nothing
    np.testing.assert_allclose(again(masks), game(masks))
    assert again.value_fn.rows == 0 and len(again) == len(memo)


def test_reference_halves_are_stored_once_with_their_own_error(tmp_path):
    game = make_game("video_like", 30, seed=1)
    memo = EvaluationMemo(game, 30, tmp_path / "memo.npz")
    ref = grow_reference(memo, 24, "video_like-30-1", "synthetic", 0, [20, 80], folder=tmp_path, log=lambda m: None)
    stored = load_reference("video_like-30-1", tmp_path)
    np.testing.assert_allclose(stored.values, ref.values, atol=1e-6)
    truth = game.shapley_values[:, 0]
    actual = np.linalg.norm(stored.values[:, 0] - truth) / np.linalg.norm(truth)
    # the halves' own-error estimate is of the size of the actual error of their mean
    assert 0.3 * actual < stored.own_error < 3 * actual
    assert stored.budget == 80 * 61 and len(stored.halves) == 2
    assert load_reference("missing", tmp_path) is None
