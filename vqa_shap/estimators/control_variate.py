"""Permutation sampling with a learned surrogate as a control variate (cross-fit, unbiased).

The paths are exactly those of ``permutation`` (shap's antithetic paths, same seed, same
coalitions). A cheap surrogate ``g`` (a one-hidden-layer network on the coalition bits) is fitted
to the marginal contributions along the scored paths; since ``g`` costs nothing to evaluate, its
Shapley values are estimated by Monte Carlo on thousands of its own paths. Each path then only has to estimate the Shapley
values of the residual game ``v − g``, whose marginal contributions vary far less when ``g``
follows ``v`` (ControlSHAP, Goldwasser & Hooker 2024, with a learned surrogate instead of a Taylor
expansion). Cross-fitting keeps it unbiased: the paths are split into folds, and each fold's
residual is taken against a surrogate fitted on the *other* folds only.
"""

from __future__ import annotations

import numpy as np

from vqa_shap.estimators.base import Estimator, EstimatorError, RawEstimate
from vqa_shap.estimators.permutation import PermutationEstimator, path_marginals, path_masks
from vqa_shap.game import Game

__all__ = ["ControlVariateEstimator", "Surrogate", "fit_surrogate"]


class Surrogate:
    """``g(S) = c + z·L + tanh(z·W + b)·A`` on coalition bits ``z`` (``[B, F]``) -> ``[B, K]``.

    Its Shapley values are estimated on its own antithetic paths (:meth:`shapley`); along a path
    the hidden pre-activations are running sums, so a path costs ``O(F·H)``.
    """

    def __init__(self, c, linear, w, b, a):
        self.c, self.linear, self.w, self.b, self.a = c, linear, w, b, a

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return self.c + z @ self.linear + np.tanh(z @ self.w + self.b) @ self.a

    def path_values(self, perms: np.ndarray) -> np.ndarray:
        """``[c, 2F+1, K]``: ``g`` on the coalitions of :func:`path_masks` (running sums, no masks)."""
        n = perms.shape[1]
        pre = np.concatenate([np.zeros((len(perms), 1, self.w.shape[1])), np.cumsum(self.w[perms], axis=1)], axis=1)
        lin = np.concatenate([np.zeros((len(perms), 1, self.linear.shape[1])),
                              np.cumsum(self.linear[perms], axis=1)], axis=1)
        fwd = self.c + lin + np.tanh(pre + self.b) @ self.a                   # first j players on, j = 0..n
        full_pre, full_lin = pre[:, -1:], lin[:, -1:]
        bwd = self.c + (full_lin - lin[:, 1:]) + np.tanh(full_pre - pre[:, 1:] + self.b) @ self.a  # first j off
        return np.concatenate([fwd, bwd], axis=1)[:, : 2 * n + 1]

    def shapley(self, n_paths: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Monte Carlo Shapley values of ``g`` and their standard errors over ``n_paths`` antithetic
        paths (unbiased; exactly efficient)."""
        n = self.w.shape[0]
        chunk = max(2, int(4e6 // max(1, n * (self.w.shape[1] + self.a.shape[1]))))
        total, total_sq, done = 0.0, 0.0, 0
        while done < n_paths:
            c = min(chunk, n_paths - done)
            perms = np.argsort(rng.random((c, n)), axis=1)
            marg = path_marginals(perms, self.path_values(perms))
            total = total + marg.sum(axis=0)
            total_sq = total_sq + (marg * marg).sum(axis=0)
            done += c
        mean = total / done
        var = np.maximum(total_sq / done - mean * mean, 0.0) / max(done - 1, 1)
        return mean, np.sqrt(var)


def fit_surrogate(paths: np.ndarray, values: np.ndarray, hidden: int, seed: int, steps: int = 300,
                  weight_decay: float = 1e-4) -> Surrogate:
    """Fit a :class:`Surrogate` to the steps of scored paths: coalitions ``paths`` ``bool[P, L, F]``
    with values ``[P, L, K]``; the loss is the squared error of the differences between neighbours
    on a path (the marginal contributions the control variate must follow, not the values; Adam,
    full batch, differences standardised per output)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    n, k = paths.shape[2], values.shape[2]
    x = torch.as_tensor(paths.astype(np.float32))
    diffs = np.diff(values, axis=1)
    sd = diffs.reshape(-1, k).std(axis=0) + 1e-8
    t = torch.as_tensor((diffs / sd).astype(np.float32))
    params = {
        "linear": torch.zeros(n, k),
        "w": torch.randn(n, hidden, generator=gen) * (1.0 / np.sqrt(max(n, 1))),
        "b": torch.zeros(hidden), "a": torch.randn(hidden, k, generator=gen) * 0.1,
    }
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(params.values(), lr=0.03)
    for _ in range(steps):
        opt.zero_grad()
        g = x @ params["linear"] + torch.tanh(x @ params["w"] + params["b"]) @ params["a"]
        loss = ((g[:, 1:] - g[:, :-1] - t) ** 2).mean() + weight_decay * (params["w"].pow(2).sum() + params["a"].pow(2).sum())
        loss.backward()
        opt.step()
    p = {name: v.detach().double().numpy() for name, v in params.items()}
    surrogate = Surrogate(np.zeros(k), p["linear"] * sd, p["w"], p["b"], p["a"] * sd)
    surrogate.c = (values.reshape(-1, k) - surrogate(paths.reshape(-1, n))).mean(axis=0)
    return surrogate


class ControlVariateEstimator(Estimator):
    """``permutation``'s paths with a cross-fit learned surrogate as control variate.

    The ``P = budget // (2F+1)`` paths (identical to ``permutation``'s for the same seed) are split
    into ``folds`` folds. For fold f a :class:`Surrogate` ``g_f`` is fitted on the paths of the
    other folds; then ``φ = Σ_f (P_f / P) · (φ̂(g_f) + mean_{p∈f} Δ_p(v − g_f))`` where ``φ̂(g_f)``
    is the Monte Carlo value of ``g_f`` on ``surrogate_paths`` of its own paths (independent of the
    model's paths). Each term is unbiased whatever ``g_f`` (it is independent of fold f's paths),
    so φ is unbiased and exactly efficient. Standard errors: per fold over its paths, plus the
    surrogate's Monte Carlo error. Below two paths per fold it is plain ``permutation``.

    Options:
        folds: cross-fitting folds (each surrogate learns from ``(folds−1)/folds`` of the paths).
        hidden: hidden units of the surrogate (0: as many as the data supports, at most 32).
        surrogate_paths: antithetic paths on each surrogate for its Shapley values.
    """

    name = "control_variate"
    options = {"folds": 2, "hidden": 0, "surrogate_paths": 4000, "steps": 300}

    def min_budget(self, n_players: int) -> int:
        return 2 * n_players + 1

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        n = game.n_players
        n_perm = budget // (2 * n + 1)
        folds = int(self.config["folds"])
        if folds < 2:
            raise EstimatorError(f"{self.name}: folds must be >= 2, got {folds}")
        if n_perm < 2 * folds:
            return PermutationEstimator()._estimate(game, budget, seed, contrasts)
        perms = np.concatenate(list(PermutationEstimator()._orders(game, n_perm, seed, n_perm)))
        masks = path_masks(perms)                                          # [P, 2n+1, n]
        out = game(masks.reshape(-1, n)).reshape(n_perm, 2 * n + 1, -1)
        marg_v = path_marginals(perms, out)                                # [P, n, K]
        fold_of = np.arange(n_perm) % folds
        rng = np.random.default_rng([seed, 0xC0])
        values = np.zeros((n, out.shape[2]))
        var = np.zeros_like(values)
        contrast_var = None if contrasts is None else np.zeros((len(contrasts), out.shape[2]))
        for f in range(folds):
            held, train = fold_of == f, fold_of != f
            hidden = int(self.config["hidden"]) or int(np.clip(train.sum() * (2 * n + 1) // (4 * n), 2, 32))
            g = fit_surrogate(masks[train], out[train], hidden, seed=int(rng.integers(2**31)), steps=int(self.config["steps"]))
            phi_g, se_g = g.shapley(int(self.config["surrogate_paths"]), rng)
            resid = marg_v[held] - path_marginals(perms[held], g.path_values(perms[held]))  # [P_f, n, K]
            share = held.sum() / n_perm
            values += share * (phi_g + resid.mean(axis=0))
            var += share**2 * (resid.var(axis=0, ddof=1) / held.sum() + se_g**2)
            if contrasts is not None:
                cr = np.einsum("rn,pnk->prk", contrasts, resid)
                contrast_var += share**2 * (cr.var(axis=0, ddof=1) / held.sum())
        return RawEstimate(values=values, stderr=np.sqrt(var),
                           contrast_stderr=None if contrasts is None else np.sqrt(contrast_var))
