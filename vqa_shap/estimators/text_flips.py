"""Permutation paths for every player plus cheap one-word flips for the text players.

On the trained games the variance of permutation sampling sits in the few text players (question and
option words: strong and interacting), while the compute sits in the many video players (every path
step that adds or removes a frame re-runs the video prefix). Owen's multilinear form of the Shapley
value, ``φ_i = ∫₀¹ E[v(S_q ∪ i) − v(S_q ∖ i)] dq`` with ``S_q`` holding every player independently
with probability q, lets all text players share one draw: for a video part A and a text set B (both
drawn with the same q), the coalitions A ∪ B and A ∪ (B △ {i}) for every text player i give one
unbiased sample of every text player's value, all sharing the video part A, so they cost one prefix
and T + 1 short text suffixes instead of a path. The budget goes to units of one antithetic path
(all players) and ``text_draws`` such antithetic flip sets: a fixed, data-free allocation of samples
over the two strata of players (Neyman allocation in spirit, Castro et al. 2017), so φ stays unbiased
(and exactly efficient).
"""

from __future__ import annotations

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.estimators.permutation import PermutationEstimator, path_marginals, path_masks
from vqa_shap.game import Game

__all__ = ["TextFlipsEstimator", "flip_masks", "flip_marginals"]


def flip_masks(base: np.ndarray, text: np.ndarray) -> np.ndarray:
    """``bool[c, 2, T+1, F]``: for each base coalition S (``bool[c, F]``) and its complement, the
    coalition itself then one coalition per text player (of ``text``, indices) with that player
    flipped."""
    c, n = base.shape
    sides = np.stack([base, ~base], axis=1)                                # [c, 2, F]
    out = np.repeat(sides[:, :, None, :], len(text) + 1, axis=2)           # [c, 2, T+1, F]
    t = np.arange(len(text))
    out[:, :, t + 1, text] = ~out[:, :, t + 1, text]
    return out


def flip_marginals(base: np.ndarray, text: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``[c, T, K]``: each text player's marginal contribution at S and at its complement, averaged
    (``out``: the values ``[c, 2, T+1, K]`` of :func:`flip_masks`' coalitions)."""
    sign = np.where(base[:, text], 1.0, -1.0)[:, :, None]                  # +: i in S, flip removes it
    here = sign * (out[:, 0, :1] - out[:, 0, 1:])                          # v(S ∪ i) − v(S ∖ i)
    there = -sign * (out[:, 1, :1] - out[:, 1, 1:])                        # i is in the complement iff not in S
    return (here + there) / 2.0


class TextFlipsEstimator(Estimator):
    """Units of one antithetic permutation path (``permutation``'s, same seed) and ``text_draws``
    antithetic text-flip sets (Owen's multilinear form: q stratified over the unit's draws, every
    player in S with probability q, S and its complement, each text player flipped in both).

    A video player's value is the mean of its marginals over the paths; a text player's the mean of
    its path marginal and its flip samples in each unit, averaged over units. Every sample is
    unbiased and the allocation is fixed in advance, so φ is unbiased. The text players' extra
    samples break exact efficiency only by a gap of mean zero, which each unit spreads evenly over
    all players: φ stays unbiased and is exactly efficient. A unit counts
    ``shifts · (2F+1 + 2(T+1)·text_draws)`` evaluations against the budget (T text players); a budget
    too small for two units uses fewer flip sets per path. Standard errors over units. Without video or without text players (or without room for one flip set) it
    is ``permutation`` (``cyclic`` with ``shifts=2``).

    Options:
        text_draws: text-flip sets per path.
        shifts: each shuffled order used this many times cyclically shifted, as ``cyclic`` (a unit
            is then ``shifts`` paths and ``shifts · text_draws`` flip sets).
    """

    name = "text_flips"
    options = {"text_draws": 4, "shifts": 1}

    def min_budget(self, n_players: int) -> int:
        return 2 * n_players + 1

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        n = game.n_players
        text = np.flatnonzero(~game.video_player_mask)
        draws = int(self.config["text_draws"])
        if draws < 0:
            raise EstimatorError(f"{self.name}: text_draws must be >= 0, got {draws}")
        paths_sampler = PermutationEstimator(shifts=int(self.config["shifts"]))
        shifts = paths_sampler.unit_length(game)
        # a small budget keeps at least two units (for standard errors) with fewer flip sets per path
        while draws > 0 and budget // (shifts * (2 * n + 1 + 2 * (len(text) + 1) * draws)) < 2:
            draws -= 1
        n_units = budget // (shifts * (2 * n + 1 + 2 * (len(text) + 1) * draws))
        if draws == 0 or len(text) in (0, n) or n_units < 2:
            return paths_sampler._estimate(game, budget, seed, contrasts)
        perms = np.concatenate(list(paths_sampler._orders(game, n_units * shifts, seed, n_units * shifts)))
        rng = np.random.default_rng([seed, 0x7E47])
        m = shifts * draws                                                 # flip sets per unit
        q = (np.arange(m)[None, :] + rng.random((n_units, m))) / m         # q stratified in each unit
        base = rng.random((n_units * m, n)) < q.reshape(-1, 1)
        paths = path_masks(perms).reshape(-1, n)
        out = game(np.concatenate([paths, flip_masks(base, text).reshape(-1, n)]))
        k = out.shape[1]
        marg = path_marginals(perms, out[: len(paths)].reshape(len(perms), 2 * n + 1, k))
        units = marg.reshape(n_units, shifts, n, k).sum(axis=1)           # [U, n, K] sums over the unit's paths
        flips = flip_marginals(base, text, out[len(paths):].reshape(len(base), 2, len(text) + 1, k))
        units[:, text] += flips.reshape(n_units, m, len(text), k).sum(axis=1)
        units[:, text] /= shifts * (1 + draws)
        units[:, game.video_player_mask] /= shifts
        # each unit's efficiency gap has mean zero (every sample is unbiased): spreading it evenly
        # over the players keeps φ unbiased and makes it exactly efficient
        gap = units.sum(axis=1) - (game.value_full() - game.value_empty())[None, :]
        units -= gap[:, None, :] / n
        values = units.mean(axis=0)
        stderr = units.std(axis=0, ddof=1) / np.sqrt(n_units)
        contrast_stderr = None
        if contrasts is not None:
            c = np.einsum("rn,unk->urk", contrasts, units)
            contrast_stderr = c.std(axis=0, ddof=1) / np.sqrt(n_units)
        return RawEstimate(values=values, stderr=stderr, contrast_stderr=contrast_stderr)
