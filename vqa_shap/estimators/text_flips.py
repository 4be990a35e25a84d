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
(and exactly efficient). ``neyman_flips`` allocates flip samples per player instead, frames included
(the frames' variance, unevenly spread over a few evidence frames, is what bounds ``text_flips``):
a pilot measures each player's variances and each flip's modelled cost, and Neyman's rule picks how
many flips each player gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.estimators.permutation import PermutationEstimator, path_marginals, path_masks
from vqa_shap.game import Game

__all__ = ["FlipAllocation", "NeymanFlipsEstimator", "TextFlipsEstimator", "allocate_flips", "flip_masks",
           "flip_marginals", "neyman_draws"]


def flip_masks(base: np.ndarray, text: np.ndarray) -> np.ndarray:
    """``bool[c, 2, T+1, F]``: for each base coalition S (``bool[c, F]``) and its complement, the
    coalition itself then one coalition per flipped player (of ``text``, indices: the text players
    for ``text_flips``, any players for ``neyman_flips``) with that player flipped."""
    c, n = base.shape
    sides = np.stack([base, ~base], axis=1)                                # [c, 2, F]
    out = np.repeat(sides[:, :, None, :], len(text) + 1, axis=2)           # [c, 2, T+1, F]
    t = np.arange(len(text))
    out[:, :, t + 1, text] = ~out[:, :, t + 1, text]
    return out


def flip_marginals(base: np.ndarray, text: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``[c, T, K]``: each flipped player's marginal contribution at S and at its complement, averaged
    (``out``: the values ``[c, 2, T+1, K]`` of :func:`flip_masks`' coalitions)."""
    sign = np.where(base[:, text], 1.0, -1.0)[:, :, None]                  # +: i in S, flip removes it
    here = sign * (out[:, 0, :1] - out[:, 0, 1:])                          # v(S ∪ i) − v(S ∖ i)
    there = -sign * (out[:, 1, :1] - out[:, 1, 1:])                        # i is in the complement iff not in S
    return (here + there) / 2.0


#: ``text_draws="neyman"`` and ``neyman_flips``: the pilot's share of the budget (fixed in advance, so
#: it is also the pilot's weight in φ), its flip sets per path, and the most flip sets per path the
#: rest may use
PILOT_SHARE = 0.25
PILOT_DRAWS = 2
MAX_NEYMAN_DRAWS = 32


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
        while draws > 0 and budget // _unit_evaluations(n, [len(text)] * draws, shifts) < 2:
            draws -= 1
        n_units = budget // _unit_evaluations(n, [len(text)] * draws, shifts)
        if draws == 0 or len(text) in (0, n) or n_units < 2:
            return paths_sampler._estimate(game, budget, seed, contrasts)
        units = _units(_draw(game, paths_sampler, _text_sets(game, draws), n_units, seed), game)
        return _mean_of_units([(units, 1.0)], contrasts)

    def _neyman(self, game: Game, budget: int, seed: int, contrasts, text: np.ndarray,
                paths_sampler: PermutationEstimator) -> RawEstimate:
        """``text_draws="neyman"``: a pilot of :data:`PILOT_SHARE` of the budget at
        :data:`PILOT_DRAWS` flip sets per path measures the variance and modelled cost of a path
        and of a flip set; the rest of the budget runs at the flip sets per path that minimise
        variance × cost (:func:`neyman_draws`). φ is the pilot's mean and the rest's mean weighted by
        their fixed shares of the budget: the rest is unbiased whatever the pilot chose, so φ is."""
        n, t = game.n_players, len(text)
        shifts = paths_sampler.unit_length(game)
        pilot_unit = _unit_evaluations(n, [t] * PILOT_DRAWS, shifts)
        n_pilot = int(PILOT_SHARE * budget) // pilot_unit
        rest = budget - n_pilot * pilot_unit
        candidates = [d for d in range(MAX_NEYMAN_DRAWS + 1) if rest // _unit_evaluations(n, [t] * d, shifts) >= 2]
        if t in (0, n) or n_pilot < 2 or not candidates:
            return type(self)(text_draws=PILOT_DRAWS, shifts=shifts)._estimate(game, budget, seed, contrasts)
        pilot = _draw(game, paths_sampler, _text_sets(game, PILOT_DRAWS), n_pilot, seed)
        marg, flips = pilot.path_marginals, np.concatenate(pilot.flip_marginals)
        column = int(np.argmax(game.value_full()))
        video = game.video_player_mask
        cost = game.cost_model.call_cost
        draws = neyman_draws(
            video_var=float(marg[:, video, column].var(axis=0, ddof=1).sum()),
            text_path_var=float(marg[:, text, column].var(axis=0, ddof=1).sum()),
            text_flip_var=float(flips[:, :, column].var(axis=0, ddof=1).sum()),
            path_cost=cost(game.features_of(pilot.paths), game.video_feature_mask) / len(marg),
            flip_cost=cost(game.features_of(pilot.flipped), game.video_feature_mask) / len(flips),
            candidates=candidates)
        n_main = rest // _unit_evaluations(n, [t] * draws, shifts)
        main = _draw(game, paths_sampler, _text_sets(game, draws), n_main, _main_seed(seed))
        share = n_pilot * pilot_unit / budget                              # fixed before any sample
        return _mean_of_units([(_units(pilot, game), share), (_units(main, game), 1.0 - share)], contrasts)


@dataclass(frozen=True)
class FlipAllocation:
    """What the pilot of ``neyman_flips`` measured and the flips per path it chose, per player.

    Attributes:
        flips: ``int[F]`` flip samples of each player per path (its n_i); flip set k of a path flips
            the players with n_i > k.
        path_variance: ``[F]`` per-path variance of each player's path marginal (output ``column``).
        flip_variance: ``[F]`` variance of one flip sample of each player.
        flip_cost: ``[F]`` modelled cost (ms) of one flip sample (its two flipped coalitions).
        path_cost: modelled cost (ms) of one antithetic path.
        base_cost: modelled cost (ms) of one flip set's base coalition and its complement.
        column: the output the variances are of (the option ``value_full`` ranks first).
    """

    flips: np.ndarray
    path_variance: np.ndarray
    flip_variance: np.ndarray
    flip_cost: np.ndarray
    path_cost: float
    base_cost: float
    column: int


class NeymanFlipsEstimator(Estimator):
    """``text_flips`` with flip samples allocated per player, frames included, by Neyman's rule.

    A pilot (``pilot_share`` of the budget) runs units of paths and :data:`PILOT_DRAWS` flip
    sets that flip every player, measuring each player's per-sample variance of path marginals and
    of flip samples (the chosen option's) and the modelled cost of a path, of a flip set's two base
    coalitions and of each player's flip (:func:`allocate_flips` then picks the flips per path n_i).
    The rest of the budget runs units (a seed independent of the pilot's) of one path and max n_i
    nested flip sets, set k flipping the players with n_i > k (q stratified over the unit's sets in
    a random order, so every set's q is uniform). A player's unit estimate is the mean of its path
    marginal and its n_i flip samples; each unit's efficiency gap is spread evenly over the players.
    φ weights the pilot's and the rest's means by their budget shares, fixed before sampling, so φ
    is unbiased whatever the pilot picks, and exactly efficient. Standard errors over each phase's
    units. A budget too small for a pilot of two units and two plain paths after it runs
    ``text_flips`` with :data:`PILOT_DRAWS` flip sets. The allocation: :meth:`allocation`.

    Options:
        shifts: each shuffled order used this many times cyclically shifted, as ``cyclic`` (a unit
            is then ``shifts`` paths, each with its flip sets).
        prior_samples: each player's pilot variances are shrunk towards its modality's mean variance
            as if that mean were this many more samples (0: the pilot's own variances).
        pilot_share: the pilot's share of the budget, also its weight in φ (fixed in advance).
    """

    name = "neyman_flips"
    options = {"shifts": 1, "prior_samples": 8.0, "pilot_share": PILOT_SHARE}

    def min_budget(self, n_players: int) -> int:
        return 2 * n_players + 1

    def allocation(self, game: Game, budget: int, seed: int = 0) -> FlipAllocation | None:
        """The allocation :meth:`estimate` would use on ``game`` at ``budget`` and ``seed`` (it runs
        the pilot; the Game's cache then serves it to the estimate), or None when the budget is too
        small for a pilot."""
        budget, seed = self._validate(game, budget, seed)
        plan = self._pilot(game, budget, seed)
        return None if plan is None else plan[1]

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        plan = self._pilot(game, budget, seed)
        shifts = int(self.config["shifts"])
        if plan is None:
            return TextFlipsEstimator(text_draws=PILOT_DRAWS, shifts=shifts)._estimate(game, budget, seed, contrasts)
        pilot_units, allocation, spent = plan
        sets = np.arange(allocation.flips.max())[:, None] < allocation.flips[None, :]   # [m, F] nested
        n_main = (budget - spent) // _unit_evaluations(game.n_players, sets.sum(axis=1), shifts)
        main = _draw(game, PermutationEstimator(shifts=shifts), sets, n_main, _main_seed(seed), shuffle_strata=True)
        share = spent / budget                                             # fixed before any sample
        return _mean_of_units([(pilot_units, share), (_units(main, game), 1.0 - share)], contrasts)

    def _pilot(self, game: Game, budget: int, seed: int) -> tuple[np.ndarray, FlipAllocation, int] | None:
        """``(the pilot's units, the allocation, the pilot's evaluations)``, or None when the budget
        has no room for two pilot units and two plain paths after them."""
        n = game.n_players
        paths_sampler = PermutationEstimator(shifts=int(self.config["shifts"]))
        shifts = paths_sampler.unit_length(game)
        pilot_unit = _unit_evaluations(n, [n] * PILOT_DRAWS, shifts)
        share = float(self.config["pilot_share"])
        prior = float(self.config["prior_samples"])
        if not 0.0 < share < 1.0 or prior < 0:
            raise EstimatorError(f"{self.name}: pilot_share must be between 0 and 1 and prior_samples >= 0, "
                                 f"got {share!r} and {prior!r}")
        n_pilot = int(share * budget) // pilot_unit
        # flip coalitions a path of the rest may add and still leave two units
        room = (budget - n_pilot * pilot_unit) // (2 * shifts) - (2 * n + 1)
        if n_pilot < 2 or room < 0:
            return None
        pilot = _draw(game, paths_sampler, np.ones((PILOT_DRAWS, n), dtype=bool), n_pilot, seed)
        column = int(np.argmax(game.value_full()))
        path_var = _shrunk_variance(pilot.path_marginals[:, :, column], game.video_player_mask, prior)
        flip_var = _shrunk_variance(np.concatenate(pilot.flip_marginals)[:, :, column], game.video_player_mask, prior)
        video, cost = game.video_feature_mask, game.cost_model
        path_cost = cost.call_cost(np.unique(game.features_of(pilot.paths), axis=0), video) / len(pilot.path_marginals)
        sides = np.concatenate([pilot.bases, ~pilot.bases])
        base_cost = cost.call_cost(np.unique(game.features_of(sides), axis=0), video) / len(pilot.bases)
        # each player's flip re-runs the prompt from its first feature on, at S and at the complement
        first = np.argmax(game.features_of(np.eye(n, dtype=bool)) != game.features_of(np.zeros((1, n), dtype=bool)),
                          axis=1)
        flip_cost = 2.0 * cost.step_costs(video)[first]
        flips = allocate_flips(path_var, flip_var, flip_cost, path_cost, base_cost, room)
        allocation = FlipAllocation(flips, path_var, flip_var, flip_cost, float(path_cost), float(base_cost), column)
        return _units(pilot, game), allocation, n_pilot * pilot_unit


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


def allocate_flips(path_var: np.ndarray, flip_var: np.ndarray, flip_cost: np.ndarray, path_cost: float,
                   base_cost: float, max_flip_coalitions: int, max_flips: int = MAX_NEYMAN_DRAWS) -> np.ndarray:
    """``int[F]``: flip samples per path n_i (at most ``max_flips``) that minimise variance × cost of a
    unit, ``Σ_i V_i(n_i) × (path_cost + m·base_cost + Σ_i n_i·flip_cost_i)`` with ``V_i(n) = (path_var_i
    + n·flip_var_i) / (1+n)²`` and m = max n_i flip sets, whose ``2m + 2Σ n_i`` coalitions stay within
    ``max_flip_coalitions`` (Neyman's allocation over players, Castro et al. 2017).

    Greedy: for each m in turn (its sets' base cost then paid), add one flip to the player whose
    flip lowers the product most, while it falls; the best allocation over all m wins (a first flip
    that alone does not repay a base pair is not ruled out when many together would)."""
    path_var, flip_var = np.asarray(path_var, dtype=np.float64), np.asarray(flip_var, dtype=np.float64)
    flip_cost = np.asarray(flip_cost, dtype=np.float64)
    flips = np.zeros(len(path_var), dtype=np.int64)

    def variance(n: np.ndarray) -> np.ndarray:
        return (path_var + n * flip_var) / (1.0 + n) ** 2

    var, spent = variance(flips), 0.0
    best, best_product = flips.copy(), var.sum() * path_cost
    for level in range(1, max_flips + 1):
        while True:
            unit_cost = path_cost + level * base_cost + spent
            more = variance(flips + 1)
            fits = 2 * np.maximum(flips.max(), flips + 1) + 2 * (flips.sum() + 1) <= max_flip_coalitions
            products = np.where((flips < level) & fits, (var.sum() - var + more) * (unit_cost + flip_cost), np.inf)
            i = int(np.argmin(products))
            if not products[i] < var.sum() * unit_cost:
                break
            flips[i] += 1
            var[i], spent = more[i], spent + flip_cost[i]
        product = var.sum() * (path_cost + flips.max() * base_cost + spent)
        if product < best_product:
            best, best_product = flips.copy(), product
    return best


@dataclass(frozen=True)
class _Draw:
    """Scored units: path marginals ``[U·shifts, F, K]``, the flip marginals of each set index k
    (``[U·shifts, |sets[k]|, K]``), their sums per unit and player ``[U, F, K]``, the flip sets
    ``bool[m, F]`` (set k of a path flips ``sets[k]``), and the coalitions (paths, bases S, flips)."""

    path_marginals: np.ndarray
    flip_marginals: list
    flip_sums: np.ndarray
    sets: np.ndarray
    shifts: int
    paths: np.ndarray
    bases: np.ndarray
    flipped: np.ndarray


def _draw(game: Game, paths_sampler: PermutationEstimator, sets: np.ndarray, n_units: int, seed: int,
          shuffle_strata: bool = False) -> _Draw:
    """Score ``n_units`` units of ``shifts`` paths (``paths_sampler``'s orders) each followed by
    ``len(sets)`` antithetic flip sets, set k flipping the players of ``sets[k]`` (``bool[m, F]``). q is
    stratified over a unit's sets; with nested sets (players in only some of them) the strata are
    dealt to the sets in a random order (``shuffle_strata``), so every set's q is uniform."""
    n = game.n_players
    shifts = paths_sampler.unit_length(game)
    perms = np.concatenate(list(paths_sampler._orders(game, n_units * shifts, seed, n_units * shifts)))
    rng = np.random.default_rng([seed, 0x7E47])
    m = shifts * len(sets)                                                 # flip sets per unit
    offset = rng.random((n_units, m))
    strata = np.tile(np.arange(m), (n_units, 1))
    if shuffle_strata:
        strata = rng.permuted(strata, axis=1)
    base = rng.random((n_units * m, n)) < ((strata + offset) / m).reshape(-1, 1)
    kind = np.tile(np.arange(len(sets)), n_units * shifts)                 # the set index of each base row
    rows = [np.flatnonzero(kind == k) for k in range(len(sets))]
    players = [np.flatnonzero(s) for s in sets]
    paths = path_masks(perms).reshape(-1, n)
    flipped = [flip_masks(base[r], p).reshape(-1, n) for r, p in zip(rows, players)]
    out = game(np.concatenate([paths, *flipped]))
    k = out.shape[1]
    marg = path_marginals(perms, out[: len(paths)].reshape(len(perms), 2 * n + 1, k))
    flips, sums, start = [], np.zeros((n_units, n, k)), len(paths)
    for r, p, f in zip(rows, players, flipped):
        samples = flip_marginals(base[r], p, out[start : start + len(f)].reshape(len(r), 2, len(p) + 1, k))
        sums[:, p] += samples.reshape(n_units, shifts, len(p), k).sum(axis=1)
        flips.append(samples)
        start += len(f)
    return _Draw(marg, flips, sums, np.asarray(sets, dtype=bool).reshape(len(sets), n), shifts, paths, base,
                 np.concatenate(flipped) if flipped else np.zeros((0, n), dtype=bool))


def _shrunk_variance(samples: np.ndarray, video: np.ndarray, prior: float) -> np.ndarray:
    """``[F]``: each player's sample variance over ``samples`` ``[S, F]``, shrunk towards the mean
    variance of its modality (video or text players) as if that mean were ``prior`` more samples: a
    pilot of a few paths measures each player's variance with a few degrees of freedom only."""
    var = samples.var(axis=0, ddof=1)
    dof = len(samples) - 1
    mean = np.where(video, var[video].mean() if video.any() else 0.0, var[~video].mean() if (~video).any() else 0.0)
    return (dof * var + prior * mean) / (dof + prior)


def _text_sets(game: Game, draws: int) -> np.ndarray:
    """``text_flips``' flip sets: ``draws`` sets per path, each flipping every text player."""
    return np.tile(~game.video_player_mask, (draws, 1))


def _main_seed(seed: int) -> int:
    """The seed of a pilot's main phase: independent of the pilot's."""
    return int(np.random.SeedSequence([seed, 0x4E59]).generate_state(1)[0])


def _unit_evaluations(n: int, set_sizes, shifts: int) -> int:
    """Evaluations of one unit: ``shifts`` antithetic paths, each with flip sets of ``set_sizes``
    players (2(size+1) coalitions each)."""
    return shifts * (2 * n + 1 + sum(2 * (int(s) + 1) for s in set_sizes))


def _units(draw: _Draw, game: Game) -> np.ndarray:
    """``[U, F, K]``: each unit's estimate (the mean of its samples per player), exactly efficient."""
    marg, shifts = draw.path_marginals, draw.shifts
    n_units, n, k = len(marg) // shifts, game.n_players, marg.shape[2]
    units = marg.reshape(n_units, shifts, n, k).sum(axis=1) + draw.flip_sums   # sums over the unit's samples
    units /= (shifts * (1 + draw.sets.sum(axis=0)))[None, :, None]
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
