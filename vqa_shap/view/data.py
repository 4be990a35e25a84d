"""JSON-ready records of the viewer: config summaries, question-list rows and per-question details.

Everything the pages show is computed here, in Python, from typed
:class:`~vqa_shap.schema.records.Attribution` records; the pages only draw it. Modality metrics come from
:mod:`vqa_shap.analysis.metrics` (the same definitions and intervals as ``vqa-shap metrics``).
Numbers are rounded to :data:`DIGITS` significant digits to keep the data files small; a
non-finite value becomes ``null`` (NaN) or the string ``"inf"`` (a stderr from fewer than two
samples), since JSON has neither.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from vqa_shap.analysis import metrics as M
from vqa_shap.schema.records import Attribution, Question

#: Significant digits of every number written into the site's data.
DIGITS = 5
#: Columns of a question-list row (the list pages hold rows as arrays, in this order).
LIST_COLUMNS = ("qid", "benchmark", "task", "variant", "answer", "prediction", "status", "n_features",
                "mc_v", "mc_q", "mc_a", "relative_error")
#: Metric keys shown in the index table, with their intervals.
TABLE_KEYS = ("mc_v", "mc_q", "mc_a", "pf_v", "pf_q", "pf_a")


def number(value: Any) -> float | str | None:
    """A float rounded to :data:`DIGITS` significant digits; NaN/None -> ``None``, ±inf -> ``"inf"``/``"-inf"``."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(f"{value:.{DIGITS}g}")


