"""Shapley value estimators (:data:`ESTIMATORS`, one base class whose hot method is ``estimate``) and
the public entry point :func:`shapley`.

Importing this package is cheap (numpy only); estimator modules, shap and shapiq are imported when a
member is asked for. ``default`` is an alias of :data:`DEFAULT_ESTIMATOR` (``auto``: the rule of
:func:`vqa_shap.estimators.auto.choose`: paired KernelSHAP for small games; above, ``text_flips`` with
video players, ``cyclic`` without).
The members and how they compare: docs/estimators.md.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from vqa_shap.estimators.base import Estimate, Estimator
from vqa_shap.estimators.spec import parse_spec
from vqa_shap.registry import Registry

__all__ = ["ESTIMATORS", "DEFAULT_ESTIMATOR", "get_estimator", "shapley"]

_MEMBERS = {
    "exact": "vqa_shap.estimators.exact:ExactEstimator",
    "permutation": "vqa_shap.estimators.permutation:PermutationEstimator",
    "cyclic": "vqa_shap.estimators.permutation:CyclicPermutationEstimator",
    "shared_video": "vqa_shap.estimators.permutation:SharedVideoPermutationEstimator",
    "shap": "vqa_shap.estimators.shap_permutation:ShapPermutationEstimator",
    "kernel": "vqa_shap.estimators.kernel:KernelEstimator",
    "leverage": "vqa_shap.estimators.kernel:LeverageEstimator",
    "stratified": "vqa_shap.estimators.kernel:StratifiedLeverageEstimator",
    "regression_adjusted": "vqa_shap.estimators.regression_adjusted:RegressionAdjustedEstimator",
    "centred_msr": "vqa_shap.estimators.regression_adjusted:CentredMSREstimator",
    "forest_msr": "vqa_shap.estimators.regression_adjusted:ForestMSREstimator",
    "shapiq": "vqa_shap.estimators.shapiq_wrapper:ShapiqEstimator",
    "control_variate": "vqa_shap.estimators.control_variate:ControlVariateEstimator",
    "text_flips": "vqa_shap.estimators.text_flips:TextFlipsEstimator",
    "neyman_flips": "vqa_shap.estimators.text_flips:NeymanFlipsEstimator",
    "auto": "vqa_shap.estimators.auto:AutoEstimator",
}

#: the member ``"default"`` stands for (chosen by the estimator benchmark, scripts/bench_estimators.py)
DEFAULT_ESTIMATOR = "auto"

ESTIMATORS: Registry = Registry(
    "estimator", {**_MEMBERS, "default": _MEMBERS[DEFAULT_ESTIMATOR]}, base="vqa_shap.estimators.base:Estimator")


def get_estimator(name: str, **options) -> Estimator:
    """Instantiate the estimator that ``name`` names: a registered name or a spec
    ``"name:key=value,..."`` (:mod:`vqa_shap.estimators.spec`); keyword options override the spec's.

    Raises:
        RegistryError: unknown name (the message lists the valid names).
        EstimatorError: unknown option.
    """
    name, spec_options = parse_spec(name)
    return ESTIMATORS.get(name)(**{**spec_options, **options})


def shapley(
    value_fn: Callable[[np.ndarray], np.ndarray],
    n_features: int,
    budget: int,
    estimator: str = "default",
    seed: int = 0,
    batch_size: int = 64,
    groups: Sequence[Sequence[int]] | None = None,
    *,
    video_features: Sequence[int] | int | None = None,
    tol: float | None = None,
    tol_groups: Sequence[Sequence[int]] | None = None,
    progress: bool = False,
    **options,
) -> Estimate:
    """Shapley values of the outputs of ``value_fn``.

    Args:
        value_fn: maps a coalition matrix ``bool[B, n_features]`` (True = feature kept) to
            ``float[B, K]`` scores (``float[B]`` means K = 1). One call scores all K outputs.
        n_features: F.
        budget: most evaluations of ``value_fn`` rows (the exact estimator needs ``2^P``).
        estimator: a name in :data:`ESTIMATORS` (``"default"``: see :data:`DEFAULT_ESTIMATOR`).
        seed: random seed (a private RNG; the global NumPy state is not touched).
        batch_size: most coalitions per ``value_fn`` call.
        groups: optional disjoint lists of feature indices, each one player; features in no group
            stay present. ``Estimate.values`` then has one row per group.
        video_features: which features are video (indices or a leading count), for batching by
            video part and for the compute cost model.
        tol: adaptive budget: stop once every standard error (or those of ``tol_groups`` sums) is
            below ``tol``, or the budget is spent.
        tol_groups: lists of player indices whose summed values ``tol`` watches (e.g. modalities).
        progress: show a progress bar over batches.
        **options: estimator options (e.g. ``sizes="uniform"`` for ``kernel``).

    Returns:
        :class:`Estimate` with ``values`` (players × K), ``stderr``, ``evaluations``, ...

    Example:
        >>> import numpy as np, vqa_shap
        >>> est = vqa_shap.shapley(lambda m: m @ np.array([[1.0], [2.0], [3.0]]), 3, budget=8, estimator="exact")
        >>> est.values[:, 0].round(6).tolist()
        [1.0, 2.0, 3.0]
    """
    from vqa_shap.game import Game

    game = Game(value_fn, n_features, batch_size=batch_size, groups=groups,
                video_features=video_features, progress=progress)
    return get_estimator(estimator, **options).estimate(game, budget, seed, tol=tol, tol_groups=tol_groups)
