"""Faithfulness against ground truth: do the top-ranked frames hold the answer?

On synthetic questions (:mod:`vqa_shap.builders.shapes`) the frames that show the answer are known
(``extra["evidence_frames"]``). For each estimator and budget we rank a question's frames by ``|φ|``
of the ground-truth option's score and report

* **top-1 hit rate** — how often the top-ranked frame is an evidence frame;
* **precision@k** — the share of evidence frames among the top ``k`` frames, with ``k`` = the
  question's number of evidence frames (so a perfect ranking scores 1);

next to what a random ranking gets (``|evidence| / frames`` for both), and the top-1 hit rate apart for
questions with one evidence frame and with two (two frames that each show the answer are redundant:
hiding either one changes little, so each gets a small share of the credit). Used by
``scripts/bench_faithfulness.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["FaithfulnessRow", "frame_ranking", "evidence_scores", "run_faithfulness", "format_table"]


@dataclass(frozen=True)
class FaithfulnessRow:
    """One estimator at one budget, over the questions.

    Attributes:
        estimator: estimator name (``"random ranking"`` for the chance row).
        budget: evaluation budget per question.
        n_questions: questions scored.
        top1: share of questions whose top-ranked frame is an evidence frame.
        precision_at_k: mean share of evidence frames among the top k (k = number of evidence frames).
        evaluations: mean evaluations per question.
        seconds_per_question: mean wall time of the estimate per question.
        top1_by_evidence: ``{number of evidence frames: (questions, top-1 hit rate)}``.
    """

    estimator: str
    budget: int
    n_questions: int
    top1: float
    precision_at_k: float
    evaluations: float
    seconds_per_question: float
    top1_by_evidence: dict[int, tuple[int, float]] = field(default_factory=dict)


def frame_ranking(values: np.ndarray, column: int, frame_indices: Sequence[int]) -> list[int]:
    """Video frames ordered by ``|φ|`` of output ``column``, largest first (ties: earlier frame first).

    Args:
        values: ``φ[F, K]``; its first ``len(frame_indices)`` rows are the video players.
        column: the output to rank by (the ground-truth option).
        frame_indices: the video frame index of each video player.
    """
    magnitude = np.abs(np.asarray(values)[:len(frame_indices), column])
    order = sorted(range(len(frame_indices)), key=lambda j: (-magnitude[j], j))
    return [int(frame_indices[j]) for j in order]


def evidence_scores(ranking: Sequence[int], evidence: Sequence[int]) -> tuple[float, float]:
    """``(top-1 hit, precision@k)`` of a frame ranking against the evidence frames (k = |evidence|)."""
    evidence = set(int(e) for e in evidence)
    k = len(evidence)
    return float(ranking[0] in evidence), len(evidence.intersection(ranking[:k])) / k


def run_faithfulness(loader, cases, *, estimators: Sequence[str], budgets: Sequence[int], seed: int = 0,
                     batch_size: int = 16, protocol=None, progress: bool = True) -> list[FaithfulnessRow]:
    """Score every estimator × budget on the cases (synthetic questions with evidence frames).

    Args:
        loader: a loaded loader (the demo model).
        cases: :class:`vqa_shap.measure.bench_cases.BenchCase` s of synthetic questions.
        estimators: estimator names.
        budgets: evaluation budgets per question (a budget below an estimator's minimum is skipped).
        seed: estimator seed.
        batch_size: coalitions per forward.
        protocol: the protocol (default ``pollard2025``).
        progress: show a progress bar.

    Returns:
        One row per estimator × budget, then the random-ranking row.
    """
    from tqdm.auto import tqdm

    from vqa_shap.builders.shapes import evidence_frames
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game
    from vqa_shap.protocol import get_protocol

    protocol = protocol or get_protocol("pollard2025")
    results: dict[tuple[str, int], list[tuple[float, float, int, float, int]]] = {}
    chance, n_evidence = [], []
    for case in tqdm(cases, desc="faithfulness", unit="q", disable=not progress):
        prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
        groups = protocol.frame_groups(case.plan, loader.temporal_unit)
        frame_indices = [case.plan.frames[g[0]].index for g in groups]
        evidence = evidence_frames(case.question)
        chance.append(len(evidence) / len(frame_indices))
        n_evidence.append(len(evidence))
        for name in estimators:
            estimator = get_estimator(name)
            for budget in budgets:
                if budget < estimator.min_budget(prepared.n_features):
                    continue
                game = Game(lambda c: loader.score(prepared, c), prepared.n_features, batch_size=batch_size,
                            video_features=prepared.n_video)
                start = time.perf_counter()
                estimate = estimator.estimate(game, int(budget), seed)
                seconds = time.perf_counter() - start
                ranking = frame_ranking(estimate.values, case.question.answer, frame_indices)
                top1, precision = evidence_scores(ranking, evidence)
                results.setdefault((name, int(budget)), []).append(
                    (top1, precision, game.evaluations, seconds, len(evidence)))
    rows = []
    for (name, budget), values in results.items():
        arr = np.array(values, dtype=np.float64)
        rows.append(FaithfulnessRow(name, budget, len(values), float(arr[:, 0].mean()), float(arr[:, 1].mean()),
                                    float(arr[:, 2].mean()), float(arr[:, 3].mean()), _by_evidence(arr[:, 0], arr[:, 4])))
    chance_arr = np.array(chance)
    rows.append(FaithfulnessRow("random ranking", 0, len(chance), float(chance_arr.mean()), float(chance_arr.mean()),
                                0.0, 0.0, _by_evidence(chance_arr, np.array(n_evidence))))
    return rows


def _by_evidence(top1: np.ndarray, n_evidence: np.ndarray) -> dict[int, tuple[int, float]]:
    return {int(n): (int((n_evidence == n).sum()), float(top1[n_evidence == n].mean())) for n in np.unique(n_evidence)}


def format_table(rows: Sequence[FaithfulnessRow]) -> str:
    """The rows as a Markdown table."""
    counts = sorted({n for r in rows for n in r.top1_by_evidence})
    split = "".join(f" top-1, {n} evidence frame{'s' if n > 1 else ''} |" for n in counts)
    lines = ["| estimator | budget | questions | top-1 frame is evidence | precision@k |" + split
             + " evaluations | s / question |", "|---|---|---|---|---|" + "---|" * len(counts) + "---|---|"]
    for r in rows:
        budget = "–" if r.estimator == "random ranking" else str(r.budget)
        cells = "".join(f" {r.top1_by_evidence[n][1]:.2f} ({r.top1_by_evidence[n][0]}) |" if n in r.top1_by_evidence
                        else " – |" for n in counts)
        lines.append(f"| {r.estimator} | {budget} | {r.n_questions} | {r.top1:.2f} | {r.precision_at_k:.2f} |{cells} "
                     f"{r.evaluations:.0f} | {r.seconds_per_question:.2f} |")
    return "\n".join(lines)


def as_dicts(rows: Sequence[FaithfulnessRow]) -> list[dict]:
    """Rows as JSON-ready dicts."""
    return [asdict(r) for r in rows]
