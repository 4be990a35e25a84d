"""Antithetic permutation sampling, identical to shap's PermutationExplainer for the same seed."""

from __future__ import annotations

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.game import Game


class PermutationEstimator(Estimator):
    """shap's PermutationExplainer, reimplemented over the Game (the paper's estimator).

    With ``P = budget // (2F+1)`` permutations, each obtained by shuffling the previous one in place
    (from ``arange(F)``) with ``np.random.RandomState(seed)`` — the same stream shap draws from the
    global RNG after ``np.random.seed(seed)``, without touching the global RNG — every permutation
    evaluates 2F+1 coalitions: ∅, then players added one by one (forward), then removed in the same
    order (backward). φ is the mean of the 2P marginal contributions, accumulated in shap's order so
    the numbers agree to rounding. Efficiency holds exactly. Standard errors come from the P
    per-permutation estimates (forward + backward averaged). All permutations go to the Game in one
    call, so it can batch and share video prefixes across them.

    Options:
        shifts: use each shuffled order this many times, cyclically shifted by ``F/shifts`` (1 =
            shap's sampling exactly; see :class:`CyclicPermutationEstimator`).
    """

    name = "permutation"
    options = {"shifts": 1}

    def min_budget(self, n_players: int) -> int:
        return 2 * n_players + 1

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        n = game.n_players
        n_perm = budget // (2 * n + 1)
        shifts = int(self.config["shifts"])
        if shifts < 1 or shifts > n:
            raise EstimatorError(f"{self.name}: shifts must be in 1..{n}, got {shifts}")
        rng = np.random.RandomState(seed)
        order = np.arange(n)
        perms = np.empty((n_perm, n), dtype=np.int64)
        unit = np.arange(n_perm) // shifts
        for p in range(n_perm):
            if p % shifts == 0:
                rng.shuffle(order)
            # cyclic shifts of one shuffled order: each is a uniform permutation, and together they
            # spread every player's position evenly (stratification by position)
            perms[p] = np.roll(order, -((p % shifts) * n // shifts))
        rank = np.empty_like(perms)
        np.put_along_axis(rank, perms, np.broadcast_to(np.arange(n), perms.shape), axis=1)
        steps = np.arange(n + 1)
        forward = rank[:, None, :] < steps[None, :, None]              # [P, n+1, n]: first j players on
        backward = rank[:, None, :] >= steps[None, 1:, None]           # [P, n, n]: first j players off again
        masks = np.concatenate([forward, backward], axis=1).reshape(-1, n)
        out = game(masks).reshape(n_perm, 2 * n + 1, -1)
        k = out.shape[2]

        total = np.zeros((n, k))
        per_perm = np.empty((n_perm, n, k))
        for p in range(n_perm):
            fwd = out[p, 1 : n + 1] - out[p, :n]
            bwd = out[p, n : 2 * n] - out[p, n + 1 :]
            # same accumulation order as shap: forward then backward, permutation by permutation
            total[perms[p]] += fwd
            total[perms[p]] += bwd
            per_perm[p, perms[p]] = (fwd + bwd) / 2.0
        values = total / (2 * n_perm)

        # independent units: one per permutation, or per group of cyclic shifts
        n_units = int(unit[-1]) + 1 if n_perm else 0
        if n_units > 1:
            per_unit = np.zeros((n_units, n, k))
            np.add.at(per_unit, unit, per_perm)
            per_unit /= np.bincount(unit)[:, None, None]
            weight = np.bincount(unit) / n_perm          # units may be unequal (last one partial)
            centred = per_unit - values[None]
            stderr = np.sqrt((weight[:, None, None] ** 2 * centred ** 2).sum(axis=0) * n_units / (n_units - 1))
            contrast_stderr = None
            if contrasts is not None:
                c_centred = np.einsum("rn,unk->urk", contrasts, centred)
                contrast_stderr = np.sqrt((weight[:, None, None] ** 2 * c_centred ** 2).sum(axis=0)
                                          * n_units / (n_units - 1))
        else:
            stderr = np.full((n, k), np.inf)
            contrast_stderr = None if contrasts is None else np.full((len(contrasts), k), np.inf)
        return RawEstimate(values=values, stderr=stderr, contrast_stderr=contrast_stderr)


class CyclicPermutationEstimator(PermutationEstimator):
    """Antithetic permutation sampling with position stratification: every shuffled order is used
    twice, as drawn and cyclically shifted by half its length (each still a uniform permutation;
    together they place every player once in each half of the order). Unbiased, exactly efficient,
    the same evaluations-per-permutation and video-prefix reuse as ``permutation``; not identical to
    shap's sequence. Standard errors over the pairs of shifted paths."""

    name = "cyclic"
    options = {"shifts": 2}
