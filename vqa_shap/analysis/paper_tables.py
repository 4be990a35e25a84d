"""The numbers behind the paper's remaining figures: answer replacement, words, heat map, convergence.

Pure numpy on :class:`~vqa_shap.schema.records.Attribution` rows; :mod:`vqa_shap.analysis.paper_figures`
draws them and writes the tables. The modality metrics come from :mod:`vqa_shap.analysis.metrics`
(nothing is re-implemented here).

* :func:`answer_replacement` — ground-truth MC/PF of V/Q/A and accuracy per variant of one
  model × benchmark (easy, original, hard_5 … ordered by number of options), with bootstrap CIs;
* :func:`word_table` — which words carry the most |ψ| across a benchmark;
* :func:`heatmap_matrix` — normalised ground-truth values, questions × the first V + 20 players;
* :func:`convergence` — relative error of the ground-truth vector of every run of a series that
  differs only in budget, against its largest-budget run.

Runs are described by :class:`RunInfo` (:func:`run_info`): a config's model, benchmark, variant,
estimator and budget, read from its rows and, where given, its card.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from vqa_shap.analysis.metric_math import bootstrap_ci
from vqa_shap.schema.records import Attribution

#: Words the paper leaves out of its word statistics: EgoSchema's name for the camera wearer ("C"
#: in "C washes the dishes"), which would otherwise top every list.
EXCLUDED_WORDS = frozenset({"c", "c's"})
#: Text players after the video players in the heat map (the paper's "first V + 20 features").
HEATMAP_TEXT_PLAYERS = 20
#: The keys of :attr:`VariantRow.values` (ground-truth signal), in table order.
REPLACEMENT_KEYS = ("pf_v", "pf_q", "pf_a", "mc_v", "mc_q", "mc_a")

_HARD = re.compile(r"^hard_(\d+)$")


# ----------------------------------------------------------------------------------------------
# runs


@dataclass(frozen=True)
class RunInfo:
    """What one attributions config is: a run of one model on one benchmark variant.

    Attributes:
        config: the config name.
        model, benchmark, variant: shared by all its rows.
        estimator: the estimator family (``"auto"`` for ``"auto/kernel"``; the card's when given).
        budget: the most common budget of its rows (what the questions got: explain raises a budget
            too small for a question's players and records it in the row), else the card's.
        n_options: the most common number of options of its rows.
    """

    config: str
    model: str
    benchmark: str
    variant: str
    estimator: str
    budget: int
    n_options: int


def run_info(config: str, attrs: Sequence[Attribution],
             settings: Mapping[str, Any] | None = None) -> RunInfo | None:
    """The :class:`RunInfo` of a config, ``None`` when its rows mix models, benchmarks or variants
    (or it has none)."""
    if not attrs:
        return None
    keys = {(a.model, a.benchmark, a.variant) for a in attrs}
    if len(keys) != 1:
        return None
    model, benchmark, variant = next(iter(keys))
    settings = settings or {}
    estimator = str(settings.get("estimator") or _mode([a.estimator for a in attrs])).split("/")[0]
    budget = int(_mode([a.budget for a in attrs if a.error is None] or [0])) or int(settings.get("budget") or 0)
    options = [a.n_options for a in attrs if a.error is None] or [0]
    return RunInfo(config, model, benchmark, variant, estimator, budget, int(_mode(options)))


def _mode(values: Sequence[Any]) -> Any:
    """The most common value (the first seen on ties)."""
    return Counter(values).most_common(1)[0][0]


def variant_order(variant: str, n_options: int) -> tuple:
    """Sort key of a variant: by number of options, ``easy`` before ``original`` before ``hard_<N>``."""
    hard = _HARD.match(variant)
    rank = 0 if variant == "easy" else 1 if variant == "original" else 2
    return (n_options, rank, int(hard.group(1)) if hard else 0, variant)


def representatives(infos: Sequence[RunInfo]) -> dict[tuple[str, str, str, str], RunInfo]:
    """One run per model × benchmark × variant × estimator family: the largest budget (ties: the
    first config name)."""
    best: dict[tuple[str, str, str, str], RunInfo] = {}
    for info in sorted(infos, key=lambda i: (-i.budget, i.config)):
        best.setdefault((info.model, info.benchmark, info.variant, info.estimator), info)
    return best


# ----------------------------------------------------------------------------------------------
# answer replacement


@dataclass(frozen=True)
class VariantRow:
    """One variant of the answer-replacement study (ground-truth signal).

    Attributes:
        model, benchmark, estimator, variant, config: the run (``estimator``: its family).
        n_options: options per question (the most common).
        n_questions, n_errors: rows averaged / error rows left out.
        accuracy: share of correct predictions (``None`` when predictions are unknown).
        values: ``{"pf_v": …, "mc_a": …}`` (:data:`REPLACEMENT_KEYS`), means over questions.
        ci: ``{key: (low, high)}`` bootstrap intervals of ``values`` and ``"accuracy"``.
    """

    model: str
    benchmark: str
    estimator: str
    variant: str
    config: str
    n_options: int
    n_questions: int
    n_errors: int
    accuracy: float | None
    values: Mapping[str, float]
    ci: Mapping[str, tuple[float, float]]


def answer_replacement(attributions: Mapping[str, Sequence[Attribution]], infos: Sequence[RunInfo], *,
                       bootstrap: int = 200, confidence: float = 0.95, seed: int = 0) -> list[VariantRow]:
    """Per model × benchmark × estimator family with at least two variants, one row per variant in
    option order (variants explained with another estimator are another study; of several runs of
    one variant, the largest budget is used).

    The numbers are :func:`vqa_shap.analysis.metrics.subset_metrics` of the ground-truth signal
    (the paper's table), so a variant's row equals ``vqa-shap metrics`` of its config.
    """
    from vqa_shap.analysis.metrics import subset_metrics

    groups: dict[tuple[str, str, str], list[RunInfo]] = {}
    for (model, bench, _, estimator), info in representatives(infos).items():
        groups.setdefault((model, bench, estimator), []).append(info)
    rows = []
    for (model, bench, estimator), runs in sorted(groups.items()):
        if len(runs) < 2:
            continue
        for info in sorted(runs, key=lambda i: variant_order(i.variant, i.n_options)):
            with np.errstate(invalid="ignore"):  # propagated errors (unused here) may be NaN/inf
                gt = subset_metrics(list(attributions[info.config]), bootstrap=bootstrap,
                                    confidence=confidence, seed=seed)[0]
            keys = REPLACEMENT_KEYS + ("accuracy",)
            rows.append(VariantRow(model, bench, estimator, info.variant, info.config, info.n_options, gt.n_questions,
                                   gt.n_errors, gt.accuracy, {k: gt.values[k] for k in REPLACEMENT_KEYS},
                                   {k: gt.ci[k] for k in keys if k in gt.ci}))
    return rows


# ----------------------------------------------------------------------------------------------
# words


@dataclass(frozen=True)
class WordRow:
    """One word across a benchmark: ``count`` occurrences as a player, their mean and total |ψ|,
    and their mean signed ψ (ψ = the normalised ground-truth value)."""

    word: str
    count: int
    mean_abs: float
    total_abs: float
    mean: float


def normalise_word(name: str) -> str | None:
    """The word a text player counts as, or ``None`` when it is not counted.

    Lower-cased; apostrophes at either end stripped (``'hello'`` -> ``hello``; ``c's`` keeps its
    inner one); players with no letter or digit (punctuation such as ``?`` or ``.``) and the
    paper's :data:`EXCLUDED_WORDS` are not counted. HD-EPIC tags stay whole (lower-cased).
    """
    word = name.lower().strip("'")
    if not any(ch.isalnum() for ch in word) or word in EXCLUDED_WORDS:
        return None
    return word


def word_table(attrs: Sequence[Attribution], *, min_count: int = 1) -> list[WordRow]:
    """Question and answer words by total |ψ| (descending; ties by word), video players left out.

    ψ is the normalised ground-truth value ψ[i, g] = φ[i, g] / max_j |φ[j, g]| (the signal of the
    paper's word distribution), so every question weighs the same. Every occurrence counts: a word
    in the question and in two options is three occurrences. Error rows are skipped.

    Args:
        attrs: the rows of one model × benchmark (× variant).
        min_count: leave out words seen fewer times (the paper's shipped lists used 5).
    """
    from vqa_shap.analysis.metrics import normalise_columns

    values: dict[str, list[float]] = {}
    for attr in attrs:
        if attr.error is not None or attr.n_options == 0:
            continue
        psi = normalise_columns(attr.shapley)[:, attr.answer]
        for feature, value in zip(attr.features, psi):
            word = normalise_word(feature.name) if feature.modality != "video" else None
            if word is not None:
                values.setdefault(word, []).append(float(value))
    rows = [WordRow(w, len(v), float(np.mean(np.abs(v))), float(np.sum(np.abs(v))), float(np.mean(v)))
            for w, v in values.items() if len(v) >= min_count]
    return sorted(rows, key=lambda r: (-r.total_abs, r.word))


# ----------------------------------------------------------------------------------------------
# heat map


@dataclass(frozen=True)
class Heatmap:
    """Normalised ground-truth values, one row per question.

    Attributes:
        values: rows × (V + text) matrix; NaN where a question has fewer players.
        qids: the row labels.
        columns: the column labels (the video players' names, then ``t1`` … ``t<text>``).
        n_video: V, the most video players of any question.
        n_total: questions with values (error rows are left out) before ``max_rows``.
    """

    values: np.ndarray
    qids: tuple[str, ...]
    columns: tuple[str, ...]
    n_video: int
    n_total: int


def heatmap_matrix(attrs: Sequence[Attribution], *, n_text: int = HEATMAP_TEXT_PLAYERS,
                   max_rows: int | None = None) -> Heatmap:
    """The paper's heat map: ψ of the first V video players, then of the first ``n_text`` text players.

    Video players stay aligned by position (frame j in column j) even when questions have fewer
    frames than V; the text players (question words, then the options' words) start at column V.
    """
    from vqa_shap.analysis.metrics import normalise_columns

    ok = [a for a in attrs if a.error is None and a.n_options > 0]
    n_total = len(ok)
    if max_rows is not None:
        ok = ok[:max_rows]
    n_video = max((int(a.modality_mask("video").sum()) for a in ok), default=0)
    matrix = np.full((len(ok), n_video + n_text), np.nan)
    video_names: list[str] = []
    for r, attr in enumerate(ok):
        psi = normalise_columns(attr.shapley)[:, attr.answer]
        video = attr.modality_mask("video")
        matrix[r, :int(video.sum())] = psi[video]
        text = psi[~video][:n_text]
        matrix[r, n_video:n_video + text.size] = text
        names = [f.name for f in attr.features if f.modality == "video"]
        if len(names) > len(video_names):
            video_names = names
    columns = tuple(video_names) + tuple(f"t{k + 1}" for k in range(n_text))
    return Heatmap(matrix, tuple(a.qid for a in ok), columns, n_video, n_total)


# ----------------------------------------------------------------------------------------------
# convergence


@dataclass(frozen=True)
class ConvergenceRow:
    """One budget of a convergence series.

    Attributes:
        model, benchmark, variant, estimator: the series.
        config, budget: this run.
        reference, reference_budget: the series' largest-budget run.
        n_questions: questions compared (in both runs, no error, same players and options).
        n_skipped: questions of this run that could not be compared.
        evaluations: mean model evaluations per compared question of this run.
        rel_error, rel_error_ci: mean over questions of ‖φ_b[:, g] − φ_ref[:, g]‖₂ / ‖φ_ref[:, g]‖₂
            (g the ground-truth option) and its bootstrap interval.
        mse, mse_ci: mean over questions of the mean squared difference of the same vectors (the
            paper's convergence statistic) and its interval.
    """

    model: str
    benchmark: str
    variant: str
    estimator: str
    config: str
    budget: int
    reference: str
    reference_budget: int
    n_questions: int
    n_skipped: int
    evaluations: float
    rel_error: float
    rel_error_ci: tuple[float, float]
    mse: float
    mse_ci: tuple[float, float]


def gt_error(attr: Attribution, reference: Attribution) -> tuple[float, float] | None:
    """``(relative L2 error, MSE)`` of ``attr``'s ground-truth column against ``reference``'s;
    ``None`` when they cannot be compared (error rows, other players or options, zero reference)."""
    if attr.error is not None or reference.error is not None or attr.answer != reference.answer:
        return None
    if attr.shapley.shape != reference.shapley.shape or attr.n_options == 0:
        return None
    if [(f.name, f.modality) for f in attr.features] != [(f.name, f.modality) for f in reference.features]:
        return None
    diff = attr.shapley[:, attr.answer] - reference.shapley[:, attr.answer]
    norm = float(np.linalg.norm(reference.shapley[:, attr.answer]))
    if norm == 0 or not diff.size:
        return None
    return float(np.linalg.norm(diff)) / norm, float(np.mean(diff ** 2))


def series(infos: Sequence[RunInfo]) -> tuple[list[list[RunInfo]], list[str]]:
    """Runs that differ only in budget: same model, benchmark, variant and estimator family, at
    least two budgets; each series sorted by budget.

    Returns:
        ``(series, notes)``. Two runs at one budget make a series ambiguous: the first config (by
        name) at that budget is kept and the others are named in ``notes``.
    """
    groups: dict[tuple[str, ...], dict[int, RunInfo]] = {}
    notes = []
    for info in sorted(infos, key=lambda i: i.config):
        per = groups.setdefault((info.model, info.benchmark, info.variant, info.estimator), {})
        kept = per.setdefault(info.budget, info)
        if kept is not info:
            notes.append(f"{info.config}: same run and budget ({info.budget}) as {kept.config}; "
                         f"the convergence check uses {kept.config}")
    found = [[per[b] for b in sorted(per)] for _, per in sorted(groups.items()) if len(per) > 1]
    return found, notes


def convergence(attributions: Mapping[str, Sequence[Attribution]], infos: Sequence[RunInfo], *,
                bootstrap: int = 200, confidence: float = 0.95, seed: int = 0) -> list[ConvergenceRow]:
    """Every budget below the largest of every :func:`series`, compared question by question."""
    rows = []
    for runs in series(infos)[0]:
        ref = runs[-1]
        by_qid = {a.qid: a for a in attributions[ref.config]}
        for run in runs[:-1]:
            errors, evaluations, skipped = [], [], 0
            for attr in attributions[run.config]:
                pair = gt_error(attr, by_qid[attr.qid]) if attr.qid in by_qid else None
                if pair is None:
                    skipped += 1
                else:
                    errors.append(pair)
                    evaluations.append(attr.evaluations)
            data = np.asarray(errors, dtype=np.float64).reshape(len(errors), 2)
            means = data.mean(axis=0) if errors else np.full(2, np.nan)
            ci = bootstrap_ci(data, bootstrap, confidence=confidence, seed=seed)
            rows.append(ConvergenceRow(run.model, run.benchmark, run.variant, run.estimator, run.config,
                                       run.budget, ref.config, ref.budget, len(errors), skipped,
                                       float(np.mean(evaluations)) if evaluations else float("nan"),
                                       float(means[0]), (float(ci[0, 0]), float(ci[0, 1])),
                                       float(means[1]), (float(ci[1, 0]), float(ci[1, 1]))))
    return rows
