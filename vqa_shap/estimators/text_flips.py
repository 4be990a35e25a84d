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

__all__ = ["TextFlipsEstimator", "flip_masks", "flip_marginals", "neyman_draws"]


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
    too small for two units uses fewer flip sets per path. Standard errors over units. Without video
    or without text players (or without room for one flip set) it is ``permutation`` (``cyclic`` with
    ``shifts=2``).

    Options:
        text_draws: text-flip sets per path, or ``"neyman"``: chosen from a pilot (:meth:`_neyman`).
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
        paths_sampler = PermutationEstimator(shifts=int(self.config["shifts"]))
        shifts = paths_sampler.unit_length(game)
        draws = self.config["text_draws"]
        if draws == "neyman":
            return self._neyman(game, budget, seed, contrasts, text, paths_sampler)
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 0:
            raise EstimatorError(f"{self.name}: text_draws must be an integer >= 0 or 'neyman', got {draws!r}")
        # a small budget keeps at least two units (for standard errors) with fewer flip sets per path
        while draws > 0 and budget // _unit_evaluations(n, len(text), shifts, draws) < 2:
            draws -= 1
        n_units = budget // _unit_evaluations(n, len(text), shifts, draws)
        if draws == 0 or len(text) in (0, n) or n_units < 2:
            return paths_sampler._estimate(game, budget, seed, contrasts)
        units = _units(*self._draw(game, paths_sampler, text, n_units, draws, seed)[:2], game, text, shifts, draws)
        return _mean_of_units([(units, 1.0)], contrasts)

    def _draw(self, game: Game, paths_sampler: PermutationEstimator, text: np.ndarray, n_units: int, draws: int,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Score ``n_units`` units: ``(path marginals [U·shifts, F, K], flip marginals [U·shifts·draws,
        T, K], path coalitions, flip coalitions)``."""
        n = game.n_players
        shifts = paths_sampler.unit_length(game)
        perms = np.concatenate(list(paths_sampler._orders(game, n_units * shifts, seed, n_units * shifts)))
        rng = np.random.default_rng([seed, 0x7E47])
        m = shifts * draws                                                 # flip sets per unit
        q = (np.arange(m)[None, :] + rng.random((n_units, m))) / m         # q stratified in each unit
        base = rng.random((n_units * m, n)) < q.reshape(-1, 1)
        paths = path_masks(perms).reshape(-1, n)
        flipped = flip_masks(base, text).reshape(-1, n)
        out = game(np.concatenate([paths, flipped]))
        k = out.shape[1]
        marg = path_marginals(perms, out[: len(paths)].reshape(len(perms), 2 * n + 1, k))
        flips = flip_marginals(base, text, out[len(paths):].reshape(len(base), 2, len(text) + 1, k))
        return marg, flips, paths, flipped

    def _neyman(self, game: Game, budget: int, seed: int, contrasts, text: np.ndarray,
                paths_sampler: PermutationEstimator) -> RawEstimate:
        """``text_draws="neyman"``: a pilot of :data:`PILOT_SHARE` of the budget at
        :data:`PILOT_DRAWS` flip sets per path measures the variance and modelled cost of a path
        and of a flip set; the rest of the budget runs at the flip sets per path that minimise
        variance × cost (:func:`neyman_draws`). φ is the pilot's mean and the rest's mean weighted by
        their fixed shares of the budget: the rest is unbiased whatever the pilot chose, so φ is."""
        n, t = game.n_players, len(text)
        shifts = paths_sampler.unit_length(game)
        pilot_unit = _unit_evaluations(n, t, shifts, PILOT_DRAWS)
        n_pilot = int(PILOT_SHARE * budget) // pilot_unit
        rest = budget - n_pilot * pilot_unit
        candidates = [d for d in range(MAX_NEYMAN_DRAWS + 1) if rest // _unit_evaluations(n, t, shifts, d) >= 2]
        if t in (0, n) or n_pilot < 2 or not candidates:
            return type(self)(text_draws=PILOT_DRAWS, shifts=shifts)._estimate(game, budget, seed, contrasts)
        marg, flips, paths, flipped = self._draw(game, paths_sampler, text, n_pilot, PILOT_DRAWS, seed)
        column = int(np.argmax(game.value_full()))
        video = game.video_player_mask
        cost = game.cost_model.call_cost
        draws = neyman_draws(
            video_var=float(marg[:, video, column].var(axis=0, ddof=1).sum()),
            text_path_var=float(marg[:, text, column].var(axis=0, ddof=1).sum()),
            text_flip_var=float(flips[:, :, column].var(axis=0, ddof=1).sum()),
            path_cost=cost(game.features_of(paths), game.video_feature_mask) / len(marg),
            flip_cost=cost(game.features_of(flipped), game.video_feature_mask) / len(flips),
            candidates=candidates)
        pilot = _units(marg, flips, game, text, shifts, PILOT_DRAWS)
        main_seed = int(np.random.SeedSequence([seed, 0x4E59]).generate_state(1)[0])   # independent of the pilot
        n_main = rest // _unit_evaluations(n, t, shifts, draws)
        marg, flips, _, _ = self._draw(game, paths_sampler, text, n_main, draws, main_seed)
        rest_units = _units(marg, flips, game, text, shifts, draws)
        share = n_pilot * pilot_unit / budget                              # fixed before any sample
        return _mean_of_units([(pilot, share), (rest_units, 1.0 - share)], contrasts)


#: ``text_draws="neyman"``: the pilot's share of the budget (fixed in advance, so it is also the
#: pilot's weight in φ), its flip sets per path, and the most flip sets per path the rest may use
PILOT_SHARE = 0.25
PILOT_DRAWS = 2
MAX_NEYMAN_DRAWS = 32


def neyman_draws(video_var: float, text_path_var: float, text_flip_var: float, path_cost: float,
                 flip_cost: float, candidates) -> int:
    """The flip sets per path (of ``candidates``) that minimise variance × cost of one unit.

    A unit of one path and d flip sets has variance ``video_var + (text_path_var + d·text_flip_var)
    / (1+d)²`` (summed over players; per-sample variances of a path's marginals and of a flip
    sample) and costs ``path_cost + d·flip_cost``; the error at fixed compute falls with their
    product (Neyman's allocation between the two strata, Castro et al. 2017)."""
    d = np.asarray(list(candidates), dtype=np.float64)
    variance = video_var + (text_path_var + d * text_flip_var) / (1.0 + d) ** 2
    return int(d[np.argmin(variance * (path_cost + d * flip_cost))])


def _unit_evaluations(n: int, t: int, shifts: int, draws: int) -> int:
    """Evaluations of one unit: ``shifts`` antithetic paths and ``shifts·draws`` flip sets."""
    return shifts * (2 * n + 1 + 2 * (t + 1) * draws)


def _units(marg: np.ndarray, flips: np.ndarray, game: Game, text: np.ndarray, shifts: int, draws: int) -> np.ndarray:
    """``[U, F, K]``: each unit's estimate (the mean of its samples per player), exactly efficient."""
    n = game.n_players
    n_units = len(marg) // shifts
    k = marg.shape[2]
    units = marg.reshape(n_units, shifts, n, k).sum(axis=1)               # [U, n, K] sums over the unit's paths
    units[:, text] += flips.reshape(n_units, shifts * draws, len(text), k).sum(axis=1)
    units[:, text] /= shifts * (1 + draws)
    units[:, game.video_player_mask] /= shifts
    # each unit's efficiency gap has mean zero (every sample is unbiased): spreading it evenly
    # over the players keeps φ unbiased and makes it exactly efficient
    gap = units.sum(axis=1) - (game.value_full() - game.value_empty())[None, :]
    return units - gap[:, None, :] / n


def _mean_of_units(phases: list[tuple[np.ndarray, float]], contrasts) -> RawEstimate:
    """φ = Σ weight · (mean of the phase's units), with standard errors over each phase's units."""
    values = sum(w * u.mean(axis=0) for u, w in phases)
    stderr = np.sqrt(sum(w ** 2 * u.var(axis=0, ddof=1) / len(u) for u, w in phases))
    contrast_stderr = None
    if contrasts is not None:
        contrast_stderr = np.sqrt(sum(w ** 2 * np.einsum("rn,unk->urk", contrasts, u).var(axis=0, ddof=1) / len(u)
                                      for u, w in phases))
    return RawEstimate(values=values, stderr=stderr, contrast_stderr=contrast_stderr)
