"""Antithetic permutation sampling, identical to shap's PermutationExplainer for the same seed, and
variants that draw their orders differently (position stratification, shared video orders)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.game import Game

#: most mask cells (coalitions × players) built at once: a huge budget streams its permutations in
#: chunks of about this size instead of allocating all of them (2^23 cells ≈ 8 MB of masks)
MAX_CHUNK_CELLS = 1 << 23


class PermutationEstimator(Estimator):
    """shap's PermutationExplainer, reimplemented over the Game (the paper's estimator).

    With ``P = budget // (2F+1)`` permutations, each obtained by shuffling the previous one in place
    (from ``arange(F)``) with ``np.random.RandomState(seed)`` — the same stream shap draws from the
    global RNG after ``np.random.seed(seed)``, without touching the global RNG — every permutation
    evaluates 2F+1 coalitions: ∅, then players added one by one (forward), then removed in the same
    order (backward). φ is the mean of the 2P marginal contributions, accumulated in shap's order so
    the numbers agree to rounding. Efficiency holds exactly. Standard errors come from the P
    per-permutation estimates (forward + backward averaged). The permutations go to the Game in as
    few calls as memory allows (:data:`MAX_CHUNK_CELLS` mask cells per call; all of them for any
    realistic budget), so it can batch and share video prefixes across them; memory stays bounded
    for any budget.

    Options:
        shifts: use each shuffled order this many times, cyclically shifted by ``F/shifts`` (1 =
            shap's sampling exactly; see :class:`CyclicPermutationEstimator`).
    """

    name = "permutation"
    options = {"shifts": 1}

    def min_budget(self, n_players: int) -> int:
        return 2 * n_players + 1

    def unit_length(self, game: Game) -> int:
        """Permutations per independent sampling unit (standard errors are over units)."""
        shifts = int(self.config["shifts"])
        if shifts < 1 or shifts > game.n_players:
            raise EstimatorError(f"{self.name}: shifts must be in 1..{game.n_players}, got {shifts}")
        return shifts

    def _orders(self, game: Game, n_perm: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
        """Yield the permutations ``int[c, F]`` in chunks of ``chunk`` (a multiple of the unit)."""
        n = game.n_players
        shifts = self.unit_length(game)
        rng = np.random.RandomState(seed)
        order = np.arange(n)
        for start in range(0, n_perm, chunk):
            perms = np.empty((min(chunk, n_perm - start), n), dtype=np.int64)
            for j in range(len(perms)):
                p = start + j
                if p % shifts == 0:
                    rng.shuffle(order)
                # cyclic shifts of one shuffled order: each is a uniform permutation, and together
                # they spread every player's position evenly (stratification by position)
                perms[j] = np.roll(order, -((p % shifts) * n // shifts))
            yield perms

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        n = game.n_players
        n_perm = budget // (2 * n + 1)
        unit = self.unit_length(game)
        chunk = max(1, MAX_CHUNK_CELLS // ((2 * n + 1) * n)) // unit * unit or unit
        acc = _UnitAccumulator(n_perm, unit, contrasts)
        total = None
        for perms in self._orders(game, n_perm, seed, chunk):
            out = game(path_masks(perms).reshape(-1, n)).reshape(len(perms), 2 * n + 1, -1)
            if total is None:
                total = np.zeros((n, out.shape[2]))
            per_perm = np.empty((len(perms), n, out.shape[2]))
            for p in range(len(perms)):
                fwd = out[p, 1 : n + 1] - out[p, :n]
                bwd = out[p, n : 2 * n] - out[p, n + 1 :]
                # same accumulation order as shap: forward then backward, permutation by permutation
                total[perms[p]] += fwd
                total[perms[p]] += bwd
                per_perm[p, perms[p]] = (fwd + bwd) / 2.0
            acc.add(per_perm)
        if total is None:  # no permutation fits the budget (not reachable through estimate())
            k = len(game.value_full())
            total = np.zeros((n, k))
        values = total / (2 * max(n_perm, 1))
        stderr, contrast_stderr = acc.stderr(values)
        return RawEstimate(values=values, stderr=stderr, contrast_stderr=contrast_stderr)


def path_masks(perms: np.ndarray) -> np.ndarray:
    """``bool[c, 2F+1, F]``: the coalitions of the antithetic paths of permutations ``int[c, F]``: ∅,
    then the players added one by one in order (forward), then removed in the same order (backward)."""
    n = perms.shape[1]
    steps = np.arange(n + 1)
    rank = np.empty_like(perms)
    np.put_along_axis(rank, perms, np.broadcast_to(np.arange(n), perms.shape), axis=1)
    forward = rank[:, None, :] < steps[None, :, None]              # [c, n+1, n]: first j players on
    backward = rank[:, None, :] >= steps[None, 1:, None]           # [c, n, n]: first j players off again
    return np.concatenate([forward, backward], axis=1)


def path_marginals(perms: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``float[c, F, K]``: each path's marginal contribution of every player, forward and backward
    averaged (``out``: the values ``[c, 2F+1, K]`` of :func:`path_masks`' coalitions)."""
    n = perms.shape[1]
    fwd = out[:, 1 : n + 1] - out[:, :n]
    bwd = out[:, n : 2 * n] - out[:, n + 1 :]
    per_perm = np.empty_like(fwd)
    np.put_along_axis(per_perm, perms[:, :, None], (fwd + bwd) / 2.0, axis=1)
    return per_perm


class _UnitAccumulator:
    """Streaming standard errors over independent units of equal size (the last may be partial).

    ``φ = Σ_u w_u x_u`` with ``w_u = |u| / P``; ``Var φ ≈ U/(U−1) Σ_u w_u² (x_u − φ)²``, accumulated
    from sums of ``w_u² y_u`` and ``w_u² y_u²`` with ``y_u = x_u − x_0`` (shifting by the first unit
    avoids cancellation), so no per-unit array is kept. With ``contrasts`` (``float[R, F]``) the
    same sums of ``contrasts @ y_u`` give the standard errors of ``contrasts @ φ``.
    """

    def __init__(self, n_perm: int, unit: int, contrasts: np.ndarray | None = None):
        self.n_perm, self.unit, self.contrasts = n_perm, unit, contrasts
        self.n_units = -(-n_perm // unit) if n_perm else 0
        self.pivot = None
        self.sums: dict[str, list] = {}
        self.rows: list[np.ndarray] = []   # the per-permutation rows of a unit not yet complete

    def add(self, per_perm: np.ndarray) -> None:
        self.rows.extend(per_perm)
        while len(self.rows) >= self.unit:
            self._unit(np.mean(self.rows[: self.unit], axis=0), self.unit)
            del self.rows[: self.unit]

    def _views(self, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"players": y} if self.contrasts is None else {"players": y, "contrasts": self.contrasts @ y}

    def _unit(self, x: np.ndarray, size: int) -> None:
        if self.pivot is None:
            self.pivot = x.copy()
            self.sums = {key: [0.0, np.zeros_like(v), np.zeros_like(v)] for key, v in self._views(x).items()}
        w2 = (size / self.n_perm) ** 2
        for key, y in self._views(x - self.pivot).items():
            acc = self.sums[key]
            acc[0] += w2
            acc[1] += w2 * y
            acc[2] += w2 * y * y

    def stderr(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Standard errors of ``values`` (and of ``contrasts @ values``)."""
        if self.rows:
            self._unit(np.mean(self.rows, axis=0), len(self.rows))
            self.rows = []
        n, k = values.shape
        if self.n_units < 2:
            return np.full((n, k), np.inf), None if self.contrasts is None else np.full((len(self.contrasts), k), np.inf)
        scale = self.n_units / (self.n_units - 1)
        out = {}
        for key, m in self._views(values - self.pivot).items():
            s0, s1, s2 = self.sums[key]
            out[key] = np.sqrt(np.maximum(s2 - 2 * m * s1 + m * m * s0, 0.0) * scale)
        return out["players"], out.get("contrasts")


class CyclicPermutationEstimator(PermutationEstimator):
    """Antithetic permutation sampling with position stratification: every shuffled order is used
    twice, as drawn and cyclically shifted by half its length (each still a uniform permutation;
    together they place every player once in each half of the order). Unbiased, exactly efficient,
    the same evaluations-per-permutation and video-prefix reuse as ``permutation``; not identical to
    shap's sequence. Standard errors over the pairs of shifted paths."""

    name = "cyclic"
    options = {"shifts": 2}


class SharedVideoPermutationEstimator(PermutationEstimator):
    """Antithetic permutations in groups that share one order of the video players.

    Each group draws a uniform order σ of the video players, then ``per_video`` uniform
    permutations of all players whose video positions are refilled with σ. Every permutation is
    still uniform (σ is uniform and independent of where the video players sit and of the text
    order), so φ stays unbiased and exactly efficient; the group's paths pass through the same
    video parts (the first j players of σ, and their complements), so after the first permutation a
    group costs only text suffixes under a prefix-sharing loader: the text players, strong and few,
    get ``per_video`` times the samples for much less than ``per_video`` times the compute. Standard
    errors over groups.

    Options:
        per_video: permutations per video order (1 = plain antithetic permutations).
    """

    name = "shared_video"
    options = {"per_video": 4, "stratify": True}

    def unit_length(self, game: Game) -> int:
        per_video = int(self.config["per_video"])
        if per_video < 1:
            raise EstimatorError(f"{self.name}: per_video must be >= 1, got {per_video}")
        return per_video

    def _orders(self, game: Game, n_perm: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
        n, per_video = game.n_players, self.unit_length(game)
        is_video = game.video_player_mask
        video, text = np.flatnonzero(is_video), np.flatnonzero(~is_video)
        rng = np.random.default_rng(seed)
        sigma, strata = video, None
        stratify = self.config.get("stratify", False)
        for start in range(0, n_perm, chunk):
            perms = np.empty((min(chunk, n_perm - start), n), dtype=np.int64)
            for j in range(len(perms)):
                r = (start + j) % per_video
                if r == 0:
                    sigma = rng.permutation(video)
                    strata = np.argsort(rng.random((len(text), per_video)), axis=1)
                # a permutation = players sorted by i.i.d. uniform times; the video players' times
                # are sorted into σ's order (so the group shares its video parts)
                times = np.empty(n)
                times[sigma] = np.sort(rng.random(len(video)))
                u = rng.random(len(text))
                if stratify:
                    # each text player's distance from the path's ends (what antithetic pairing
                    # folds) falls once in each of per_video strata across the group
                    d = (strata[:, r] + u) / (2 * per_video)
                    u = np.where(rng.random(len(text)) < 0.5, d, 1.0 - d)
                times[text] = u
                perms[j] = np.argsort(times, kind="stable")
            yield perms
