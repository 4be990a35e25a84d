"""The summary statistics of the speed and accuracy measurements: a mean and its 95% interval, and the
actual error of estimated values against reference values."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its 95% Student-t confidence interval.

    The half-width is NaN for a single value (no spread can be estimated from one, and 0.0 would read
    as certainty); both are NaN for no values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float("nan")
    from scipy.stats import t

    return float(x.mean()), float(t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def relative_l2_error(values: np.ndarray, reference: np.ndarray) -> float:
    """``‖values − reference‖ / ‖reference‖`` (Frobenius; divided by 1 for a zero reference): the *actual*
    error of estimated values against reference ones, unlike
    :func:`vqa_shap.estimators.base.relative_error`, an estimator's own estimate of it from its standard errors."""
    reference = np.asarray(reference, dtype=np.float64)
    norm = float(np.linalg.norm(reference))
    return float(np.linalg.norm(np.asarray(values, dtype=np.float64) - reference) / (norm if norm > 0 else 1.0))
