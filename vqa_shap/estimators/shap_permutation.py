"""shap's own PermutationExplainer driven through the Game (for parity runs)."""

from __future__ import annotations

import numpy as np

from vqa_shap.estimators.base import Estimator, RawEstimate
from vqa_shap.game import Game


class ShapPermutationEstimator(Estimator):
    """Calls ``shap.PermutationExplainer`` exactly as the paper does (function masker
    ``mask * x`` on a row of ones, identity link, ``max_evals = budget``, ``seed``), with the Game as
    the model. shap seeds the *global* NumPy RNG; its state is saved and restored around the call.
    No standard errors (shap's ``error_bounds`` are per-marginal spreads, not standard errors).
    """

    name = "shap"

    def min_budget(self, n_players: int) -> int:
        return 2 * n_players + 1

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        import shap

        n = game.n_players

        def masker(mask, x):
            return (mask * x)[None, :]

        def model(rows):
            return game(np.asarray(rows) > 0.5)

        state = np.random.get_state()
        try:
            explainer = shap.Explainer(model, masker, algorithm="permutation", seed=seed)
            explanation = explainer(np.ones((1, n)), max_evals=budget, batch_size=game.batch_size or 2 * n + 1,
                                    silent=True)  # None: a whole permutation per call
        finally:
            np.random.set_state(state)
        values = np.asarray(explanation.values[0], dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        return RawEstimate(values=values)
