"""Exact Shapley values by evaluating all 2^P coalitions (small P only)."""

from __future__ import annotations

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.game import Game


class ExactEstimator(Estimator):
    """All ``2^P`` coalitions; ``φ_i = Σ_{S∌i} |S|!(P−|S|−1)!/P! · (v(S∪i) − v(S))``.

    Needs ``budget >= 2^P``. Options: ``max_players`` (default 20) guards against accidental
    enumeration of huge games. Modality-level Shapley (3 players) is exact with 8 evaluations.
    """

    name = "exact"
    stochastic = False
    options = {"max_players": 20}

    def min_budget(self, n_players: int) -> int:
        return 2 ** n_players

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        n = game.n_players
        if n > self.config["max_players"]:
            raise EstimatorError(
                f"exact: {n} players means 2^{n} coalitions; the limit is max_players={self.config['max_players']}")
        codes = np.arange(2 ** n, dtype=np.int64)
        coalitions = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
        values = game(coalitions)
        sizes = coalitions.sum(axis=1)
        # weight of a coalition of size s not containing i: s!(n-s-1)!/n! = 1 / (n * C(n-1, s))
        from math import comb

        weights = np.array([1.0 / (n * comb(n - 1, s)) for s in range(n)])
        phi = np.zeros((n, values.shape[1]))
        for i in range(n):
            without = codes[~coalitions[:, i]]
            phi[i] = weights[sizes[without]] @ (values[without | (1 << i)] - values[without])
        return RawEstimate(values=phi, stderr=None,
                           contrast_stderr=None if contrasts is None else np.zeros((len(contrasts), phi.shape[1])))
