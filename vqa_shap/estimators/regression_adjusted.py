"""Regression-adjusted Monte Carlo (Witter, Liu & Musco 2025) on the paired KernelSHAP design, and
its variants for rough games: ``centred_msr`` (a ridge surrogate and per-size means) and
``forest_msr`` (a forest surrogate and per-size means)."""

from __future__ import annotations

import numpy as np

from vqa_shap.estimators.base import EstimatorError, RawEstimate
from vqa_shap.estimators.kernel import KernelEstimator, _size_classes, solve_shapley_regression
from vqa_shap.game import Game

#: most players for the pairwise surrogate of ``regression_adjusted`` (n(n−1)/2 columns)
MAX_PAIRWISE_PLAYERS = 32
#: the surrogates ``regression_adjusted:fit=...`` fits for ``order=1``
FITS = ("kernel", "ridge", "forest", "stack")
#: penalties ``regression_adjusted:fit=ridge`` chooses from (× the design's mean squared singular value)
RIDGE_GRID = np.array([1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0])


class RegressionAdjustedEstimator(KernelEstimator):
    """Regression-adjusted Monte Carlo (Witter, Liu & Musco 2025), cross-fit.

    The paired design of :class:`KernelEstimator` is split into folds (two by default) by sampling
    unit. On the rows outside a fold a surrogate with exact Shapley values is fitted (``order=1``: the
    efficiency-constrained linear regression, i.e. KernelSHAP; ``order=2``: ridge least squares on main
    effects and all pairwise products, a pair term's value split half-half); the fold estimates the
    Shapley values of the residual game ``r = v − f`` without bias by maximum-sample-reuse Monte Carlo
    (a row of size s drawn with probability q(s): ``φ_i(r) ≈ (r(N) − r(∅))/n + mean r(S)/q(s)·([i∈S]/s
    − [i∉S]/(n−s))``; option ``residual="kernel"``: by the KernelSHAP regression on the residual game
    instead, consistent rather than unbiased). The folds' cross-fits are averaged: unbiased whatever
    the surrogate, exactly efficient. Standard errors from the per-unit MSR contributions.

    Options (besides :class:`KernelEstimator`'s ``sizes`` and ``text_per_video``):
        order: 0 (no player terms), 1 (main effects) or 2 (main effects and pairs, ridge ``ridge``).
        fit: for ``order=1``, ``"kernel"`` (the constrained KernelSHAP regression), ``"ridge"``
            (the penalty chosen by leave-one-out on the fold, :data:`RIDGE_GRID`), ``"forest"``
            (extremely randomised trees, whose Shapley values are exact:
            :mod:`vqa_shap.estimators.forest_surrogate`) or ``"stack"`` (ridge and forest blended).
        size_effects: add the fold's mean residual per coalition size to the surrogate.
        residual: ``"msr"`` (unbiased) or ``"kernel"``.
        folds: cross-fitting folds (by sampling unit): each fold's residual is estimated with the
            surrogate fitted on all the others, so more folds fit it on more rows.
    """

    name = "regression_adjusted"
    options = {"sizes": "uniform", "text_per_video": 1, "order": 1, "ridge": 1e-3, "residual": "msr",
               "size_effects": False, "fit": "kernel", "folds": 2}

    def _surrogate(self, z, values, weights, v_empty, v_full, seed: int, fit: str | None = None):
        """Fit on one fold: ``(Shapley values of the surrogate [n, K], predict(coalitions) -> [B, K])``;
        with ``size_effects`` the fit's residual mean per coalition size is added (zero at ∅ and N)."""
        phi, predict = self._player_surrogate(z, values, weights, v_empty, v_full, seed, fit or self.config["fit"])
        if not self.config["size_effects"]:
            return phi, predict
        # A function of |S| alone treats every player alike, so its Shapley values are all
        # (h(n) − h(0))/n = 0: the surrogate's values do not change, while the MSR residual loses
        # the mean of each size, which a rough game's values swing by far more than any player moves them.
        n = z.shape[1]
        size_mean = _size_means(z.sum(axis=1).round().astype(int), values - predict(z), n)
        return phi, lambda at: predict(at) + size_mean[np.asarray(at).sum(axis=1).round().astype(int)]

    def _player_surrogate(self, z, values, weights, v_empty, v_full, seed: int, fit: str):
        n = z.shape[1]
        order = int(self.config["order"])
        if order == 0:
            return np.zeros((n, len(v_empty))), lambda at: np.broadcast_to(v_empty, (len(at), len(v_empty)))
        if fit not in FITS:
            raise EstimatorError(f"{self.name}: fit must be one of {', '.join(FITS)}, got {fit!r}")
        if fit == "forest":
            from vqa_shap.estimators.forest_surrogate import forest_surrogate

            return forest_surrogate(z, values, seed)
        if fit == "stack":
            return self._stacked_surrogate(z, values, weights, v_empty, v_full, seed)
        if order == 1 and fit == "ridge":
            return self._ridge_surrogate(z, values, v_empty)
        if order == 1:
            beta = solve_shapley_regression(z > 0.5, values, weights, v_empty, v_full).values
            return beta, lambda at: v_empty[None, :] + at @ beta
        if order != 2:
            raise EstimatorError(f"{self.name}: order must be 0, 1 or 2, got {self.config['order']!r}")
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

    def _stacked_surrogate(self, z, values, weights, v_empty, v_full, seed: int):
        """``w · ridge + (1 − w) · forest``, ``w`` chosen by two-fold cross-validation inside the fold:
        a smooth game keeps its main effects, a rough one its trees (Shapley values are linear, so the
        blend's are the blend of theirs)."""
        half = np.random.default_rng([seed, 7]).random(len(z)) < 0.5
        held_out = {}
        for fit in ("ridge", "forest"):
            held_out[fit] = np.empty_like(values)
            for train, test in ((half, ~half), (~half, half)):
                _, predict = self._surrogate(z[train], values[train], weights[train], v_empty, v_full, seed, fit)
                held_out[fit][test] = predict(z[test])
        gap = held_out["ridge"] - held_out["forest"]
        w = float(np.clip(((values - held_out["forest"]) * gap).sum() / max((gap * gap).sum(), 1e-300), 0.0, 1.0))
        phi_r, ridge = self._player_surrogate(z, values, weights, v_empty, v_full, seed, "ridge")
        phi_f, forest = self._player_surrogate(z, values, weights, v_empty, v_full, seed, "forest")
        return w * phi_r + (1 - w) * phi_f, lambda at: w * ridge(at) + (1 - w) * forest(at)

    def _ridge_surrogate(self, z, values, v_empty):
        """Main effects by ridge least squares, the penalty chosen by leave-one-out on the fold.

        With F ≈ 160 players and a few thousand rows, an unpenalised fit learns the rows' noise (a
        trained model's scores swing with which words are masked); the leave-one-out error picks
        how much to shrink, so smooth games keep their main effects and rough ones are not overfitted.
        With ``size_effects`` the fit is of the values less their size means (added back by the caller).
        """
        n = z.shape[1]
        y = values - v_empty[None, :]
        if self.config["size_effects"]:
            size = z.sum(axis=1).round().astype(int)
            y = y - _size_means(size, y, n)[size]
        beta, intercept, _ = _ridge_loo(z, y)
        return beta, lambda at: v_empty[None, :] + intercept[None, :] + at @ beta

    def _estimate(self, game: Game, budget: int, seed: int, contrasts, fit_rows=None) -> RawEstimate:
        """``fit_rows``: ``(coalitions, values)`` scored before this run (``auto``'s pilot), added to
        every fold's surrogate fit. They were drawn independently of this run's design (another seed),
        so each fold's residual estimate stays unbiased given them."""
        n = game.n_players
        v_empty, v_full = game.value_empty(), game.value_full()
        if n == 1 or (n <= 20 and (budget - 2) // 2 >= 2 ** (n - 1) - 1):
            return super()._estimate(game, budget, seed, contrasts)
        coalitions, values, q, units = self._design(game, budget, seed, self._size_probabilities(n), _size_classes(n, []))
        s_all = coalitions.sum(axis=1)
        weights = 1.0 / (s_all * (n - s_all) * q[s_all - 1])
        weights /= weights.mean()
        z = coalitions.astype(np.float64)
        # MSR coefficient of every row and player: ([i∈S]/s − [i∉S]/(n−s)) / q(s)
        msr = (z / s_all[:, None] - (1.0 - z) / (n - s_all)[:, None]) / q[s_all - 1][:, None]
        folds = int(self.config["folds"])
        if folds < 2:
            raise EstimatorError(f"{self.name}: folds must be at least 2 (cross-fitting), got {folds}")
        if len(np.unique(units)) < folds:
            raise EstimatorError(f"{self.name}: {len(np.unique(units))} sampling units at budget {budget} cannot fill "
                                 f"{folds} folds; raise the budget or lower folds")
        fold = units % folds
        ends = np.array([np.zeros(n), np.ones(n)])
        total = np.zeros((n, values.shape[1]))
        per_unit = []
        if self.config["residual"] not in ("msr", "kernel"):
            raise EstimatorError(f"{self.name}: residual must be 'msr' or 'kernel', got {self.config['residual']!r}")
        if self.config["residual"] == "kernel":
            if fit_rows is not None:
                raise EstimatorError(f"{self.name}: earlier rows join the surrogate's fit with residual='msr' only")
            return self._kernel_residual(coalitions, z, values, weights, units, fold, v_empty, v_full, contrasts, seed)
        extra_z, extra_values = (np.zeros((0, n)), np.zeros((0, values.shape[1]))) if fit_rows is None else fit_rows
        extra_z = np.asarray(extra_z, dtype=np.float64)
        for held in range(folds):
            fit, test = fold != held, fold == held
            phi_f, predict = self._surrogate(np.vstack([z[fit], extra_z]), np.vstack([values[fit], extra_values]),
                                             np.concatenate([weights[fit], np.ones(len(extra_z))]), v_empty, v_full,
                                             seed + held)
            resid = values[test] - predict(z[test])                       # [R_test, K]
            f_empty, f_full = predict(ends)
            rows = msr[test][:, :, None] * resid[:, None, :]              # [R_test, n, K]
            _, inverse = np.unique(units[test], return_inverse=True)
            sums = np.zeros((inverse.max() + 1, n, values.shape[1]))
            np.add.at(sums, inverse, rows)
            n_test = int(test.sum())
            exact_part = phi_f + (((v_full - f_full) - (v_empty - f_empty)) / n)[None, :]
            total += (exact_part + sums.sum(axis=0) / n_test) / folds
            per_unit.append(sums * (sums.shape[0] / n_test) / folds)     # unit's share, scaled to a mean
        stderr = contrast_stderr = None
        if min(len(c) for c in per_unit) > 1:
            # each fold's MSR mean has variance var(unit)/U_fold; the folds are independent
            stderr = np.sqrt(sum(np.var(c, axis=0, ddof=1) / len(c) for c in per_unit))
            if contrasts is not None:
                contrast_stderr = np.sqrt(sum(np.var(np.einsum("rn,unk->urk", contrasts, c), axis=0, ddof=1) / len(c)
                                              for c in per_unit))
        return RawEstimate(values=total, stderr=stderr, contrast_stderr=contrast_stderr)

    def _kernel_residual(self, coalitions, z, values, weights, units, fold, v_empty, v_full, contrasts, seed: int):
        """Cross-fit: the surrogate's exact values plus KernelSHAP on the other fold's residual game."""
        n = z.shape[1]
        ends = np.array([np.zeros(n), np.ones(n)])
        total, var, cvar = 0.0, 0.0, 0.0
        folds = int(fold.max()) + 1
        for held in range(folds):
            fit, test = fold != held, fold == held
            phi_f, predict = self._surrogate(z[fit], values[fit], weights[fit], v_empty, v_full, seed + held)
            f_empty, f_full = predict(ends)
            ks = solve_shapley_regression(coalitions[test], values[test] - predict(z[test]), weights[test],
                                          v_empty - f_empty, v_full - f_full, units=units[test], contrasts=contrasts)
            total = total + (phi_f + ks.values) / folds
            var = var + ks.stderr ** 2 / folds ** 2
            if contrasts is not None:
                cvar = cvar + ks.contrast_stderr ** 2 / folds ** 2
        return RawEstimate(values=total, stderr=np.sqrt(var), contrast_stderr=None if contrasts is None else np.sqrt(cvar))


class CentredMSREstimator(RegressionAdjustedEstimator):
    """Regression-adjusted MSR for rough games: ``regression_adjusted`` with a ridge surrogate
    (penalty by leave-one-out) and per-size means, on groups of 8 coalitions sharing a video part.

    A trained model's option scores swing with *which* words are masked far more than any one word
    moves them, so permutation paths see large marginal contributions of every word and average them
    slowly. Here every scored coalition informs every player (maximum sample reuse), and the swing
    common to all coalitions of a size is taken out first; the surrogate is fitted on the other fold,
    so the estimate stays unbiased. On games that are close to additive over many cheap text flips
    (``video_like``) the path estimators win; docs/estimators.md has both.
    """

    name = "centred_msr"
    options = {**RegressionAdjustedEstimator.options, "fit": "ridge", "size_effects": True, "text_per_video": 8}


class ForestMSREstimator(CentredMSREstimator):
    """``centred_msr`` with a forest surrogate: extremely randomised trees on the other fold's coalitions,
    whose Shapley values are exact (:mod:`vqa_shap.estimators.forest_surrogate`).

    A trained model's answer jumps when an evidence word and its frames are present together; trees
    learn such jumps and a linear surrogate cannot, so MSR is left a much smaller residual. Unbiased
    whatever the forest learns (cross-fit, as every ``regression_adjusted`` surrogate)."""

    name = "forest_msr"
    options = {**CentredMSREstimator.options, "fit": "forest"}


def _ridge_loo(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Ridge least squares of ``y`` on ``z`` with an intercept, the penalty (:data:`RIDGE_GRID` × the
    mean squared singular value) chosen by the closed-form leave-one-out error: ``(beta, intercept,
    leave-one-out squared error)``."""
    n = z.shape[1]
    x_mean, y_mean = z.mean(axis=0), y.mean(axis=0)
    u, sv, vt = np.linalg.svd(z - x_mean, full_matrices=False)
    uty = u.T @ (y - y_mean)
    best = None
    for penalty in RIDGE_GRID * (sv ** 2).sum() / n:
        shrink = sv ** 2 / (sv ** 2 + penalty)
        fitted = u @ (shrink[:, None] * uty)
        leverage = (u ** 2) @ shrink + 1.0 / len(z)
        loo = float((((y - y_mean - fitted) / (1.0 - leverage)[:, None]) ** 2).sum())
        if best is None or loo < best[0]:
            best = (loo, vt.T @ ((sv / (sv ** 2 + penalty))[:, None] * uty))
    beta = best[1]
    return beta, y_mean - x_mean @ beta, best[0]


def _size_means(sizes: np.ndarray, residual: np.ndarray, n: int, per_bin: int = 16) -> np.ndarray:
    """``[n+1, K]``: the mean residual of each coalition size 1..n−1, pooled over bins of adjacent sizes
    holding about ``per_bin`` rows each (a size's own few rows would make the means noise); 0 at ∅ and N."""
    inner = (sizes > 0) & (sizes < n)
    out = np.zeros((n + 1, residual.shape[1]))
    if not inner.any():
        return out
    order = np.argsort(sizes[inner], kind="stable")
    bins = max(1, int(inner.sum()) // per_bin)
    # bin edges at size quantiles, so sparse sizes share a bin with their neighbours
    edges = np.unique(np.quantile(sizes[inner][order], np.linspace(0, 1, bins + 1)[1:-1]).round().astype(int))
    bin_of_size = np.searchsorted(edges, np.arange(n + 1), side="right")
    which = bin_of_size[sizes[inner]]
    sums = np.zeros((len(edges) + 1, residual.shape[1]))
    np.add.at(sums, which, residual[inner])
    counts = np.bincount(which, minlength=len(edges) + 1)[:, None]
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    out[1:n] = means[bin_of_size[1:n]]
    return out
