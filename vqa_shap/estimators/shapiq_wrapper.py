"""shapiq's Shapley value approximators driven through the Game."""

from __future__ import annotations

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.game import Game

#: shapiq approximators that estimate plain Shapley values, with their constructor options
APPROXIMATORS = {
    "KernelSHAP": {"pairing_trick": True},
    "UnbiasedKernelSHAP": {"pairing_trick": True},
    "SVARM": {"pairing_trick": True},
    "PermutationSamplingSV": {},
    "StratifiedSamplingSV": {},
    "OwenSamplingSV": {},
}


class ShapiqEstimator(Estimator):
    """A shapiq approximator (``approximator`` option, default ``"KernelSHAP"`` with pairing).

    shapiq games return one value per coalition, so the approximator runs once per output column
    with the same seed: it draws the same coalitions every time, and the Game's cache scores each
    coalition once for all K outputs. No standard errors; efficiency is whatever shapiq gives (the
    residual is reported).
    """

    name = "shapiq"
    options = {"approximator": "KernelSHAP"}

    def min_budget(self, n_players: int) -> int:
        return 4

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        import shapiq

        which = self.config["approximator"]
        if which not in APPROXIMATORS:
            raise EstimatorError(f"shapiq: approximator must be one of {', '.join(APPROXIMATORS)}, got {which!r}")
        n = game.n_players
        k = len(game.value_full())
        values = np.zeros((n, k))
        for col in range(k):
            approximator = getattr(shapiq, which)(n=n, random_state=seed, **APPROXIMATORS[which])

            def column(coalitions, col=col):
                coalitions = np.asarray(coalitions, dtype=bool)
                single = coalitions.ndim == 1
                out = game(coalitions.reshape(-1, n))[:, col]
                return out if not single else out.reshape(1)

            result = approximator.approximate(budget, column)
            values[:, col] = result.get_n_order_values(1)
        return RawEstimate(values=values)
