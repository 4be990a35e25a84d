"""Paired KernelSHAP and Leverage SHAP: constrained weighted regression on sampled coalitions."""

from __future__ import annotations

from math import comb

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.game import Game

#: most players for the pairwise surrogate of ``regression_adjusted`` (n(n−1)/2 columns)
MAX_PAIRWISE_PLAYERS = 32
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
        units: ``int[R]`` independent sampling unit of each row, or None (no standard errors).
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
        ids, unit_of_row = np.unique(units, return_inverse=True)
        n_units = len(ids)
        if n_units > n:
            resid = b - a @ theta                                           # [R, K]
            membership = sparse.csr_matrix((np.ones(len(units)), (unit_of_row, np.arange(len(units)))),
                                           shape=(n_units, len(units)))
            scale = n_units / (n_units - (n - 1))                           # HC1 small-sample factor
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
    """

    name = "kernel"
    options = {"sizes": "kernel", "text_per_video": 1}

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
        coalitions, values, q, units = self._design(game, budget, seed)
        s_all = coalitions.sum(axis=1)
        weights = 1.0 / (s_all * (n - s_all) * q[s_all - 1])
        weights /= weights.mean()
        return solve_shapley_regression(coalitions, values, weights, v_empty, v_full, units=units, contrasts=contrasts)

    def _design(self, game: Game, budget: int, seed: int):
        """Draw and score the paired design: ``(coalitions, values, q, units)`` (rows: the drawn
        coalitions then their complements; ``q`` the size distribution over 1..n−1; ``units`` the
        independent sampling unit of every row)."""
        n = game.n_players
        max_pairs = (budget - 2) // 2
        if max_pairs > MAX_PAIRS:
            raise EstimatorError(
                f"{self.name}: budget={budget} needs {max_pairs} sampled pairs held in memory; at most {MAX_PAIRS} "
                f"(budget {2 + 2 * MAX_PAIRS}). For larger budgets use a permutation estimator (e.g. shared_video), "
                "which streams its samples")
        q = self._size_probabilities(n)
        per_video = int(self.config["text_per_video"])
        if per_video < 1:
            raise EstimatorError(f"{self.name}: text_per_video must be >= 1, got {per_video}")
        text = np.flatnonzero(~game.video_player_mask)
        rng = np.random.default_rng(seed)
        drawn, seen = [], set()
        n_drawn = 0
        while len(seen) < max_pairs:
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
            # canonical member of a pair: the one holding player 0
            canon = np.where(chunk[:, :1], chunk, ~chunk)
            for r, key in enumerate(np.packbits(canon, axis=1)):
                seen.add(key.tobytes())
                if len(seen) >= max_pairs:
                    chunk = chunk[: r + 1]
                    break
            drawn.append(chunk)
            n_drawn += len(chunk)
            if n_drawn > 50 * max_pairs + 10 * _CHUNK * per_video:  # the pair space is nearly exhausted
                break
        first = np.concatenate(drawn)
        coalitions = np.concatenate([first, ~first])
        values = game(coalitions)
        group = np.arange(len(first)) // (per_video if len(text) else 1)
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


class LeverageEstimator(KernelEstimator):
    """Leverage SHAP (Musco & Witter 2025): paired KernelSHAP with coalition sizes drawn uniformly,
    which samples proportionally to the regression's leverage scores."""

    name = "leverage"
    options = {"sizes": "uniform", "text_per_video": 1}


class StratifiedLeverageEstimator(KernelEstimator):
    """Leverage SHAP with prefix sharing: for every sampled coalition, ``text_per_video − 1`` more
    coalitions with the *same video part* and a fresh text part of the same size (and their
    complements, which share the complementary video part). Each row keeps Leverage SHAP's sampling
    distribution, so the regression is unchanged; the group costs two video prefixes instead of
    ``2·text_per_video``. Standard errors treat each group as one sampling unit."""

    name = "stratified"
    options = {"sizes": "uniform", "text_per_video": 4}


