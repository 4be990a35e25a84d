"""The one summary statistic of the speed and accuracy measurements: a mean and its 95% interval."""

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