def matrix(values: np.ndarray | None) -> list[list[Any]] | None:
    """A 2-D array as nested lists of :func:`number` values (``None`` stays ``None``)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return []
    if np.isfinite(arr).all():  # the common case, vectorised: format once per value
        flat = [float(s) for s in np.char.mod(f"%.{DIGITS}g", arr.ravel())]
        k = arr.shape[1]
        return [flat[i:i + k] for i in range(0, len(flat), k)]
    return [[number(v) for v in row] for row in arr]


def status(attr: Attribution) -> str:
    """``error``, ``correct``, ``incorrect`` or ``unknown`` (no prediction recorded, or no known answer)."""
    if attr.error is not None:
        return "error"
    if attr.prediction is None or attr.answer is None:
        return "unknown"
    return "correct" if attr.prediction == attr.answer else "incorrect"


def question_metrics(attrs: Sequence[Attribution]) -> list[M.QuestionMetrics | None]:
    """Per row, its :func:`vqa_shap.analysis.metrics.question_metrics` (``None`` for error rows).

    The list shows the values only, so the rows' stderr is left out: propagating it is most of the
    cost, and the config's errors come from :func:`config_summary`. A row without a known answer has
    no metrics either (its signals need the ground truth).
    """
    return [None if a.error is not None or a.answer is None else M.question_metrics(replace(a, stderr=None))
            for a in attrs]


def list_rows(attrs: Sequence[Attribution], per_q: Sequence[M.QuestionMetrics | None]) -> list[list[Any]]:
    """One row per attribution, columns :data:`LIST_COLUMNS` (MC of the ground-truth signal)."""
    rows = []
    for attr, qm in zip(attrs, per_q):
        mc = qm.signal("Ground Truth").mc if qm is not None else (None, None, None)
        rows.append([attr.qid, attr.benchmark, attr.task, attr.variant, attr.answer,
                     attr.prediction, status(attr), attr.n_features, *(number(v) for v in mc),
                     number(attr.relative_error)])
    return rows


def error_label(relative_error: float | None) -> str:
    """How a question's estimated relative error (the row's ``relative_error``) reads: ``exact`` (0),
    ``n/a`` (None: the estimator has no standard errors), ``∞`` (fewer than two samples), else the
    value to two significant digits."""
    if relative_error is None or math.isnan(relative_error):
        return "n/a"
    if relative_error == 0:
        return "exact"
    return "∞" if math.isinf(relative_error) else f"{relative_error:.2g}"


def near_zero(values: np.ndarray, stderr: np.ndarray | None) -> list[list[int]] | None:
    """Per player and option, 1 where the value is within two standard errors of zero
    (``|φ| <= 2 stderr``: indistinguishable from no effect at this budget), else 0; None without stderr."""
    if stderr is None:
        return None
    values, stderr = np.asarray(values, dtype=np.float64), np.asarray(stderr, dtype=np.float64)
    return (np.abs(values) <= 2 * stderr).astype(int).tolist()


def config_summary(name: str, attrs: Sequence[Attribution], settings: Mapping[str, Any], *,
                   bootstrap: int, seed: int = 0) -> dict[str, Any]:
    """The index table's entry of one config: identity, counts, accuracy and every signal's metrics.

    ``metrics[signal][key] = [mean, low, high]`` (bootstrap interval; ``se`` where the attributions
    carry stderr), from :func:`vqa_shap.analysis.metrics.subset_metrics`.
    """
    subsets = M.subset_metrics(attrs, bootstrap=bootstrap, seed=seed)
    first = next((a for a in attrs if a.error is None), attrs[0] if attrs else None)
    summary: dict[str, Any] = {
        "name": name,
        "model": _single(a.model for a in attrs) or settings.get("model") or "",
        "benchmark": _single(a.benchmark for a in attrs),
        "variant": _single(a.variant for a in attrs),
        "n_rows": len(attrs),
        "n_errors": sum(a.error is not None for a in attrs),
        "estimator": first.estimator if first else "",
        "budget": first.budget if first else 0,
        "has_stderr": any(a.stderr is not None for a in attrs),
        "bootstrap": bootstrap,
        "metrics": {},
    }
    for sub in subsets:
        ci = sub.ci or {}
        entry = {key: [number(sub.values.get(key)), *(number(v) for v in ci.get(key, (None, None)))]
                 for key in TABLE_KEYS}
        entry["accuracy"] = [number(sub.accuracy), *(number(v) for v in ci.get("accuracy", (None, None)))]
        entry["se"] = None if sub.se is None else {k: number(sub.se.get(k)) for k in TABLE_KEYS}
        entry["n"] = sub.n_questions
        summary["metrics"][sub.signal] = entry
    return summary


def _single(values) -> str:
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else ", ".join(distinct)


def question_detail(attr: Attribution, question: Question | None, frames: Sequence[str] | None,
                    note: str | None) -> dict[str, Any]:
    """Everything a question page draws for one attribution row.

    Args:
        attr: the row.
        question: its question (verbatim text and options), when a questions folder was given.
        frames: one thumbnail path (relative to the site) per video player, or ``None``.
        note: why the frames are placeholders.
    """
    detail: dict[str, Any] = {
        "qid": attr.qid, "benchmark": attr.benchmark, "task": attr.task, "variant": attr.variant,
        "model": attr.model, "answer": attr.answer, "prediction": attr.prediction,
        "status": status(attr), "error": attr.error,
        "features": [[f.name, f.modality[0], f.option, f.input, number(f.time)] for f in attr.features],
        "phi": matrix(attr.shapley) if attr.error is None else [],
        "stderr": matrix(attr.stderr),
        "value_full": None if attr.value_full is None else [number(v) for v in attr.value_full],
        "value_empty": None if attr.value_empty is None else [number(v) for v in attr.value_empty],
        "relative_error": number(attr.relative_error), "error_label": error_label(attr.relative_error),
        "near_zero": near_zero(attr.shapley, attr.stderr) if attr.error is None else None,
        "estimator": attr.estimator, "budget": attr.budget, "evaluations": attr.evaluations,
        "seed": attr.seed, "runtime_s": number(attr.runtime_s),
        "frames": list(frames) if frames is not None else None, "frame_note": note,
    }
    if question is not None:
        detail["text"] = question.question
        detail["options"] = list(question.options)
    return detail
