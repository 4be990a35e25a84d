"""vqa-shap: Shapley attributions of video, question and answer features for video QA models.

Importing the package is cheap and has no side effects; heavy modules (torch, transformers,
datasets) are imported by the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "shapley", "Estimate"]


def __getattr__(name: str):
    # Lazy public API: `vqa_shap.shapley` and `vqa_shap.Estimate` live in vqa_shap.estimators.
    if name in ("shapley", "Estimate"):
        from vqa_shap import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'vqa_shap' has no attribute {name!r}")
