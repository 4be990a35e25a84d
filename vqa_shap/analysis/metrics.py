"""Modality metrics of Shapley attributions: the paper's MC, PF, ratio, mean, var and dominance per
question and signal, plus standard errors (delta method) and bootstrap intervals of subset means.

Works on typed :class:`~vqa_shap.schema.records.Attribution` records (a feature's modality comes from the
record, never from a CSV layout). Definitions, the edge cases the paper's code leaves as NaN or a
crash, and the error propagation: docs/analysis.md#metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vqa_shap.analysis.metric_math import bootstrap_ci, nanmean, propagate_errors, signal_metrics
from vqa_shap.schema.records import MODALITIES, Attribution, known_answers, require_answer

#: The error propagation's earlier private name, kept importable.
_propagate = propagate_errors

#: Signals in the paper's row order, with the paper's labels.
SIGNALS = ("Ground Truth", "False", "All")
#: Metric groups with a value per modality, and the paper's column-group names.
GROUPS = ("mc", "pf", "ratio", "mean", "var")
GROUP_NAMES = {
    "mc": "Modality Contribution",
    "pf": "Per-Feature Contribution",
    "ratio": "Ratio",
    "mean": "Mean",
    "var": "Var",
    "md": "Modality Dominance",
    "pfd": "Per-Feature Dominance",
}
#: Groups that get propagated standard errors (the others are step functions).
SE_GROUPS = ("mc", "pf", "mean", "var")
#: Modality suffixes of the flat metric keys (``mc_v`` …) and the paper's column names.
MODALITY_KEYS = ("v", "q", "a")
MODALITY_LABELS = ("V", "Q", "A")

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class SignalMetrics:
    """One question's metrics for one signal; every group is a (V, Q, A) triple.

    Attributes:
        signal: ``"Ground Truth"``, ``"False"`` or ``"All"``.
        mc, pf, ratio, mean, var: the metric groups (see the module docstring).
        md, pfd: index into (V, Q, A) of the dominant modality, ``None`` when undefined.
        se: propagated standard errors of ``mc``, ``pf``, ``mean``, ``var`` (same keys), or
            ``None`` when the attribution has no stderr.
    """

    signal: str
    mc: Triple
    pf: Triple
    ratio: Triple
    mean: Triple
    var: Triple
    md: int | None
    pfd: int | None
    se: Mapping[str, Triple] | None = None

    def flat(self) -> dict[str, float]:
        """``{"mc_v": …, …, "var_a": …}``."""
        return {f"{g}_{k}": v for g in GROUPS for k, v in zip(MODALITY_KEYS, getattr(self, g))}


@dataclass(frozen=True)
class QuestionMetrics:
    """All signals' metrics of one attribution row.

    Attributes:
        qid, benchmark, task, variant, model: copied from the attribution.
        correct: whether the prediction equals the answer, ``None`` when there is no prediction.
        signals: one :class:`SignalMetrics` per entry of :data:`SIGNALS`, in that order.
    """

    qid: str
    benchmark: str
    task: str
    variant: str
    model: str
    correct: bool | None
    signals: tuple[SignalMetrics, ...]

    def signal(self, name: str) -> SignalMetrics:
        """The metrics of signal ``name`` (one of :data:`SIGNALS`)."""
        return self.signals[_signal_index(name)]


@dataclass(frozen=True)
class SubsetMetrics:
    """Means over a set of questions for one signal (the paper's "macro" average).

    Attributes:
        signal: one of :data:`SIGNALS`.
        n_questions: questions averaged (rows with ``error`` excluded).
        n_errors: rows excluded because their ``error`` is set.
        accuracy: fraction of correct predictions; ``None`` unless every question has one.
        values: ``{"mc_v": …, "pf_q": …, "ratio_a": …, "mean_*", "var_*", "md_v": fraction of
            questions dominated by V, …, "pfd_*"}``.
        ci: ``{key: (low, high)}`` bootstrap percentile intervals of ``values`` and
            ``accuracy`` (empty when no bootstrap was asked for).
        se: ``{key: standard error}`` of the ``mc``/``pf``/``mean``/``var`` means propagated
            from the attributions' stderr; ``None`` unless every question carries stderr.
        confidence: level of the intervals; ``n_bootstrap``: resamples drawn.
        n_unknown_answer: rows excluded because their question has no known answer (the signals
            are defined by the ground truth).
    """

    signal: str
    n_questions: int
    n_errors: int
    accuracy: float | None
    values: Mapping[str, float]
    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    se: Mapping[str, float] | None = None
    confidence: float = 0.95
    n_bootstrap: int = 0
    n_unknown_answer: int = 0


# ----------------------------------------------------------------------------------------------
# Per question


def normalise_columns(shapley: np.ndarray) -> np.ndarray:
    """ψ = φ / (per-column max |φ|); an all-zero column stays zero."""
    phi = np.asarray(shapley, dtype=np.float64)
    scale = np.abs(phi).max(axis=0) if phi.shape[0] else np.zeros(phi.shape[1])
    safe = np.where(scale > 0, scale, 1.0)
    return np.where(scale > 0, phi / safe, 0.0)


def signal_weights(n_options: int, answer: int) -> np.ndarray:
    """K×3 weights W so that the three signals are ``ψ @ W`` (columns in :data:`SIGNALS` order)."""
    if not 0 <= answer < n_options:
        raise ValueError(f"answer {answer} out of range for {n_options} options")
    w = np.zeros((n_options, 3))
    w[answer, 0] = 1.0
    if n_options > 1:
        w[:, 1] = 1.0 / (n_options - 1)
        w[answer, 1] = 0.0
    else:  # no false option: the False signal is empty (all zeros)
        w[:, 1] = 0.0
    w[:, 2] = 1.0 / n_options
    return w


def signals(attr: Attribution) -> np.ndarray:
    """The F×3 signal matrix (Ground Truth, False, All) of one attribution."""
    return normalise_columns(attr.shapley) @ signal_weights(attr.n_options, require_answer(attr, "the signals"))


def _modality_masks(attr: Attribution) -> np.ndarray:
    """3×F boolean masks of V, Q, A."""
    return np.stack([attr.modality_mask(m) for m in MODALITIES]) if attr.features else \
        np.zeros((3, 0), dtype=bool)


def question_metrics(attr: Attribution, *, paper_compat: bool = False) -> QuestionMetrics:
    """The metrics of one attribution row for the three signals.

    Args:
        attr: an attribution without ``error``.
        paper_compat: divide the answer Ratio by F, as the paper's code does.

    Raises:
        ValueError: the row has ``error`` set or no option columns.
    """
    if attr.error is not None:
        raise ValueError(f"attribution {attr.qid!r} has an error ({attr.error}); it has no metrics")
    if attr.n_options == 0:
        raise ValueError(f"attribution {attr.qid!r} has no option columns")
    weights = signal_weights(attr.n_options, require_answer(attr, "the metrics' signals"))
    sig = normalise_columns(attr.shapley) @ weights
    masks = _modality_masks(attr)
    out = []
    for k, name in enumerate(SIGNALS):
        groups, md, pfd, grads = signal_metrics(sig[:, k], masks, paper_compat)
        se = None
        if attr.stderr is not None:
            stacked = np.concatenate([grads[g] for g in SE_GROUPS])
            errs = propagate_errors(stacked, attr.shapley, attr.stderr, weights[:, k]).reshape(len(SE_GROUPS), 3)
            for i, g in enumerate(SE_GROUPS):
                errs[i][np.isnan(groups[g])] = np.nan
            se = {g: _triple(errs[i]) for i, g in enumerate(SE_GROUPS)}
        out.append(SignalMetrics(name, *(_triple(groups[g]) for g in GROUPS), md, pfd, se))
    correct = None if attr.prediction is None else bool(attr.prediction == attr.answer)
    return QuestionMetrics(attr.qid, attr.benchmark, attr.task, attr.variant, attr.model, correct,
                           tuple(out))


def _triple(values: Iterable[float]) -> Triple:
    v = [float(x) for x in values]
    return (v[0], v[1], v[2])


def _signal_index(name: str) -> int:
    try:
        return SIGNALS.index(name)
    except ValueError:
        raise ValueError(f"signal must be one of {SIGNALS}, got {name!r}") from None


def question_metrics_frame(metrics: Sequence[QuestionMetrics]):
    """The paper's per-question table: index (qid, signal), two-level columns (group, V/Q/A).

    Same layout as ``<name>_5000_joint_q_uid_metrics.csv`` (groups Modality Contribution …
    Var).
    """
    import pandas as pd

    columns = pd.MultiIndex.from_tuples(
        [(GROUP_NAMES[g], m) for g in GROUPS for m in MODALITY_LABELS])
    index, rows = [], []
    for qm in metrics:
        for sm in qm.signals:
            index.append((qm.qid, sm.signal))
            rows.append([v for g in GROUPS for v in getattr(sm, g)])
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index), columns=columns)


# ----------------------------------------------------------------------------------------------
# Over a subset


def metric_keys() -> list[str]:
    """Flat keys of :attr:`SubsetMetrics.values` in order."""
    return ([f"{g}_{k}" for g in GROUPS for k in MODALITY_KEYS]
            + [f"{d}_{k}" for d in ("md", "pfd") for k in MODALITY_KEYS])


def _per_question_matrix(metrics: Sequence[QuestionMetrics], k: int) -> np.ndarray:
    """n×(15+6) matrix: the 15 group values, then one-hot md and pfd (NaN rows when undefined)."""
    rows = []
    for qm in metrics:
        sm = qm.signals[k]
        row = [v for g in GROUPS for v in getattr(sm, g)]
        for dom in (sm.md, sm.pfd):
            row += [np.nan] * 3 if dom is None else [float(dom == i) for i in range(3)]
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(metrics), len(metric_keys()))


def subset_metrics(
    attributions: Sequence[Attribution],
    *,
    paper_compat: bool = False,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[SubsetMetrics]:
    """Subset means of every metric, per signal, with bootstrap intervals and propagated errors.

    Rows with ``error`` set are excluded and counted in ``n_errors``; rows whose question has no
    known answer are excluded and counted in ``n_unknown_answer`` (and logged).

    Args:
        attributions: the rows of one model × benchmark × variant.
        paper_compat: the paper's answer-Ratio divisor (see :func:`question_metrics`).
        bootstrap: number of question resamples for the intervals (0: none).
        confidence: interval level.
        seed: bootstrap seed.

    Returns:
        One :class:`SubsetMetrics` per signal, in :data:`SIGNALS` order.
    """
    ok = [a for a in attributions if a.error is None]
    n_errors = len(attributions) - len(ok)
    ok, n_unknown = known_answers(ok, "metrics need the ground truth")
    per_q = [question_metrics(a, paper_compat=paper_compat) for a in ok]
    correct = [qm.correct for qm in per_q]
    accuracy = (float(np.mean(correct)) if correct and all(c is not None for c in correct)
                else None)
    keys = metric_keys()
    out = []
    for k, name in enumerate(SIGNALS):
        matrix = _per_question_matrix(per_q, k)
        means = nanmean(matrix, axis=0) if per_q else np.full(len(keys), np.nan)
        values = {key: float(v) for key, v in zip(keys, means)}
        ci: dict[str, tuple[float, float]] = {}
        if bootstrap > 0 and per_q:
            with_acc = matrix
            if accuracy is not None:
                with_acc = np.column_stack([matrix, np.asarray(correct, dtype=np.float64)])
            bounds = bootstrap_ci(with_acc, bootstrap, confidence=confidence, seed=seed)
            for key, (lo, hi) in zip(keys + ["accuracy"], bounds):
                ci[key] = (float(lo), float(hi))
        se = None
        if per_q and all(qm.signals[k].se is not None for qm in per_q):
            se = {}
            for g in SE_GROUPS:
                errs = np.asarray([qm.signals[k].se[g] for qm in per_q])  # n×3
                vals = np.asarray([getattr(qm.signals[k], g) for qm in per_q])
                for i, mk in enumerate(MODALITY_KEYS):
                    live = ~np.isnan(vals[:, i])
                    n = int(live.sum())
                    se[f"{g}_{mk}"] = (float(math.sqrt(np.sum(errs[live, i] ** 2)) / n)
                                       if n else float("nan"))
        out.append(SubsetMetrics(name, len(per_q), n_errors, accuracy, values, ci, se,
                                 confidence, bootstrap if per_q else 0, n_unknown))
    return out


def subset_rows(subsets: Sequence[SubsetMetrics], **context: Any) -> list[dict[str, Any]]:
    """JSON-ready rows ``{**context, signal, n_questions, n_errors, accuracy, mc_v…, ci, se}``.

    NaN becomes ``None`` so the output is strict JSON.
    """
    rows = []
    for sub in subsets:
        row: dict[str, Any] = dict(context)
        row.update(signal=sub.signal, n_questions=sub.n_questions, n_errors=sub.n_errors,
                   accuracy=sub.accuracy)
        row.update({k: _json_float(v) for k, v in sub.values.items()})
        row["ci"] = {k: [_json_float(lo), _json_float(hi)] for k, (lo, hi) in sub.ci.items()}
        row["confidence"] = sub.confidence
        row["n_bootstrap"] = sub.n_bootstrap
        row["se"] = None if sub.se is None else {k: _json_float(v) for k, v in sub.se.items()}
        if sub.n_unknown_answer:
            row["n_unknown_answer"] = sub.n_unknown_answer
        rows.append(row)
    return rows


def _json_float(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)
