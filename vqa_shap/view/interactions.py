"""Interactions configs (``vqa-shap interactions``) on the viewer's question pages.

An interactions row is shown on the question page of the attributions row of the same question,
model, benchmark and variant: a frame × word heat map of its pairwise values when the players include
frames and other players, else player × player. Loading and matching happen here; the page draws them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from vqa_shap.schema.records import Attribution
from vqa_shap.view.data import matrix

#: Columns that make a config an interactions config.
INTERACTION_KEYS = ("players", "pairs", "interactions")


def load_interactions(folder: Path | str, config: str) -> list | None:
    """The typed rows (:class:`~vqa_shap.interactions.record.InteractionRecord`) of ``config``, or
    ``None`` when it is not an interactions config (it lacks the :data:`INTERACTION_KEYS` columns)."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.interactions.record import InteractionRecord

    dataset = hub.load_config(folder, config)
    if not all(k in dataset.column_names for k in INTERACTION_KEYS):
        return None
    return [InteractionRecord.from_row(r) for r in dataset]


def _kind(record, player) -> str:
    """``v``/``q``/``a`` when every feature of the player has that modality, else ``m`` (mixed)."""
    kinds = {record.features[i].modality[0] for i in player.features if 0 <= i < len(record.features)}
    return kinds.pop() if len(kinds) == 1 else "m"


def interaction_detail(config: str, record) -> dict[str, Any] | None:
    """What a question page draws of one interactions row (``None`` for an error row)."""
    if record.error is not None or not record.pairs:
        return None
    return {"config": config, "index": record.index, "kind": record.players_kind,
            "players": [[p.name, _kind(record, p)] for p in record.players],
            "pairs": [[int(i), int(j)] for i, j in record.pairs], "values": matrix(record.interactions)}


def match(interactions: Mapping[str, Sequence], attributions: Mapping[str, Sequence[Attribution]]
          ) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], list[str]]:
    """Attach every interactions row to the attributions rows of the same question, model, benchmark
    and variant (variants share qids, so the qid alone is not enough).

    Returns:
        ``(by_config, unmatched)``: attributions config -> qid -> its details (one per
        interactions config), and the interactions configs none of whose rows matched.
    """
    where: dict[tuple[str, str, str, str], list[str]] = {}
    for name, rows in attributions.items():
        for a in rows:
            where.setdefault((a.qid, a.model, a.benchmark, a.variant), []).append(name)
    by_config: dict[str, dict[str, list[dict[str, Any]]]] = {}
    unmatched = []
    for name, rows in interactions.items():
        hits = 0
        for r in rows:
            targets = where.get((r.qid, r.model, r.benchmark, r.variant), [])
            hits += bool(targets)
            detail = interaction_detail(name, r) if targets else None
            for target in targets if detail is not None else ():
                by_config.setdefault(target, {}).setdefault(r.qid, []).append(detail)
        if not hits:
            unmatched.append(name)
    return by_config, unmatched
