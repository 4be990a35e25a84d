"""The array arithmetic of the modality metrics: one signal's metrics and their gradients, the
delta-method error propagation, NaN-aware means and bootstrap intervals.

Part of :mod:`vqa_shap.analysis.metrics` (its docstring defines the metrics); pure numpy on arrays.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np


def dominant(values: Sequence[float]) -> int | None:
    """Index of the largest value (the first on ties), ``None`` when any is NaN."""
    arr = np.asarray(values, dtype=np.float64)
    if np.isnan(arr).any():
        return None
    return int(np.argmax(arr))  # first maximum, as the paper's argmax


def signal_metrics(s: np.ndarray, masks: np.ndarray, paper_compat: bool):
    """Metrics of one signal vector s[F]; returns (groups dict, md, pfd, gradients dict).

    Gradients: ``{group: 3×F array of ∂metric_m/∂s}`` for :data:`SE_GROUPS`.
    """
    n_features = s.shape[0]
    a = np.abs(s)
    sign = np.sign(s)
    counts = masks.sum(axis=1).astype(np.float64)
    present = counts > 0
    sums = masks @ a
    total = sums.sum()
    per_feature = np.where(present, sums / np.where(present, counts, 1.0), 0.0)
    denom = per_feature.sum()
    nan3 = np.full(3, np.nan)

    if total > 0:
        mc = sums / total
        pf = per_feature / denom
        # ∂MC_m/∂s_j = sign_j ([j∈m]·T − A_m) / T²
        g_mc = sign[None, :] * (masks * total - sums[:, None]) / total**2
        inv_n = np.where(masks, 1.0 / np.where(counts > 0, counts, 1.0)[:, None], 0.0).sum(axis=0)
        # ∂PF_m/∂s_j = sign_j / n_{m(j)} · ([j∈m]·D − a_m) / D²
        g_pf = (sign * inv_n)[None, :] * (masks * denom - per_feature[:, None]) / denom**2
    else:
        mc, pf = nan3.copy(), nan3.copy()
        g_mc = g_pf = np.full((3, n_features), np.nan)

    with np.errstate(invalid="ignore", divide="ignore"):
        nonneg = masks @ (s >= 0).astype(np.float64)
        ratio = np.where(present, nonneg / np.where(present, counts, 1.0), np.nan)
        if paper_compat:
            # The paper divides the answer count by the total number of features.
            ratio[2] = nonneg[2] / n_features if n_features else np.nan
        mean = np.where(present, (masks @ s) / np.where(present, counts, 1.0), np.nan)
        centred = s[None, :] - np.where(present, mean, 0.0)[:, None]
        var = np.where(present, (masks * centred**2).sum(axis=1) / np.where(present, counts, 1.0),
                       np.nan)
    safe_counts = np.where(present, counts, 1.0)[:, None]
    g_mean = masks / safe_counts
    g_var = masks * 2.0 * centred / safe_counts
    groups = {"mc": mc, "pf": pf, "ratio": ratio, "mean": mean, "var": var}
    gradients = {"mc": g_mc, "pf": g_pf, "mean": g_mean, "var": g_var}
    return groups, dominant(mc), dominant(pf), gradients


def propagate_errors(grad_s: np.ndarray, phi: np.ndarray, sigma: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Delta-method errors of metrics with gradients ``grad_s`` (M×F, w.r.t. one signal).

    The signal is s = ψ @ w with ψ = φ / n_c, n_c = |φ[j*_c, c]|, so
    ∂s_i/∂φ[j, c] = w_c ([i=j] / n_c − [j=j*_c] · sign(φ[j*_c, c]) · φ[i, c] / n_c²).
    """
    n_features, n_options = phi.shape
    scale = np.abs(phi).max(axis=0)
    argmax = np.abs(phi).argmax(axis=0)
    live = scale > 0
    safe = np.where(live, scale, 1.0)
    grad_s = np.nan_to_num(grad_s)
    # direct term: M×F×K
    grad_phi = grad_s[:, :, None] * (weights * live / safe)[None, None, :]
    # normaliser term on the max entry of each column
    inner = grad_s @ phi  # M×K: Σ_i g_i φ[i, c]
    top_sign = np.sign(phi[argmax, np.arange(n_options)])
    correction = weights * live * top_sign / safe**2 * inner  # M×K
    rows = np.arange(grad_s.shape[0])
    for c in range(n_options):
        grad_phi[rows, argmax[c], c] -= correction[:, c]
    # a value the metric does not depend on (zero gradient) adds nothing, even with an infinite
    # standard error (an estimator with a single independent sample reports inf)
    with np.errstate(invalid="ignore"):
        terms = np.where(grad_phi == 0, 0.0, (grad_phi**2) * (sigma**2)[None])
    return np.sqrt(terms.sum(axis=(1, 2)))


def nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean along ``axis`` ignoring NaN; NaN (without a warning) where every entry is NaN."""
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = (~np.isnan(x)).sum(axis=axis)
        return np.where(counts > 0, np.nansum(x, axis=axis) / np.maximum(counts, 1), np.nan)


def bootstrap_ci(values: np.ndarray, n_resamples: int, *, confidence: float = 0.95,
                 seed: int = 0) -> np.ndarray:
    """Percentile bootstrap intervals of column means (rows resampled with replacement).

    Args:
        values: n×M matrix (NaN entries are ignored in each resample's mean).
        n_resamples: number of resamples.
        confidence: interval level.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        M×2 array of (low, high); NaN where a column has no values.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0 or n_resamples <= 0:
        return np.full((values.shape[1], 2), np.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    means = nanmean(values[idx], axis=1)  # B×M
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN bounds
        lo = np.nanquantile(means, alpha, axis=0)
        hi = np.nanquantile(means, 1.0 - alpha, axis=0)
    return np.stack([lo, hi], axis=1)
