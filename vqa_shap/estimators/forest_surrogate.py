"""A tree-ensemble surrogate of a game and its exact Shapley values.

A trained model's scores jump with *which* words and frames are present together, which no linear
surrogate follows. Regression trees on the coalition bits do: each leaf is reached by the coalitions
that contain the players its path saw present (A) and lack those it saw absent (B), so a tree is a sum
of games ``value · [A ⊆ S, B ∩ S = ∅]`` whose Shapley values are known in closed form (for i ∈ A,
``(a−1)! b! / (a+b)!``; for i ∈ B, ``−a! (b−1)! / (a+b)!``, times the leaf's value; Witter, Liu &
Musco 2025 use TreeSHAP for the same reason). Used by ``regression_adjusted:fit=forest``.
"""

from __future__ import annotations

import numpy as np

#: the forest's settings (fitted on one fold of a few hundred to a few thousand coalitions)
FOREST_SETTINGS = {"n_estimators": 100, "min_samples_leaf": 3, "max_features": 0.3}


def forest_surrogate(z: np.ndarray, values: np.ndarray, seed: int):
    """Fit extremely randomised trees to ``values [R, K]`` on coalitions ``z [R, n]``.

    Returns ``(phi [n, K], predict)``: the forest's exact Shapley values as a game over the players
    (present = 1, absent = 0) and its prediction for coalitions ``[B, n] -> [B, K]``."""
    from sklearn.ensemble import ExtraTreesRegressor

    single = values.shape[1] == 1   # sklearn wants a 1-d target for one output
    forest = ExtraTreesRegressor(random_state=seed, **FOREST_SETTINGS).fit(z > 0.5, values[:, 0] if single else values)
    n, k = z.shape[1], values.shape[1]
    phi = np.zeros((n, k))
    for tree in forest.estimators_:
        phi += tree_shapley(tree.tree_, n, k)
    phi /= len(forest.estimators_)

    def predict(at):
        return forest.predict(np.asarray(at) > 0.5).reshape(len(at), k)

    return phi, predict


def tree_shapley(tree, n: int, k: int) -> np.ndarray:
    """``[n, K]``: the exact Shapley values of one fitted sklearn regression tree as a game over
    ``n`` binary players (a split sends absent players left, present ones right).

    A player is split at most once on a path (sklearn does not split a feature constant in a node), so
    a leaf's A and B are counted on the way down; each split on player f then adds the right subtree's
    leaves' A-coefficients and subtracts the left subtree's B-coefficients, summed bottom-up."""
    from scipy.special import gammaln

    left, right, feature = tree.children_left, tree.children_right, tree.feature
    value = tree.value.reshape(len(left), -1)[:, :k]
    present, absent = np.zeros(len(left), dtype=np.int64), np.zeros(len(left), dtype=np.int64)
    levels, frontier = [], np.array([0])
    while frontier.size:
        frontier = frontier[left[frontier] != -1]           # the internal nodes of this depth
        levels.append(frontier)
        present[left[frontier]], absent[left[frontier]] = present[frontier], absent[frontier] + 1
        present[right[frontier]], absent[right[frontier]] = present[frontier] + 1, absent[frontier]
        frontier = np.concatenate([left[frontier], right[frontier]])
    leaf, a, b = left == -1, present.astype(float), absent.astype(float)
    with np.errstate(invalid="ignore"):
        coef_a = np.where(leaf & (a > 0), np.exp(gammaln(np.maximum(a, 1)) + gammaln(b + 1) - gammaln(a + b + 1)), 0.0)
        coef_b = np.where(leaf & (b > 0), np.exp(gammaln(a + 1) + gammaln(np.maximum(b, 1)) - gammaln(a + b + 1)), 0.0)
    sum_a, sum_b = coef_a[:, None] * value, coef_b[:, None] * value
    for nodes in reversed(levels):                           # children before parents
        sum_a[nodes] = sum_a[left[nodes]] + sum_a[right[nodes]]
        sum_b[nodes] = sum_b[left[nodes]] + sum_b[right[nodes]]
    internal = np.nonzero(~leaf)[0]
    phi = np.zeros((n, k))
    np.add.at(phi, feature[internal], sum_a[right[internal]] - sum_b[left[internal]])
    return phi
