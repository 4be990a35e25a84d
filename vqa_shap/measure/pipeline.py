"""The paper's pipeline vs vqa-shap's, side by side in one run (used by ``scripts/bench_pipeline.py``).

For the same questions and model, at several budgets and seeds:

* **paper** — :mod:`vqa_shap.measure.paper_pipeline`: shap's PermutationExplainer, batch size 1, the
  frames masked the paper's way (``preprocess``: pixels preprocessed once and multiplied by the mask, as
  the paper's LLaVA-Video script; or the processor per mask, as its VideoLLaMA3 script), ``generate``
  per masked input and the letter scan. Budgets are whole permutations (``2F + 1`` evaluations each).
  ``paper_mode="full"`` runs that end to end at every budget. ``"sampled"`` (the default, which fits a
  2-core machine) gets the same values from shap's sampler over vqa-shap's read-out (the public
  ``permutation`` estimator, equal to shap for the same seed) and the paper's time from its measured
  seconds per evaluation on ``timing_masks`` of its own coalitions, timed interleaved with vqa-shap.
* **vqa-shap** — the public API: ``loader.prepare``, a :class:`~vqa_shap.game.Game` over
  ``loader.score`` and :func:`vqa_shap.estimators.get_estimator` (the package's default estimator).

Runs alternate paper, vqa-shap, paper, vqa-shap per question and seed, so machine load hits both.
Error = ``‖φ − φ_ref‖_F / ‖φ_ref‖_F`` against a high-budget reference per question, made of two halves
with independent seeds whose difference gives the reference's own noise. The paper's read-out and
vqa-shap's are compared on the same coalitions. :mod:`vqa_shap.measure.pipeline_report` turns the
records into means, CIs and the speed-up at equal error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from vqa_shap.atomic_files import atomic_write_npz
from vqa_shap.measure.bench_cases import BenchCase, case_digest
from vqa_shap.measure.stats import relative_l2_error

__all__ = ["Run", "PipelineBench", "run_pipeline_bench", "PAPER", "OURS", "PAPER_MODES"]

PAPER = "paper"
OURS = "vqa-shap"
#: How the paper's arm is run (see the module docstring).
PAPER_MODES = ("sampled", "full")
#: Seeds of the reference's two halves (independent of the compared runs' seeds).
REFERENCE_SEEDS = (20251023, 20251024)
#: A read-out difference larger than this (in logit) counts as a difference.
READOUT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Run:
    """One estimate: a pipeline at one budget for one question and seed.

    Attributes:
        pipeline: :data:`PAPER` or :data:`OURS`.
        level: budget in permutations (``level × (2F + 1)`` evaluations).
        question: question index.
        seed: estimator seed.
        budget: evaluations allowed.
        evaluations: model evaluations made.
        seconds: wall time for the question.
        error: relative error against the reference.
        load: the 1-minute load average while its seed ran (mean of the seed's start and end; NaN: not
            recorded).
    """

    pipeline: str
    level: float
    question: int
    seed: int
    budget: int
    evaluations: int
    seconds: float
    error: float
    load: float = float("nan")


@dataclass(frozen=True)
class PipelineBench:
    """A pipeline benchmark on one model: settings, per-question facts, every run and the summary;
    ``trained``: whether its weights are (a random-weight model's game is close to additive)."""

    model: str
    trained: bool
    n_questions: int
    settings: dict
    questions: list[dict]
    runs: list[Run]
    load: dict
    info: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _ours(loader, case: BenchCase, protocol, estimator: str, budget: int, seed: int, batch_size: int):
    """vqa-shap's pipeline through the public API, timed from ``prepare`` on."""
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game

    start = time.perf_counter()
    prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
    game = Game(lambda c: loader.score(prepared, c), prepared.n_features, batch_size=batch_size,
                video_features=prepared.n_video)
    estimate = get_estimator(estimator).estimate(game, budget, seed)
    return estimate.values, game.evaluations, time.perf_counter() - start


class _Recorder:
    """vqa-shap's read-out, remembering every coalition and score (the paper's coalitions in sampled mode)."""

    def __init__(self, loader, prepared):
        self.loader, self.prepared, self.rows, self.scores = loader, prepared, [], []

    def __call__(self, coalitions):
        scores = self.loader.score(self.prepared, coalitions)
        self.rows.extend(np.asarray(coalitions, dtype=bool))
        self.scores.extend(scores)
        return scores


def _compare(paper, ours: np.ndarray, tally: dict) -> None:
    tally["checked"] += 1
    tally["steps"][str(paper.step)] = tally["steps"].get(str(paper.step), 0) + 1
    diff = float(np.abs(paper.logits - ours).max())
    if paper.step != 0 or diff > READOUT_TOLERANCE:
        tally["differs"] += 1
    else:
        tally["max_diff"] = max(tally["max_diff"], diff)


def _reference_estimate(loader, case, protocol, name: str, batch_size: int, spent: list):
    """``estimate(seed, budget)`` of the reference's estimator through vqa-shap's pipeline (seconds in ``spent``)."""
    def estimate(seed: int, budget: int) -> np.ndarray:
        values, _, seconds = _ours(loader, case, protocol, name, budget, seed, batch_size)
        spent.append(seconds)
        return values
    return estimate


def _seed_runs(loader, case, prepared, build, q: int, seed: int, values: list, tally: dict, cfg: dict) -> list[Run]:
    """Every budget of both pipelines for one question and seed, interleaved paper / vqa-shap; each run's
    values go to ``values`` (its error is measured once the reference is trusted)."""
    from vqa_shap.measure.paper_pipeline import paper_score, paper_shapley
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game

    n = prepared.n_features
    perm = 2 * n + 1
    runs, paper_levels, ours_levels = [], list(cfg["paper_levels"]), list(cfg["ours_levels"])
    timed = []  # sampled mode: seconds per paper evaluation
    if cfg["paper_mode"] == "sampled":
        recorder = _Recorder(loader, prepared)
        game = Game(recorder, n, batch_size=cfg["batch_size"], video_features=prepared.n_video)
        for level in paper_levels:  # nested: the Game's cache reuses the first permutations
            values.append(get_estimator("permutation").estimate(game, int(level * perm), seed).values)
            runs.append(Run(PAPER, level, q, seed, int(level * perm), int(level * perm), float("nan"), float("nan")))
        rng = np.random.default_rng([seed, q])
        pick = rng.choice(len(recorder.rows), size=min(cfg["timing_masks"], len(recorder.rows)), replace=False)
        chunks = np.array_split(pick, max(len(paper_levels), len(ours_levels)))
    for i in range(max(len(paper_levels), len(ours_levels))):
        if cfg["paper_mode"] == "sampled":
            for j in chunks[i]:
                start = time.perf_counter()
                score = paper_score(loader, prepared, recorder.rows[j], max_new_tokens=cfg["max_new_tokens"],
                                    inputs=build)
                timed.append(time.perf_counter() - start)
                _compare(score, recorder.scores[j], tally)
        elif i < len(paper_levels):
            paper = paper_shapley(loader, prepared, int(paper_levels[i] * perm), seed=seed,
                                  max_new_tokens=cfg["max_new_tokens"], preprocess=cfg["preprocess"])
            values.append(paper.values)
            runs.append(Run(PAPER, paper_levels[i], q, seed, int(paper_levels[i] * perm), paper.evaluations,
                            paper.seconds, float("nan")))
        if i < len(ours_levels):
            budget = int(round(ours_levels[i] * perm))
            estimate, evaluations, seconds = _ours(loader, case, prepared.protocol, cfg["estimator"], budget, seed,
                                                   cfg["batch_size"])
            values.append(estimate)
            runs.append(Run(OURS, ours_levels[i], q, seed, budget, evaluations, seconds, float("nan")))
    if timed:
        per_eval = float(np.mean(timed))
        runs = [Run(**{**asdict(r), "seconds": r.evaluations * per_eval + build.seconds})
                if r.pipeline == PAPER else r for r in runs]
    return runs


def run_pipeline_bench(loader, cases: Sequence[BenchCase], *, model: str, trained: bool, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                       paper_levels: Sequence[float] = (1, 2), ours_levels: Sequence[float] = (1, 2),
                       estimator: str | None = None, reference_permutations: int = 16,
                       reference_estimator: str = "cyclic", paper_mode: str = "sampled", preprocess: str = "once",
                       timing_masks: int = 8, max_new_tokens: int = 16, batch_size: int = 16,
                       threads: int | None = None, n_boot: int = 2000, protocol=None,
                       progress: bool = True, checkpoint=None, reference_trust: float = 3.0,
                       reference_max_permutations: int | None = None, references: str | os.PathLike | None = None,
                       model_key: str | None = None, max_load: float | None = None) -> PipelineBench:
    """Run the paper's pipeline and vqa-shap's on the same questions and seeds, interleaved.

    Args:
        loader: a loaded loader (both pipelines use its model and processor).
        cases: the questions (distinct texts and videos).
        model: name for the report.
        trained: whether the model's weights are trained (recorded).
        seeds: estimator seeds (the paper's shap seed and vqa-shap's, per run).
        paper_levels: the paper's budgets in permutations (``× (2F+1)`` evaluations), increasing.
        ours_levels: vqa-shap's budgets in the same unit, increasing.
        estimator: vqa-shap's estimator (default: the package's default estimator).
        reference_permutations: the reference's budget in permutations (two halves).
        reference_estimator: the reference's (unbiased) estimator.
        paper_mode: one of :data:`PAPER_MODES`.
        preprocess: the paper's frame masking, ``"once"`` or ``"per_mask"``.
        timing_masks: coalitions per question and seed scored the paper's way (timing in sampled mode;
            the read-out comparison in both modes).
        max_new_tokens: the paper's generation cap (greedy, stops at EOS).
        batch_size: vqa-shap's coalitions per Game batch.
        threads: torch threads (recorded; set by the caller).
        n_boot: bootstrap resamples of the speed-up's CI.
        protocol: the protocol (default ``pollard2025``).
        progress: print progress lines.
        checkpoint: called with the benchmark of the questions done so far after each question (so a
            long run that is stopped keeps its finished questions).
        reference_trust: the reference grows (chunks of ``reference_permutations`` each) until its own
            error is below the smallest error it measures divided by this, or it reaches
            ``reference_max_permutations`` (default ``reference_permutations``: no growth).
        references: a folder where references are stored and reused (:mod:`vqa_shap.measure.references`),
            keyed by ``model_key`` (the model's digest) and the question's digest, and with them each
            question's finished runs and their values (``.npz``): a later run with the same settings
            reuses those and only grows the reference (e.g. with a larger ``reference_max_permutations``);
            None: nothing stored.
        max_load: before each seed's runs, wait until the 1-minute load average is at most this (None:
            never wait); each seed's runs record the load they ran at either way.
    """
    from vqa_shap.estimators import DEFAULT_ESTIMATOR
    from vqa_shap.protocol import get_protocol

    if paper_mode not in PAPER_MODES:
        raise ValueError(f"unknown paper_mode {paper_mode!r}; valid: {', '.join(PAPER_MODES)}")
    protocol = protocol or get_protocol("pollard2025")
    cfg = dict(paper_levels=[float(v) for v in paper_levels], ours_levels=[float(v) for v in ours_levels],
               estimator=estimator or DEFAULT_ESTIMATOR, reference_permutations=reference_permutations,
               reference_estimator=reference_estimator, paper_mode=paper_mode, preprocess=preprocess,
               timing_masks=timing_masks, max_new_tokens=max_new_tokens, batch_size=batch_size,
               seeds=[int(s) for s in seeds], threads=threads, max_load=max_load)
    cfg.update(reference_trust=float(reference_trust),
               reference_max_permutations=int(reference_max_permutations or reference_permutations))
    store = None if references is None or model_key is None else (Path(references), model_key)
    load = {"start": list(os.getloadavg()), "samples": []}
    runs, questions = [], []
    for q, case in enumerate(cases):
        mine, facts = _bench_question(loader, case, q, protocol, cfg, store, progress)
        runs += mine
        load["samples"].append(os.getloadavg()[0])
        questions.append(facts)
        if progress:
            _print_progress(runs, q, len(cases), facts["n_features"], facts["reference_noise"], load["samples"][-1])
        if checkpoint is not None and q + 1 < len(cases):
            checkpoint(_finish(model, trained, cases[:q + 1], cfg, list(questions), list(runs),
                               {**load, "samples": list(load["samples"]), "end": list(os.getloadavg())}, n_boot))
    load["end"] = list(os.getloadavg())
    return _finish(model, trained, cases, cfg, questions, runs, load, n_boot)


def _bench_question(loader, case, q: int, protocol, cfg: dict, store, progress: bool) -> tuple[list[Run], dict]:
    """Every seed's runs of one question, their errors against a reference grown until it is trusted."""
    from vqa_shap.measure.pipeline_report import smallest_mean_error
    from vqa_shap.measure.references import load_reference, save_reference, start_reference, trust_reference

    prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
    n = prepared.n_features
    _check_budgets(cfg, n)  # before the (long) reference, not after it
    ones = np.ones(n, dtype=bool)
    spent: list[float] = []
    estimate = _reference_estimate(loader, case, protocol, cfg["reference_estimator"], cfg["batch_size"], spent)
    chunk = (cfg["reference_permutations"] // 2) * (2 * n + 1)
    spec = re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg["reference_estimator"])  # a file name
    prefix = None if store is None else f"{store[1]}_{case_digest(case)}"   # the model's and the question's digests
    key = None if store is None else f"{prefix}_{spec}_{chunk}"
    stored = None if key is None else load_reference(key, store[0])
    ref = stored if stored is not None and stored.seeds == REFERENCE_SEEDS else start_reference(
        estimate, key or case.question.qid, case.question.question, cfg["reference_estimator"], chunk,
        int(np.argmax(loader.score(prepared, ones[None])[0])), prepared.n_video, REFERENCE_SEEDS)
    save = None if key is None else (lambda r: save_reference(r, store[0]))
    if save is not None and ref is not stored:
        save(ref)
    runs, values, tally = _question_runs(loader, case, prepared, q, cfg,
                                         None if store is None else store[0] / f"{prefix}_runs_{_runs_digest(cfg)}",
                                         print if progress else (lambda message: None))
    keys = [(r.pipeline, r.level) for r in runs]
    ref = trust_reference(ref, estimate, lambda r: smallest_mean_error(keys, [relative_l2_error(v, r.values) for v in values]),
                          trust=cfg["reference_trust"], own_error=lambda r: r.own_error_all, save=save,
                          max_chunks=max(1, cfg["reference_max_permutations"] // cfg["reference_permutations"]),
                          log=print if progress else (lambda message: None))
    runs = [replace(r, error=relative_l2_error(v, ref.values)) for r, v in zip(runs, values)]
    return runs, {
        "qid": case.question.qid, "question": case.question.question, "n_features": n,
        "n_video": prepared.n_video, "prompt_tokens": len(loader.token_ids(prepared, ones)),
        "video_tokens": int(prepared.kept_embeds.shape[0]), "reference_noise": ref.own_error_all,
        "reference_seconds": float(sum(spent)), "reference_permutations": 2 * ref.budget // (2 * n + 1),
        "reference_stored": stored is not None, "readout_checked": tally["checked"],
        "readout_differs": tally["differs"], "readout_max_diff": tally["max_diff"],
        "paper_steps": dict(sorted(tally["steps"].items(), key=lambda item: int(item[0])))}


def _question_runs(loader, case, prepared, q: int, cfg: dict, stem: Path | None, log) -> tuple[list[Run], list, dict]:
    """Every seed's runs of one question. Each seed's runs (and, in full mode, the read-out check) are
    stored apart under ``stem`` and reused, so a later run with more seeds only runs the new ones."""
    from vqa_shap.measure.paper_pipeline import PaperInputs

    build = None
    runs, values, tally = [], [], _new_tally()
    parts = ([("readout", None)] if cfg["paper_mode"] == "full" else []) + [(f"seed{s}", s) for s in cfg["seeds"]]
    for part, seed in parts:
        path = None if stem is None else stem.with_name(f"{stem.name}_{part}.npz")
        finished = None if path is None else _load_runs(path, q)
        if finished is None:
            wait_for_quiet(cfg["max_load"], log)     # before the paper's timed preprocessing, too
            if build is None:
                build = PaperInputs(loader, prepared, cfg["preprocess"])
            finished = [], [], _new_tally()
            if seed is None:  # the read-out comparison on random coalitions (sampled mode: on the timed ones)
                _check_readout(loader, prepared, build, q, cfg["timing_masks"], cfg["max_new_tokens"], finished[2])
            else:
                start = os.getloadavg()[0]
                seed_runs = _seed_runs(loader, case, prepared, build, q, seed, finished[1], finished[2], cfg)
                load = (start + os.getloadavg()[0]) / 2
                finished[0].extend(replace(r, load=load) for r in seed_runs)
            if path is not None:
                _save_runs(path, *finished)
        runs += finished[0]
        values += finished[1]
        tally = _merge_tallies(tally, finished[2])
    return runs, values, tally


def wait_for_quiet(max_load: float | None, log, poll_seconds: float = 20.0) -> float:
    """Sleep while the 1-minute load average is above ``max_load`` (None: never); the seconds waited.

    Called before each seed's runs, so a ratio is not measured while other work shares the machine."""
    waited = 0.0
    while max_load is not None and os.getloadavg()[0] > max_load:
        if waited == 0.0:
            log(f"  load {os.getloadavg()[0]:.2f} > {max_load:g}: waiting for a quiet machine")
        time.sleep(poll_seconds)
        waited += poll_seconds
    return waited


def _new_tally() -> dict:
    return {"checked": 0, "differs": 0, "max_diff": 0.0, "steps": {}}


def _merge_tallies(a: dict, b: dict) -> dict:
    steps = dict(a["steps"])
    for step, count in b["steps"].items():
        steps[step] = steps.get(step, 0) + count
    return {"checked": a["checked"] + b["checked"], "differs": a["differs"] + b["differs"],
            "max_diff": max(a["max_diff"], b["max_diff"]), "steps": steps}


#: the settings a question's stored runs depend on besides the seed (another value of any of them: other runs)
_RUN_SETTINGS = ("paper_levels", "ours_levels", "estimator", "paper_mode", "preprocess", "timing_masks",
                 "max_new_tokens", "batch_size", "threads")


def _runs_digest(cfg: dict) -> str:
    from vqa_shap.estimators import get_estimator
    from vqa_shap.estimators.auto import AutoEstimator, rule

    settings = {k: cfg[k] for k in _RUN_SETTINGS}
    if isinstance(get_estimator(cfg["estimator"]), AutoEstimator):   # "auto", or "default" standing for it
        # the default's rule changes as measurements come in: runs of another rule are not this one's (runs
        # stored before the rule joined the digest, of the rule without the rough-game pilot, are never reused)
        settings["auto_rule"] = rule()
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _save_runs(path: Path, runs: list[Run], values: list, tally: dict) -> None:
    """One seed's finished runs (or the read-out check), their values and read-out tally, written
    atomically beside the stored references."""
    atomic_write_npz(path, mkdir=True, values=np.stack([np.asarray(v, dtype=np.float64) for v in values]) if values else np.zeros(0),
                     runs=json.dumps([asdict(r) for r in runs]), tally=json.dumps(tally))


def _load_runs(path: Path, q: int) -> tuple[list[Run], list, dict] | None:
    if not path.exists():
        return None
    data = np.load(path)
    runs = [Run(**{**r, "question": q}) for r in json.loads(str(data["runs"]))]
    return runs, list(data["values"]), json.loads(str(data["tally"]))


def _check_budgets(cfg: dict, n: int) -> None:
    """Every vqa-shap budget must be one its estimator accepts for ``n`` players."""
    from vqa_shap.estimators import get_estimator

    need = get_estimator(cfg["estimator"]).min_budget(n)
    small = [level for level in cfg["ours_levels"] if int(round(level * (2 * n + 1))) < need]
    if small:
        raise ValueError(f"vqa-shap level(s) {small} are below estimator {cfg['estimator']!r}'s minimum budget "
                         f"for F = {n} players ({need} evaluations = {need / (2 * n + 1):.2f} permutations)")


def _check_readout(loader, prepared, build, q: int, timing_masks: int, max_new_tokens: int, tally: dict) -> None:
    """Compare the paper's read-out with ours on the full coalition and random ones (seeded by ``q``)."""
    from vqa_shap.measure.paper_pipeline import paper_score

    n = prepared.n_features
    rng = np.random.default_rng(q)
    check = np.concatenate([np.ones(n, dtype=bool)[None], rng.random((max(timing_masks - 1, 0), n)) < 0.5])
    for mask, ours in zip(check, loader.score(prepared, check)):
        _compare(paper_score(loader, prepared, mask, max_new_tokens=max_new_tokens, inputs=build), ours, tally)


def _print_progress(runs: Sequence[Run], q: int, n_cases: int, n: int, noise: float, load: float) -> None:
    """One line per question: mean seconds and error per pipeline and budget."""
    mine: dict[tuple, list[Run]] = {}
    for r in runs:
        if r.question == q:
            mine.setdefault((r.pipeline, r.level), []).append(r)
    parts = ", ".join(f"{p} x{lv:g} {np.mean([r.seconds for r in rs]):.1f} s "
                      f"err {np.mean([r.error for r in rs]):.3f}" for (p, lv), rs in mine.items())
    print(f"  question {q + 1}/{n_cases} (F={n}, reference noise {noise:.4f}, load {load:.1f}): {parts}", flush=True)


def _finish(model, trained, cases, cfg, questions, runs, load, n_boot) -> PipelineBench:
    from vqa_shap.measure.pipeline_report import summarise_bench

    info, summary = summarise_bench(cfg, questions, [asdict(r) for r in runs], n_boot)
    return PipelineBench(model=model, trained=trained, n_questions=len(cases), settings=cfg, questions=questions, runs=runs,
                         load=load, info=info, summary=summary)
