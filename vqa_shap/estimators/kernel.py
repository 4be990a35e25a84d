"""Paired KernelSHAP and Leverage SHAP: constrained weighted regression on sampled coalitions."""

from __future__ import annotations

from math import comb

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.game import Game

#: most sampled pairs a regression design holds in memory (2^20 pairs = 2^21 coalitions); larger
#: budgets are refused with a message pointing to the streaming permutation estimators
MAX_PAIRS = 1 << 20
_CHUNK = 128  # pairs drawn per RNG chunk; fixed so that sampling is prefix-stable across budgets


def solve_shapley_regression(
    coalitions: np.ndarray, values: np.ndarray, weights: np.ndarray, v_empty: np.ndarray, v_full: np.ndarray,
    units: np.ndarray | None = None, contrasts: np.ndarray | None = None,
) -> RawEstimate:
    """Weighted least squares ``min Σ_r w_r (v(S_r) − v(∅) − Σ_{i∈S_r} φ_i)²`` s.t. ``Σφ = v(all) − v(∅)``.

    The constraint is eliminated by projecting onto ``1ᵀφ = 0`` (so efficiency holds exactly). With
    ``units`` (an id per row, e.g. the pair a row belongs to) a sandwich (HC1) covariance over the
    units gives standard errors.

    Args:
        coalitions: ``bool[R, P]``.
        values: ``float[R, K]`` game values of the rows.
        weights: ``float[R]`` regression weights (kernel weight / sampling probability).
        v_empty, v_full: ``float[K]``.
        units: ``int[R]`` independent sampling unit of each row (negative: a row that was not
            sampled but enumerated, which adds no variance), or None (no standard errors).
        contrasts: ``float[C, P]`` sums whose standard errors are wanted.
    """
    n = coalitions.shape[1]
    total = v_full - v_empty
    z = coalitions.astype(np.float64)
    share = z.sum(axis=1, keepdims=True) / n
    a = z - share                                          # rows of Z·(I − 11ᵀ/n)
    b = values - v_empty[None, :] - share * total[None, :]
    aw = a * weights[:, None]
    gram = a.T @ aw
    # 1 spans the null space of the Gram matrix; adding c·11ᵀ makes it invertible without moving the
    # solution (both sides live in the complement of 1).
    gram += (np.trace(gram) / n) * np.ones((n, n)) / n
    # rcond: with fewer samples than players the system is underdetermined; keep the minimum-norm
    # solution instead of amplifying round-off
    inverse = np.linalg.pinv(gram, rcond=1e-10, hermitian=True)
    theta = inverse @ (aw.T @ b)
    values_hat = theta + total[None, :] / n

    stderr = contrast_stderr = None
    if units is not None:
        from scipy import sparse

        k = values.shape[1]
        sampled = np.flatnonzero(units >= 0)
        ids, unit_of_row = np.unique(units[sampled], return_inverse=True)
        n_units = len(ids)
        if n_units > n or n_units == 0:
            resid = b - a @ theta                                           # [R, K]
            membership = sparse.csr_matrix((np.ones(len(sampled)), (unit_of_row, sampled)),
                                           shape=(n_units, len(units)))
            scale = n_units / max(n_units - (n - 1), 1)                     # HC1 small-sample factor
            var = np.empty((n, k))
            cvar = None if contrasts is None else np.empty((len(contrasts), k))
            for col in range(k):
                scores = membership @ (aw * resid[:, col : col + 1])        # per-unit score [U, P]
                influence = scores @ inverse                                # inverse is symmetric
                var[:, col] = scale * np.einsum("up,up->p", influence, influence)
                if contrasts is not None:
                    projected = influence @ contrasts.T
                    cvar[:, col] = scale * np.einsum("uc,uc->c", projected, projected)
            stderr = np.sqrt(var)
            contrast_stderr = None if cvar is None else np.sqrt(cvar)
        else:
            stderr = np.full_like(values_hat, np.inf)
            contrast_stderr = None if contrasts is None else np.full((len(contrasts), values.shape[1]), np.inf)
    return RawEstimate(values=values_hat, stderr=stderr, contrast_stderr=contrast_stderr)


