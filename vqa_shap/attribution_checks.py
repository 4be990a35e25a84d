"""Checks of the values in attributions rows, made where rows are loaded (a dataset, work files).

A NaN or infinite Shapley value (or option score) would otherwise flow into every result: metrics,
masks chosen by value, rankings, top-k players. A qid twice in one config would be counted twice.
Rows are refused at load with a message naming where they came from (folder and config, or file),
the qid, the field and the player. Error rows (``error`` set) are a run's own record of a question it
could not explain; they are kept as they are and not checked.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

from vqa_shap.errors import VqaShapError


class AttributionValueError(VqaShapError, ValueError):
    """An attributions row holds a value no result may be computed from (NaN, ±inf), or a qid repeats."""


def _bad(value: Any) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def check_values(where: str, qid: str, players: Sequence[str], shapley: Any,
                 value_full: Iterable[Any] | None = None, value_empty: Iterable[Any] | None = None) -> None:
    """Refuse a non-finite Shapley value (or option score) of one non-error row.

    Args:
        where: the rows' origin for the message (``"<folder>: config 'c'"``, a file path).
        qid: the row's qid.
        players: the feature (player) names, in the order of ``shapley``'s rows.
        shapley: φ[F][K] (nested sequences or an array).
        value_full, value_empty: the K option scores, or ``None``.

    Raises:
        AttributionValueError: naming ``where``, the qid, the field and the player (or option).
    """
    for i, values in enumerate(shapley if shapley is not None else ()):
        for k, value in enumerate(values):
            if _bad(value):
                name = players[i] if i < len(players) else f"#{i}"
                raise AttributionValueError(
                    f"{where}: qid {qid!r}: field 'shapley': player {name!r} (#{i}), option {k} has the value "
                    f"{value!r}; Shapley values must be finite numbers (re-explain the question, or fix the row)")
    for field, scores in (("value_full", value_full), ("value_empty", value_empty)):
        for k, value in enumerate(scores if scores is not None else ()):
            if _bad(value):
                raise AttributionValueError(f"{where}: qid {qid!r}: field {field!r}: option {k} has the value "
                                            f"{value!r}; option scores must be finite numbers")


def check_unique_qids(where: str, qids: Iterable[str]) -> None:
    """Refuse a qid that appears twice (one config holds one row per question).

    Raises:
        AttributionValueError: naming ``where`` and the repeated qids.
    """
    repeated = [q for q, n in Counter(qids).items() if n > 1]
    if repeated:
        raise AttributionValueError(f"{where}: field 'qid': {len(repeated)} qid(s) appear more than once "
                                    f"({', '.join(map(repr, repeated[:5]))}{' ...' if len(repeated) > 5 else ''}); "
                                    "one config holds one row per question")


def check_attributions(where: str, attributions: Sequence[Any]) -> None:
    """Check typed rows (:class:`~vqa_shap.schema.Attribution`): finite values, one row per qid."""
    check_unique_qids(where, (a.qid for a in attributions))
    for a in attributions:
        if a.error is None:
            check_values(where, a.qid, [f.name for f in a.features], a.shapley, a.value_full, a.value_empty)


def check_rows(where: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Check raw attributions rows (dicts, as in a dataset or a work file): finite values, one row per qid."""
    check_unique_qids(where, (r.get("qid") for r in rows))
    for row in rows:
        check_row(where, row)


def check_row(where: str, row: Mapping[str, Any]) -> None:
    """Check one raw attributions row (skipped when it is an error row)."""
    if row.get("error") is None:
        players = [f.get("name", "") for f in row.get("features") or ()]
        check_values(where, row.get("qid"), players, row.get("shapley"), row.get("value_full"),
                     row.get("value_empty"))
