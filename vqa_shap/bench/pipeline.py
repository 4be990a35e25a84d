"""The paper's pipeline vs vqa-shap's, side by side in one run (used by ``scripts/bench_pipeline.py``).

For the same questions and the same model:

* **paper** — :func:`vqa_shap.bench.paper_pipeline.paper_shapley`: shap's PermutationExplainer, batch size 1,
  per-mask preprocessing through the processor, a full forward with ``generate`` and the letter scan
  (SEED_SPEC.md §3.6, §4). Its budget is ``permutations × (2F + 1)`` evaluations.
* **vqa-shap** — ``loader.prepare`` (vision tower once per frame and once for the baseline), a
  :class:`~vqa_shap.game.Game` over ``loader.score`` (cached features, batched forwards with
  ``logits_to_keep=1``, prefix sharing) and an estimator, at the paper's budget and at fractions of it.

Each estimate's error is measured against a high-budget **reference** of the same question: antithetic
permutation sampling (``cyclic`` by default) on vqa-shap's fast path with a different seed (the two paths score identically
when the model answers with the letter first; :attr:`PipelineBench.value_agreement` checks it on the
coalitions of the run where it does). Error = ``‖φ − φ_ref‖_F / ‖φ_ref‖_F`` over the F×K matrix. Times are wall
times per question (vqa-shap's include ``prepare``; the paper's exclude it, it has none).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["BenchCase", "MethodRow", "PipelineBench", "relative_error", "run_pipeline_bench", "format_table",
           "synthetic_cases", "realistic_cases", "PAPER"]

#: Method name of the paper's way in the rows.
PAPER = "paper"
#: Seed of the reference estimate (independent of the seed 0 both compared methods use).
REFERENCE_SEED = 20251023


@dataclass(frozen=True)
class BenchCase:
    """One question with its decoded frames and frame plan."""

    question: object
    frames: tuple
    plan: object


@dataclass(frozen=True)
class MethodRow:
    """One method at one budget, averaged over the questions.

    Attributes:
        method: ``"paper"`` or ``"vqa-shap"``.
        estimator: the estimator (``"shap"`` for the paper).
        fraction: budget as a fraction of the paper's.
        budget: mean evaluation budget per question.
        evaluations: mean model evaluations per question actually scored.
        seconds_per_question: mean wall time per question.
        evals_per_s: evaluations per second.
        error: mean relative error against the reference.
        speedup: the paper's seconds per question / this row's.
        error_ratio: this row's error / the paper's.
    """

    method: str
    estimator: str
    fraction: float
    budget: float
    evaluations: float
    seconds_per_question: float
    evals_per_s: float
    error: float
    speedup: float = 1.0
    error_ratio: float = 1.0


@dataclass(frozen=True)
class PipelineBench:
    """A whole pipeline benchmark on one model.

    Attributes:
        model: model name or folder.
        n_questions: questions.
        n_features: mean players per question (F).
        n_video: mean video players per question.
        sequence_length: mean prompt length in tokens (all kept).
        video_tokens: mean video tokens per prompt.
        permutations: the paper's budget in permutations (budget = permutations × (2F+1)).
        reference_budget: mean budget of the reference estimates.
        reference_estimator: the reference's estimator.
        reference_seconds: mean wall time of a reference estimate.
        value_agreement: max |paper read-out − vqa-shap score| over the coalitions checked on which the
            model answered with a letter first (where the two read-outs are the same quantity); NaN if
            there was none.
        agreement_later_step: coalitions checked on which the paper read a later generation step
            (left out of :attr:`value_agreement`: there the read-outs differ by design).
        paper_steps: how often the paper's read-out used each generation step.
        max_new_tokens: the paper's generation cap.
        rows: the paper's row first, then vqa-shap's.
        headline: the fastest vqa-shap row whose error is ≤ the paper's (``None`` if none).
    """

    model: str
    n_questions: int
    n_features: float
    n_video: float
    sequence_length: float
    video_tokens: float
    permutations: int
    reference_budget: float
    reference_seconds: float
    reference_estimator: str
    value_agreement: float
    agreement_later_step: int
    paper_steps: dict[int, int]
    max_new_tokens: int
    rows: list[MethodRow] = field(default_factory=list)
    headline: MethodRow | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["paper_steps"] = {str(k): v for k, v in self.paper_steps.items()}
        return data


def relative_error(values: np.ndarray, reference: np.ndarray) -> float:
    """``‖values − reference‖_F / ‖reference‖_F``."""
    reference = np.asarray(reference, dtype=np.float64)
    norm = float(np.linalg.norm(reference))
    return float(np.linalg.norm(np.asarray(values, dtype=np.float64) - reference) / (norm if norm > 0 else 1.0))


def _ours(loader, case: BenchCase, protocol, estimator: str, budget: int, seed: int, batch_size: int):
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game

    start = time.perf_counter()
    prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
    game = Game(lambda c: loader.score(prepared, c), prepared.n_features, batch_size=batch_size,
                video_features=prepared.n_video)
    estimate = get_estimator(estimator).estimate(game, budget, seed)
    return estimate.values, game.evaluations, time.perf_counter() - start


def run_pipeline_bench(loader, cases: Sequence[BenchCase], *, model: str, permutations: int = 2,
                       fractions: Sequence[float] = (1.0, 0.5, 0.25), estimators: Sequence[str] = ("default",),
                       reference_permutations: int = 16, reference_estimator: str = "cyclic",
                       max_new_tokens: int = 16, seed: int = 0,
                       batch_size: int = 16, agreement_rows: int = 8, protocol=None,
                       progress: bool = True) -> PipelineBench:
    """Run the paper's pipeline and vqa-shap's on the same questions, side by side.

    Args:
        loader: a loaded loader (both pipelines use its model and processor).
        cases: the questions.
        model: name for the report.
        permutations: the paper's budget in permutations of shap's sampler (``× (2F+1)`` evaluations).
        fractions: vqa-shap budgets as fractions of the paper's (a budget below an estimator's
            minimum is skipped).
        estimators: vqa-shap estimators to run.
        reference_permutations: the reference's budget in permutations.
        reference_estimator: the reference's estimator (unbiased; ``cyclic`` is the most accurate per
            evaluation of the permutation samplers).
        max_new_tokens: the paper's generation cap (greedy, stops at EOS).
        seed: seed of both compared methods (the paper's is 0).
        batch_size: vqa-shap's coalitions per forward.
        agreement_rows: random coalitions per question on which the two read-outs are compared.
        protocol: the protocol (default ``pollard2025``).
        progress: print progress lines.
    """
    from vqa_shap.estimators import get_estimator
    from vqa_shap.bench.paper_pipeline import paper_score, paper_shapley
    from vqa_shap.protocol import get_protocol

    protocol = protocol or get_protocol("pollard2025")
    per: dict[tuple[str, str, float], list[tuple[float, int, float, float]]] = {}
    stats = {"F": [], "V": [], "L": [], "N": [], "ref_budget": [], "ref_s": []}
    differences, later_step, steps = [], 0, {}
    for q, case in enumerate(cases):
        prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
        n = prepared.n_features
        ones = np.ones((1, n), dtype=bool)
        stats["F"].append(n)
        stats["V"].append(prepared.n_video)
        stats["L"].append(len(loader.token_ids(prepared, ones)))
        stats["N"].append(int(prepared.kept_embeds.shape[0]))
        rng = np.random.default_rng(seed + q)
        check = np.concatenate([ones, ~ones, rng.random((agreement_rows, n)) < 0.5])
        ours_scores = loader.score(prepared, check)
        for row, mask in enumerate(check):
            paper = paper_score(loader, prepared, mask, max_new_tokens=max_new_tokens)
            if paper.step == 0:
                differences.append(float(np.abs(paper.logits - ours_scores[row]).max()))
            else:
                later_step += 1

        budget = permutations * (2 * n + 1)
        start = time.perf_counter()
        ref_budget = reference_permutations * (2 * n + 1)
        reference, _, ref_seconds = _ours(loader, case, protocol, reference_estimator, ref_budget, REFERENCE_SEED,
                                          batch_size)
        stats["ref_budget"].append(ref_budget)
        stats["ref_s"].append(ref_seconds)

        paper = paper_shapley(loader, prepared, budget, seed=seed, max_new_tokens=max_new_tokens)
        for k, v in paper.steps.items():
            steps[k] = steps.get(k, 0) + v
        per.setdefault((PAPER, "shap", 1.0), []).append(
            (budget, paper.evaluations, paper.seconds, relative_error(paper.values, reference)))
        if progress:
            print(f"  question {q + 1}/{len(cases)} ({case.question.qid}, F={n}): paper {paper.seconds:.1f} s "
                  f"for {paper.evaluations} evaluations, error {per[(PAPER, 'shap', 1.0)][-1][3]:.3f}", flush=True)
        for name in estimators:
            minimum = get_estimator(name).min_budget(n)
            for fraction in fractions:
                ours_budget = int(round(budget * fraction))
                if ours_budget < minimum:
                    continue
                values, evaluations, seconds = _ours(loader, case, protocol, name, ours_budget, seed, batch_size)
                per.setdefault(("vqa-shap", name, float(fraction)), []).append(
                    (ours_budget, evaluations, seconds, relative_error(values, reference)))
                if progress:
                    print(f"    vqa-shap {name} x{fraction:g}: {seconds:.2f} s for {evaluations} evaluations, "
                          f"error {per[('vqa-shap', name, float(fraction))][-1][3]:.3f}", flush=True)
        if progress:
            print(f"    reference: {ref_budget} evaluations in {ref_seconds:.1f} s "
                  f"({time.perf_counter() - start:.0f} s for this question)", flush=True)

    rows = []
    for (method, name, fraction), results in per.items():
        if len(results) != len(cases):  # a budget too small for some questions: not comparable
            continue
        arr = np.array(results, dtype=np.float64)
        seconds = float(arr[:, 2].mean())
        rows.append(MethodRow(method, name, fraction, float(arr[:, 0].mean()), float(arr[:, 1].mean()), seconds,
                              float(arr[:, 1].sum() / arr[:, 2].sum()), float(arr[:, 3].mean())))
    paper_row = rows[0]
    rows = [MethodRow(**{**asdict(r), "speedup": paper_row.seconds_per_question / r.seconds_per_question,
                         "error_ratio": r.error / paper_row.error if paper_row.error > 0 else float("nan")})
            for r in rows]
    # equal error up to rounding counts (one permutation of the default estimator is shap's own path)
    eligible = [r for r in rows[1:] if r.error <= paper_row.error * (1 + 1e-6)]
    headline = max(eligible, key=lambda r: r.speedup) if eligible else None
    return PipelineBench(
        model=model, n_questions=len(cases), n_features=float(np.mean(stats["F"])), n_video=float(np.mean(stats["V"])),
        sequence_length=float(np.mean(stats["L"])), video_tokens=float(np.mean(stats["N"])),
        permutations=permutations, reference_budget=float(np.mean(stats["ref_budget"])),
        reference_seconds=float(np.mean(stats["ref_s"])), reference_estimator=reference_estimator,
        value_agreement=max(differences, default=float("nan")), agreement_later_step=later_step,
        paper_steps=dict(sorted(steps.items())), max_new_tokens=max_new_tokens, rows=rows, headline=headline)


def format_table(bench: PipelineBench) -> str:
    """The benchmark as a Markdown table (one row per method × estimator × budget)."""
    lines = [
        f"{bench.model}: {bench.n_questions} questions, F = {bench.n_features:.0f} players "
        f"({bench.n_video:.0f} frames, {bench.video_tokens:.0f} video tokens, prompt {bench.sequence_length:.0f} tokens); "
        f"paper budget {bench.permutations} permutations; reference: {bench.reference_estimator}, "
        f"{bench.reference_budget:.0f} evaluations",
        "",
        "| pipeline | estimator | budget | evaluations | s / question | evaluations / s | error vs reference | speed-up | error ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in bench.rows:
        label = "paper (shap, batch 1, processor + generate per mask)" if r.method == PAPER else "vqa-shap"
        lines.append(f"| {label} | {r.estimator} | {r.budget:.0f} | {r.evaluations:.0f} | {r.seconds_per_question:.2f} | "
                     f"{r.evals_per_s:.1f} | {r.error:.3f} | {r.speedup:.1f}x | {r.error_ratio:.2f} |")
    lines.append("")
    if bench.headline is not None:
        h = bench.headline
        lines.append(f"At equal or lower error: vqa-shap ({h.estimator}, budget {h.budget:.0f}) is {h.speedup:.1f}x "
                     f"faster per question than the paper's pipeline (error {h.error:.3f} vs {bench.rows[0].error:.3f}).")
    else:
        lines.append("No vqa-shap row reached the paper's error.")
    lines.append(f"Read-outs agree to {bench.value_agreement:.1e} (max |paper − vqa-shap| logit over the checked "
                 f"coalitions answered with a letter first; {bench.agreement_later_step} others, where the paper "
                 f"reads a later step, left out); paper read-out steps used: {bench.paper_steps}.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# question sets


def synthetic_cases(n_questions: int, *, seed: int, workdir, n_frames: int | None = None,
                    loader_family: str = "llava_onevision", protocol=None) -> list[BenchCase]:
    """Synthetic questions written as videos, built, planned and decoded as ``explain`` does."""
    from vqa_shap.builders import get_builder
    from vqa_shap.builders.synthetic import N_FRAMES, generate_source
    from vqa_shap.protocol import get_protocol

    protocol = protocol or get_protocol("pollard2025")
    root = generate_source(workdir, n_questions, seed=seed)
    cases = []
    for question in get_builder("synthetic").build(root).configs["synthetic"]:
        plan = protocol.plan_frames(question, root, n_frames or N_FRAMES, loader_family=loader_family)
        cases.append(BenchCase(question, tuple(protocol.load_frames(question, root, plan)), plan))
    return cases


def realistic_cases(n_questions: int) -> list[BenchCase]:
    """Questions with realistic proportions (32 frames, ~150 text tokens; the loader benchmark's)."""
    import dataclasses

    from vqa_shap.bench.loaders import benchmark_question

    cases = []
    for i in range(n_questions):
        question, plan, frames = benchmark_question(realistic=True, seed=i)
        question = dataclasses.replace(question, qid=f"bench-{i}")
        cases.append(BenchCase(question, tuple(frames), plan))
    return cases