class KernelEstimator(Estimator):
    """Paired KernelSHAP (Lundberg & Lee 2017; Covert & Lee 2021 pairing).

    Coalitions are drawn in complementary pairs (S, S̄): a size s with probability ``q(s)``, then a
    uniform subset of that size. The budget counts distinct coalitions (v(∅), v(all), then pairs until
    the budget is spent). Shapley values solve the efficiency-constrained weighted regression, with
    weights ``kernel(s) / q(s)``. Standard errors: sandwich estimator over pairs.
    When the budget covers every coalition of a small game, all of them are used with their exact
    kernel weights, which gives the exact Shapley values.

    Options:
        text_per_video: coalitions sampled per video part (see :class:`StratifiedLeverageEstimator`).
        sizes: ``"kernel"`` — ``q(s) ∝ 1/(s(P−s))``, the Shapley kernel (classic KernelSHAP);
            ``"uniform"`` — every size equally likely, i.e. sampling by the regression's leverage
            scores (Leverage SHAP, Musco & Witter 2025).
        border: enumerate whole size classes ({s, P−s}, smallest first) while the pairs the budget
            would draw from a class in expectation cover all of it, then sample only the other sizes
            (the "border trick" of shap's KernelExplainer and shapiq). Enumerated rows get their
            exact kernel weight and add no variance; the sampled rows estimate the rest without
            bias. The split depends on the budget, so an adaptive run re-draws its sampled part
            when the split moves.
        tail: score all ``2^tail`` settings of the last ``tail`` players under every drawn
            coalition (cheap under longest-common-prefix sharing: they differ only at the end of
            the prompt); rows are weighted by their kernel weight over the probability that their
            head (the players before the tail) is drawn, and a drawn group is one sampling unit.
        poststratify: weight sampled rows by the realised number of rows of their size instead of
            its expectation.
    """

    name = "kernel"
    options = {"sizes": "kernel", "text_per_video": 1, "border": False, "poststratify": False, "tail": 0}

    def min_budget(self, n_players: int) -> int:
        # paired rows are collinear, so P pairs just identify P players: below ~2P pairs the
        # regression interpolates noise; small games can always afford every coalition instead
        return 2 if n_players == 1 else min(4 * n_players + 2, 2 ** n_players)

    def _size_probabilities(self, n: int) -> np.ndarray:
        s = np.arange(1, n)
        if self.config["sizes"] == "kernel":
            q = 1.0 / (s * (n - s))
        elif self.config["sizes"] == "uniform":
            q = np.ones(n - 1)
        else:
            raise EstimatorError(f"{self.name}: sizes must be 'kernel' or 'uniform', got {self.config['sizes']!r}")
        return q / q.sum()

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        n = game.n_players
        v_empty, v_full = game.value_empty(), game.value_full()
        if n == 1:
            return RawEstimate(values=(v_full - v_empty)[None, :], stderr=np.zeros((1, len(v_full))))
        if n <= 20 and (budget - 2) // 2 >= 2 ** (n - 1) - 1:
            return self._all_coalitions(game, n, v_empty, v_full, contrasts)
        coalitions, values, weights, units = self._weighted_design(game, budget, seed)
        return solve_shapley_regression(coalitions, values, weights, v_empty, v_full, units=units, contrasts=contrasts)

    def _weighted_design(self, game: Game, budget: int, seed: int):
        """``(coalitions, values, weights, units)``: the scored design and its regression weights,
        the kernel weight over the expected number of times a row is drawn (enumerated rows: their
        exact kernel weight, once)."""
        n = game.n_players
        enumerated, q = self._border(n, (budget - 2) // 2)
        exact = _size_classes(n, enumerated)
        coalitions, values, q, units = self._design(game, budget - 2 * len(exact), seed, q, exact)
        s = coalitions.sum(axis=1)
        inner = (s > 0) & (s < n)                          # ∅ and N are the constraint, not rows
        binom = np.array([comb(n, int(x)) for x in s], dtype=np.float64)
        mu = np.zeros(len(coalitions))
        mu[inner] = 1.0 / (s[inner] * (n - s[inner]) * binom[inner])   # kernel weight of one coalition
        sampled = units >= 0
        qq = np.concatenate([[0.0], q, [0.0]])             # q over sizes 0..n
        drawn = sampled & (qq[s] > 0)                      # tail variants can land on enumerated sizes: counted there
        tail = self._tail(n)
        heads = max(int(sampled.sum()) // 2 >> len(tail), 1)   # first members drawn (before their tails)
        # a drawn row S is expected 2·heads·P(S) times: as a first member or as a complement
        if len(tail):
            expected = 2 * heads * self._head_probability(n, qq, len(tail))[s - coalitions[:, tail].sum(axis=1)]
        elif self.config.get("poststratify"):
            # realised rows per size instead of their expectation: removes the variance of how
            # many pairs each size happened to get
            expected = np.bincount(s[drawn], minlength=n + 1)[s] / binom
        else:
            expected = 2 * heads * qq[s] / binom
        weights = np.where(sampled, 0.0, mu)
        weights[drawn] = mu[drawn] / expected[drawn]
        return coalitions, values, weights / weights[weights > 0].mean(), units

    def _tail(self, n: int) -> np.ndarray:
        """The last ``tail`` players (all their settings are scored under every drawn coalition)."""
        k = int(self.config.get("tail", 0))
        if k < 0 or k >= n:
            raise EstimatorError(f"{self.name}: tail must be in 0..{n - 1}, got {k}")
        return np.arange(n - k, n)

    @staticmethod
    def _head_probability(n: int, qq: np.ndarray, k: int) -> np.ndarray:
        """``[n−k+1]``: probability that one draw's head (its players before the last ``k``) is a
        given set of ``e`` players: ``Σ_j C(k, j) q(e+j) / C(n, e+j)``."""
        return np.array([sum(comb(k, j) * qq[e + j] / comb(n, e + j) for j in range(k + 1)) for e in range(n - k + 1)])

    def _border(self, n: int, max_pairs: int) -> tuple[list[int], np.ndarray]:
        """Size classes to enumerate (``k ≤ n/2`` stands for {k, n−k}) and the size distribution of
        the sampled pairs (zero on the enumerated sizes)."""
        q = self._size_probabilities(n)
        if not self.config["border"]:
            return [], q
        enumerated, left, mass = [], max_pairs, 1.0
        for k in range(1, n // 2 + 1):
            count = comb(n, k) // (2 if 2 * k == n else 1)
            share = q[k - 1] + (q[n - k - 1] if 2 * k != n else 0.0)
            if mass <= 1e-12 or left * share / mass < count:
                break
            enumerated.append(k)
            left, mass = left - count, mass - share
        q = q.copy()
        for k in enumerated:
            q[[k - 1, n - k - 1]] = 0.0
        return enumerated, (q / q.sum() if q.sum() > 0 else q)

    def _design(self, game: Game, budget: int, seed: int, q: np.ndarray, exact: np.ndarray):
        """Draw and score the paired design: ``(coalitions, values, q, units)`` (rows: the drawn
        coalitions, then the ``exact`` (enumerated) ones, then the complements of both; ``q`` the
        size distribution over 1..n−1 of the drawn ones; ``units`` the independent sampling unit of
        every row, −1 for enumerated rows)."""
        n = game.n_players
        max_pairs = (budget - 2) // 2
        if max_pairs + len(exact) > MAX_PAIRS:
            raise EstimatorError(
                f"{self.name}: budget={budget} needs {max_pairs} sampled pairs held in memory; at most {MAX_PAIRS} "
                f"(budget {2 + 2 * MAX_PAIRS}). For larger budgets use a permutation estimator (e.g. shared_video), "
                "which streams its samples")
        per_video = int(self.config["text_per_video"])
        if per_video < 1:
            raise EstimatorError(f"{self.name}: text_per_video must be >= 1, got {per_video}")
        text = np.flatnonzero(~game.video_player_mask)
        rng = np.random.default_rng(seed)
        drawn, seen = [], set()
        n_drawn = 0
        unit = (per_video if len(text) else 1) << len(self._tail(n))   # rows drawn together
        while len(seen) < max_pairs and q.sum() > 0:
            sizes = rng.choice(np.arange(1, n), size=_CHUNK, p=q)
            orders = rng.permuted(np.tile(np.arange(n), (_CHUNK, 1)), axis=1)
            rank = np.empty_like(orders)
            np.put_along_axis(rank, orders, np.broadcast_to(np.arange(n), orders.shape), axis=1)
            base = rank < sizes[:, None]
            rows = [base]
            if per_video > 1 and len(text):
                # same video part, a fresh uniform text subset of the same size: each row keeps the
                # marginal distribution of a sampled coalition (so the weights stay valid) while the
                # group shares one video prefix (and its complement the complementary prefix)
                n_text_on = base[:, text].sum(axis=1)
                for _ in range(per_video - 1):
                    text_rank = np.argsort(rng.random((_CHUNK, len(text))), axis=1).argsort(axis=1)
                    extra = base.copy()
                    extra[:, text] = text_rank < n_text_on[:, None]
                    rows.append(extra)
            chunk = np.stack(rows, axis=1).reshape(-1, n)      # groups of per_video consecutive rows
            chunk = _with_tails(chunk, self._tail(n))
            # canonical member of a pair: the one holding player 0
            canon = np.where(chunk[:, :1], chunk, ~chunk)
            stop, full = _take_whole_units(np.packbits(canon, axis=1), seen, max_pairs, unit, first=not drawn)
            chunk = chunk[:stop]
            drawn.append(chunk)
            n_drawn += len(chunk)
            if full or n_drawn > 50 * max_pairs + 10 * _CHUNK * per_video:  # or the pair space is nearly exhausted
                break
        first = np.concatenate([*drawn, exact]) if drawn else exact
        coalitions = np.concatenate([first, ~first])
        values = game(coalitions)
        n_drawn = len(first) - len(exact)
        group = np.concatenate([np.arange(n_drawn) // unit, np.full(len(exact), -1)])
        return coalitions, values, q, np.concatenate([group, group])

    @staticmethod
    def _all_coalitions(game: Game, n: int, v_empty, v_full, contrasts) -> RawEstimate:
        codes = np.arange(1, 2 ** n - 1, dtype=np.int64)
        coalitions = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
        s = coalitions.sum(axis=1)
        weights = np.array([(n - 1) / (comb(n, int(k)) * k * (n - k)) for k in s])
        raw = solve_shapley_regression(coalitions, game(coalitions), weights, v_empty, v_full)
        k = len(v_full)
        return RawEstimate(values=raw.values, stderr=np.zeros((n, k)),
                           contrast_stderr=None if contrasts is None else np.zeros((len(contrasts), k)))


def _take_whole_units(keys: np.ndarray, seen: set, max_pairs: int, unit: int, first: bool) -> tuple[int, bool]:
    """Add the pair keys of whole units (``unit`` consecutive rows) to ``seen`` until ``max_pairs``
    distinct pairs are reached; return how many rows to keep and whether the design is full. A
    unit that would overshoot is left out (its rows share a head, and a partial unit would bias the
    weights), unless nothing at all was drawn yet."""
    for start in range(0, len(keys), unit):
        new = {k.tobytes() for k in keys[start:start + unit]} - seen
        if len(seen) + len(new) > max_pairs:
            if first and start == 0:                     # budget below one unit: take what fits
                for r, key in enumerate(keys):
                    seen.add(key.tobytes())
                    if len(seen) >= max_pairs:
                        return r + 1, True
            return start, True
        seen.update(new)
        if len(seen) >= max_pairs:
            return start + unit, True
    return len(keys), False


def _with_tails(rows: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """Every row repeated with all ``2^len(tail)`` settings of the ``tail`` players (consecutive)."""
    if not len(tail):
        return rows
    codes = np.arange(1 << len(tail))
    patterns = ((codes[:, None] >> np.arange(len(tail))[None, :]) & 1).astype(bool)   # [2^k, k]
    out = np.repeat(rows, len(patterns), axis=0)
    out[:, tail] = np.tile(patterns, (len(rows), 1))
    return out


def _size_classes(n: int, classes: list[int]) -> np.ndarray:
    """``bool[R, n]``: one member of every complementary pair in the size classes ``k`` ({k, n−k})."""
    from itertools import combinations

    rows = []
    for k in classes:
        # k = n/2: a coalition and its complement have the same size; keep the member holding player 0
        members = (c for c in combinations(range(n), k) if 2 * k != n or c[0] == 0)
        for c in members:
            row = np.zeros(n, dtype=bool)
            row[list(c)] = True
            rows.append(row)
    return np.array(rows, dtype=bool).reshape(-1, n)


class LeverageEstimator(KernelEstimator):
    """Leverage SHAP (Musco & Witter 2025): paired KernelSHAP with coalition sizes drawn uniformly,
    which samples proportionally to the regression's leverage scores."""

    name = "leverage"
    options = {"sizes": "uniform", "text_per_video": 1, "border": False, "poststratify": False, "tail": 0}


class StratifiedLeverageEstimator(KernelEstimator):
    """Leverage SHAP with prefix sharing: for every sampled coalition, ``text_per_video − 1`` more
    coalitions with the *same video part* and a fresh text part of the same size (and their
    complements, which share the complementary video part). Each row keeps Leverage SHAP's sampling
    distribution, so the regression is unchanged; the group costs two video prefixes instead of
    ``2·text_per_video``. Standard errors treat each group as one sampling unit."""

    name = "stratified"
    options = {"sizes": "uniform", "text_per_video": 4, "border": False, "poststratify": False, "tail": 0}
