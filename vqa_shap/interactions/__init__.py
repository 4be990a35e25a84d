"""Pairwise Shapley interactions over the Game (see :mod:`vqa_shap.interactions.index`)."""

from vqa_shap.interactions.index import (
    APPROXIMATORS, INDEX, InteractionError, Interactions, exact_interactions, interactions, mobius,
    modality_groups, pair_list, shapiq_interactions, top_players,
)

__all__ = [
    "APPROXIMATORS", "INDEX", "InteractionError", "Interactions", "exact_interactions", "interactions",
    "mobius", "modality_groups", "pair_list", "shapiq_interactions", "top_players",
]
