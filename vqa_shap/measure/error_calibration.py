"""How far to trust a row's ``relative_error``: the estimate against the actual error, on trained games.

The stored permutation paths of a trained question (:class:`~vqa_shap.measure.sample_efficiency.QuestionSamples`,
``benchmarks/estimators_trained.json``) are taken as the population: an estimate of ``k`` paths is ``k``
paths drawn with replacement, its recorded error is :func:`vqa_shap.estimators.base.relative_error` of
its own standard errors, and its actual error is measured against the mean of all stored paths — the
exact values of that population, so no reference error needs correcting. Two comparisons:

- (a) against the *single realised* error of the same estimate (one random draw around its expectation);
- (b) against the *expected* (root-mean-square) error of ``k`` paths, ``sqrt(Σ_i var_i / k) / ‖φ‖``,
  which is what a standard error claims to predict.

A check against a reference that is a real estimate (the mean of the stored paths not drawn, ``k`` drawn
without replacement, its expected error taken off) is kept beside (b) for ``k`` up to half the paths.
No model is evaluated.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["CalibrationRow", "calibrate", "calibration_rows", "expected_error", "paths_for_error", "format_table",
           "CALIBRATION_START", "CALIBRATION_END", "PATHS", "ERROR_LEVELS"]

CALIBRATION_START, CALIBRATION_END = "<!-- calibration-table:start -->", "<!-- calibration-table:end -->"
#: Paths per estimate in the table (each one antithetic permutation: 2F + 1 evaluations).
PATHS = (2, 4, 8, 16, 32)
#: Expected relative errors whose budgets the table gives (what a default budget buys).
ERROR_LEVELS = (1.0, 0.5, 0.3)
#: Budgets (evaluations) whose expected error the table gives, besides explain's default (256: the old default).
BUDGETS = (256, 1024)
#: Resampled estimates per (question, paths).
REPS = 2000
#: The factor the issue asks the estimate to be within.
FACTOR = 1.5


@dataclass(frozen=True)
class CalibrationRow:
    """One (question, paths per estimate) row: expected error, and how the recorded errors compare.

    Attributes:
        key, description: the question.
        paths, evaluations: paths per estimate and their evaluations (``paths × (2F + 1)``).
        expected_error: root-mean-square relative error of ``paths`` paths (exact in the population).
        realised_rms: the root mean square of the resampled estimates' realised errors (checks it).
        realised_median, realised_within: (a) median recorded / realised error; share within
            :data:`FACTOR` (and ``realised_within_2`` within 2×).
        expected_median, expected_within: (b) the same against the expected error.
        complement_within: (b) with the mean of the paths not drawn as the reference, or None when
            ``paths`` is more than half of them.
        underestimates: share of estimates whose recorded error is below the realised one.
    """

    key: str
    description: str
    paths: int
    evaluations: int
    expected_error: float
    realised_rms: float
    realised_median: float
    realised_within: float
    realised_within_2: float
    expected_median: float
    expected_within: float
    complement_within: float | None
    underestimates: float


def _within(ratios: np.ndarray, factor: float) -> float:
    return float(np.mean((ratios > 1 / factor) & (ratios < factor)))


def _recorded(draw: np.ndarray) -> float:
    """The relative error a ``permutation`` estimate of these paths records (its own standard errors)."""
    from vqa_shap.estimators.base import relative_error

    k = len(draw)
    return relative_error(draw.mean(axis=0)[:, None], (draw.std(axis=0, ddof=1) / math.sqrt(k))[:, None], 0)


def calibrate(key: str, description: str, paths: np.ndarray, k: int, reps: int = REPS, seed: int = 0) -> CalibrationRow:
    """Compare ``reps`` estimates of ``k`` paths drawn from ``paths`` (``[P][F]``, the target option's
    marginals per path) with their realised and expected errors (see the module docstring)."""
    paths = np.asarray(paths, dtype=np.float64)
    n, players = paths.shape
    phi = paths.mean(axis=0)
    norm = float(np.linalg.norm(phi))
    expected = expected_error(paths, k)
    rng = np.random.default_rng(seed)
    recorded, realised = np.empty(reps), np.empty(reps)
    for r in range(reps):
        draw = paths[rng.integers(0, n, k)]
        recorded[r] = _recorded(draw)
        realised[r] = float(np.linalg.norm(draw.mean(axis=0) - phi)) / norm
    complement = None
    if 2 * k <= n:  # the rest of the paths as the reference: its own expected error taken off
        own_error, squared, reference = np.empty(reps), np.empty(reps), np.empty(reps)
        for r in range(reps):
            order = rng.permutation(n)
            own, rest = paths[order[:k]], paths[order[k:]]
            own_error[r] = _recorded(own)
            ref_noise = float(rest.var(axis=0, ddof=1).sum()) / (n - k)
            squared[r] = float(np.sum((own.mean(axis=0) - rest.mean(axis=0)) ** 2)) - ref_noise
            reference[r] = float(np.sum(rest.mean(axis=0) ** 2)) - ref_noise
        complement = _within(own_error / math.sqrt(max(squared.mean(), 0.0) / reference.mean()), FACTOR)
    a, b = recorded / realised, recorded / expected
    return CalibrationRow(key, description, k, k * (2 * players + 1), expected, float(np.sqrt(np.mean(realised ** 2))),
                          float(np.median(a)), _within(a, FACTOR),
                          _within(a, 2.0), float(np.median(b)), _within(b, FACTOR), complement,
                          float(np.mean(recorded < realised)))


def expected_error(paths: np.ndarray, k: int) -> float:
    """Root-mean-square relative error of an estimate of ``k`` of ``paths`` (the population's exact value)."""
    paths = np.asarray(paths, dtype=np.float64)
    return math.sqrt(float(paths.var(axis=0).sum()) / k) / float(np.linalg.norm(paths.mean(axis=0)))


def paths_for_error(paths: np.ndarray, error: float) -> int:
    """Fewest paths whose expected relative error (in the population of ``paths``) is at most ``error``."""
    return math.ceil((expected_error(paths, 1) / error) ** 2 - 1e-9)


def calibration_rows(questions: list[dict], reps: int = REPS, seed: int = 0) -> dict:
    """The table's data for stored questions (``estimators_trained.json``'s ``questions``): rows for
    every :data:`PATHS`, and per question the paths and evaluations for each of :data:`ERROR_LEVELS` and
    the expected error at explain's default budget."""
    from vqa_shap.explain_options import DEFAULT_BUDGET

    rows, budgets = [], []
    for q in questions:
        paths = np.asarray(q["paths"], dtype=np.float64)
        for k in PATHS:
            rows.append(asdict(calibrate(q["key"], q["description"], paths, k, reps, seed)))
        per_path = 2 * paths.shape[1] + 1
        budgets.append({"key": q["key"], "description": q["description"], "n_players": paths.shape[1],
                        "stored_paths": len(paths),
                        "levels": [{"error": e, "paths": paths_for_error(paths, e),
                                    "evaluations": paths_for_error(paths, e) * per_path} for e in ERROR_LEVELS],
                        "default_budget": DEFAULT_BUDGET,
                        "at_budgets": [{"budget": b, "error": expected_error(paths, max(1, b // per_path))}
                                       for b in sorted({*BUDGETS, DEFAULT_BUDGET})]})
    return {"reps": reps, "seed": seed, "factor": FACTOR, "rows": rows, "budgets": budgets}


def format_table(data: dict) -> str:
    """Markdown: the calibration rows, then the evaluations each expected error needs."""
    pct = lambda x: "–" if x is None else f"{x:.0%}"  # noqa: E731
    out = ["| question | paths (evaluations) | expected error | (a) recorded / realised: median | within 1.5× | "
           "within 2× | recorded < realised | (b) recorded / expected: median | within 1.5× | "
           "within 1.5×, rest as reference |", "|---" * 10 + "|"]
    for r in data["rows"]:
        out.append(f"| {r['description']} | {r['paths']} ({r['evaluations']}) | {r['expected_error']:.2f} | "
                   f"{r['realised_median']:.2f} | {pct(r['realised_within'])} | {pct(r['realised_within_2'])} | "
                   f"{pct(r['underestimates'])} | {r['expected_median']:.2f} | {pct(r['expected_within'])} | "
                   f"{pct(r['complement_within'])} |")
    levels = [e["error"] for e in data["budgets"][0]["levels"]] if data["budgets"] else []
    first = data["budgets"][0] if data["budgets"] else {"at_budgets": [], "default_budget": 0}
    heads = [f"error at {a['budget']}" + (" (default)" if a["budget"] == first["default_budget"] else "")
             for a in first["at_budgets"]]
    out += ["", "| question | F | " + " | ".join(f"evaluations for error {e:g}" for e in levels) + " | " +
            " | ".join(heads) + " |", "|---" * (2 + len(levels) + len(heads)) + "|"]
    for b in data["budgets"]:
        out.append(f"| {b['description']} | {b['n_players']} | " +
                   " | ".join(f"{e['evaluations']} ({e['paths']} paths)" for e in b["levels"]) + " | " +
                   " | ".join(f"{a['error']:.2f}" for a in b["at_budgets"]) + " |")
    return "\n".join(out) + "\n"


def load(path: str) -> dict:
    with open(path) as fh:
        return json.load(fh)