class RegressionAdjustedEstimator(KernelEstimator):
    """Regression-adjusted Monte Carlo (Witter, Liu & Musco 2025), cross-fit.

    The paired design of :class:`KernelEstimator` is split into two folds by sampling unit. On each
    fold a surrogate with exact Shapley values is fitted (``order=1``: the efficiency-constrained
    linear regression, i.e. KernelSHAP; ``order=2``: ridge least squares on main effects and all
    pairwise products, a pair term's value split half-half); the other fold estimates the Shapley
    values of the residual game ``r = v − f`` without bias by maximum-sample-reuse Monte Carlo (a
    row of size s drawn with probability q(s): ``φ_i(r) ≈ (r(N) − r(∅))/n + mean r(S)/q(s)·([i∈S]/s
    − [i∉S]/(n−s))``). The two cross-fits are averaged: unbiased whatever the surrogate, exactly
    efficient. Standard errors from the per-unit MSR contributions.
    """

    name = "regression_adjusted"
    options = {"sizes": "uniform", "text_per_video": 1, "order": 1, "ridge": 1e-3}

    def _surrogate(self, z, values, weights, v_empty, v_full):
        """Fit on one fold: ``(Shapley values of the surrogate [n, K], predict(coalitions) -> [B, K])``."""
        n = z.shape[1]
        order = int(self.config["order"])
        if order == 1:
            beta = solve_shapley_regression(z > 0.5, values, weights, v_empty, v_full).values
            return beta, lambda at: v_empty[None, :] + at @ beta
        if order != 2:
            raise EstimatorError(f"{self.name}: order must be 1 or 2, got {self.config['order']!r}")
        if n > MAX_PAIRWISE_PLAYERS:
            raise EstimatorError(f"{self.name}: order=2 fits n(n-1)/2 pair terms; at most {MAX_PAIRWISE_PLAYERS} "
                                 f"players, got {n}")
        iu, ju = np.triu_indices(n, 1)

        def features(at):
            return np.hstack([np.ones((len(at), 1)), at, at[:, iu] * at[:, ju]])

        design = features(z)
        dw = design * weights[:, None]
        gram = design.T @ dw
        penalty = float(self.config["ridge"]) * np.trace(gram) / len(gram)
        gram[np.diag_indices_from(gram)] += penalty
        gram[0, 0] -= penalty                                    # the intercept is not shrunk
        theta = np.linalg.solve(gram, dw.T @ values)
        phi = theta[1 : n + 1].copy()
        np.add.at(phi, iu, theta[n + 1 :] / 2)
        np.add.at(phi, ju, theta[n + 1 :] / 2)
        return phi, lambda at: features(at) @ theta

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        n = game.n_players
        v_empty, v_full = game.value_empty(), game.value_full()
        if n == 1 or (n <= 20 and (budget - 2) // 2 >= 2 ** (n - 1) - 1):
            return super()._estimate(game, budget, seed, contrasts)
        coalitions, values, q, units = self._design(game, budget, seed)
        s_all = coalitions.sum(axis=1)
        weights = 1.0 / (s_all * (n - s_all) * q[s_all - 1])
        weights /= weights.mean()
        z = coalitions.astype(np.float64)
        # MSR coefficient of every row and player: ([i∈S]/s − [i∉S]/(n−s)) / q(s)
        msr = (z / s_all[:, None] - (1.0 - z) / (n - s_all)[:, None]) / q[s_all - 1][:, None]
        fold = units % 2
        ends = np.array([np.zeros(n), np.ones(n)])
        total = np.zeros((n, values.shape[1]))
        per_unit = []
        for held in (0, 1):
            fit, test = fold != held, fold == held
            phi_f, predict = self._surrogate(z[fit], values[fit], weights[fit], v_empty, v_full)
            resid = values[test] - predict(z[test])                       # [R_test, K]
            f_empty, f_full = predict(ends)
            rows = msr[test][:, :, None] * resid[:, None, :]              # [R_test, n, K]
            _, inverse = np.unique(units[test], return_inverse=True)
            sums = np.zeros((inverse.max() + 1, n, values.shape[1]))
            np.add.at(sums, inverse, rows)
            n_test = int(test.sum())
            exact_part = phi_f + (((v_full - f_full) - (v_empty - f_empty)) / n)[None, :]
            total += 0.5 * (exact_part + sums.sum(axis=0) / n_test)
            per_unit.append(0.5 * sums * (sums.shape[0] / n_test))       # unit's share, scaled to a mean
        stderr = contrast_stderr = None
        if min(len(c) for c in per_unit) > 1:
            # each fold's MSR mean has variance var(unit)/U_fold; the folds are independent
            stderr = np.sqrt(sum(np.var(c, axis=0, ddof=1) / len(c) for c in per_unit))
            if contrasts is not None:
                contrast_stderr = np.sqrt(sum(np.var(np.einsum("rn,unk->urk", contrasts, c), axis=0, ddof=1) / len(c)
                                              for c in per_unit))
        return RawEstimate(values=total, stderr=stderr, contrast_stderr=contrast_stderr)
