"""Pairwise Shapley interactions over the Game (see :mod:`vqa_shap.interactions.index`)."""


__all__ = [
]
