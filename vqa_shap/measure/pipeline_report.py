"""Statistics and tables of the pipeline benchmark (:mod:`vqa_shap.measure.pipeline`).

Pure functions of the benchmark's records, so the summary and the Markdown tables can be regenerated
from the committed JSON (``scripts/bench_pipeline.py --from-json``):

* :func:`~vqa_shap.measure.stats.mean_ci` — mean and 95% confidence half-width over questions (each question's mean over
  seeds is one observation: seeds of one question are not independent draws of questions);
* :func:`time_at_error` — the compute a pipeline needs for a given error, by linear interpolation of
  its error-vs-time curve in log-log coordinates;
* :func:`equal_error_speedup` / :func:`summarise` — the speed-up at equal error (the paper's time for
  its error at its largest budget over the time vqa-shap needs for that error), with a bootstrap 95%
  CI that resamples questions and seeds;
* :func:`format_table`, :func:`render_doc` — the Markdown table and the doc section between
  :data:`START` and :data:`END` (or a named table's markers, :func:`markers`, for a second benchmark
  in the same page).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from vqa_shap.measure.doc_tables import markers as doc_markers, replace_between
from vqa_shap.measure.stats import mean_ci

__all__ = ["START", "END", "markers", "time_at_error", "equal_error_speedup", "summarise", "format_table",
           "trusted_questions", "smallest_mean_error", "render_doc"]

START, END = doc_markers("pipeline-table")


def markers(table: str | None = None) -> tuple[str, str]:
    """The start and end markers of a doc's pipeline table: :data:`START`/:data:`END`, or for a named
    table (e.g. ``"paper-budget"``) ``<!-- pipeline-table:NAME:start -->`` and its end."""
    return doc_markers(f"pipeline-table:{table}" if table else "pipeline-table")


PAPER = "paper"
OURS = "vqa-shap"


def time_at_error(times: Sequence[float], errors: Sequence[float], target: float) -> tuple[float, bool]:
    """The time at which a pipeline's error-vs-time curve reaches ``target``, interpolated log-log.

    The points are sorted by time; the first segment whose errors bracket ``target`` is interpolated
    linearly in ``(log time, log error)``. Outside the measured errors the nearest end segment is
    extended (flagged); a single point is extended with slope -1/2 (Monte Carlo error ∝ 1/√compute).

    Returns:
        ``(time, extrapolated)``.
    """
    t = np.log(np.asarray(times, dtype=np.float64))
    e = np.log(np.maximum(np.asarray(errors, dtype=np.float64), 1e-300))
    order = np.argsort(t)
    t, e = t[order], e[order]
    y = math.log(target)
    for i in range(len(t) - 1):
        lo, hi = sorted((e[i], e[i + 1]))
        if lo <= y <= hi:
            if e[i] == e[i + 1]:
                return float(math.exp(t[i])), False
            return float(math.exp(t[i] + (y - e[i]) * (t[i + 1] - t[i]) / (e[i + 1] - e[i]))), False
    if len(t) == 1:
        return float(math.exp(t[0] + (y - e[0]) / -0.5)), True
    i = 0 if abs(y - e[0]) < abs(y - e[-1]) else len(t) - 2
    slope = (e[i + 1] - e[i]) / (t[i + 1] - t[i])
    if slope >= 0:  # the error does not fall with compute here: the extension is meaningless
        return float("nan"), True
    # a nearly flat curve extends beyond any float: the error is not reached at any sane compute
    return float(math.exp(min(t[i] + (y - e[i]) / slope, 700.0))), True


def equal_error_speedup(paper: tuple[np.ndarray, np.ndarray], ours: tuple[np.ndarray, np.ndarray]
                        ) -> tuple[float, float, bool]:
    """Speed-up of vqa-shap over the paper at the paper's error at its largest budget.

    Args:
        paper: ``(times, errors)`` of the paper's budgets (means), in budget order.
        ours: the same for vqa-shap.

    Returns:
        ``(speed-up, target error, extrapolated)``: the paper's time at the target over vqa-shap's
        interpolated time for it.
    """
    p_times, p_errors = (np.asarray(a, dtype=np.float64) for a in paper)
    target = float(p_errors[-1])
    ours_time, extrapolated = time_at_error(ours[0], ours[1], target)
    return float(p_times[-1] / ours_time), target, extrapolated


def _grids(runs: Sequence[Mapping], questions: Sequence[int]) -> dict:
    """``{pipeline: {level: (errors[Q, S], seconds[Q, S], evaluations[Q, S])}}`` over ``questions``."""
    seeds = sorted({r["seed"] for r in runs})
    qpos = {q: i for i, q in enumerate(questions)}
    spos = {s: i for i, s in enumerate(seeds)}
    grids: dict = {}
    for r in runs:
        if r["question"] not in qpos:
            continue
        cells = grids.setdefault(r["pipeline"], {}).setdefault(
            r["level"], np.full((3, len(questions), len(seeds)), np.nan))
        cells[:, qpos[r["question"]], spos[r["seed"]]] = (r["error"], r["seconds"], r["evaluations"])
    return grids


def _curve(grid: Mapping, q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    levels = sorted(grid)
    times = np.array([grid[lv][1][np.ix_(q, s)].mean() for lv in levels])
    errors = np.array([grid[lv][0][np.ix_(q, s)].mean() for lv in levels])
    return times, errors


def summarise(runs: Sequence[Mapping], questions: Sequence[int], *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Rows (mean and 95% CI of error and time per pipeline and budget) and the speed-up at equal error.

    Args:
        runs: records with ``pipeline``, ``level`` (budget in permutations of ``2F+1``), ``question``,
            ``seed``, ``error``, ``seconds``, ``evaluations``.
        questions: the questions the summary is over (e.g. those whose read-outs agree).
        n_boot: bootstrap resamples (questions and seeds drawn with replacement, independently).
        seed: the bootstrap's seed (the summary is deterministic).
    """
    grids = _grids(runs, questions)
    for pipeline, grid in grids.items():
        for level, cells in grid.items():
            if np.isnan(cells).any():
                raise ValueError(f"pipeline benchmark: {pipeline} at {level} permutations lacks a question or seed")
    rows = []
    for pipeline in (PAPER, OURS):
        for level in sorted(grids[pipeline]):
            errors, seconds, evaluations = grids[pipeline][level]
            err, err_ci = mean_ci(errors.mean(axis=1))
            sec, sec_ci = mean_ci(seconds.mean(axis=1))
            rows.append({"pipeline": pipeline, "level": level, "evaluations": float(evaluations.mean()),
                         "error": err, "error_ci": err_ci, "seconds": sec, "seconds_ci": sec_ci})
    n_q, n_s = grids[PAPER][min(grids[PAPER])][0].shape
    everything = (np.arange(n_q), np.arange(n_s))
    speedup, target, extrapolated = equal_error_speedup(_curve(grids[PAPER], *everything),
                                                        _curve(grids[OURS], *everything))
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        q, s = rng.integers(0, n_q, n_q), rng.integers(0, n_s, n_s)
        boot.append(equal_error_speedup(_curve(grids[PAPER], q, s), _curve(grids[OURS], q, s))[0])
    boot = np.asarray(boot)
    finite = boot[np.isfinite(boot)]
    lo, hi = (np.percentile(finite, [2.5, 97.5]) if len(finite) else (float("nan"), float("nan")))
    return {"rows": rows, "target_error": target, "speedup": speedup, "speedup_ci": [float(lo), float(hi)],
            "extrapolated": bool(extrapolated), "bootstrap": n_boot,
            "bootstrap_undefined": int(len(boot) - len(finite)),
            "questions": len(questions), "seeds": n_s}


def _reference_permutations(bench: Mapping) -> str:
    """The reference's permutations: the setting, or the range per question when references grew."""
    grown = [q["reference_permutations"] for q in bench["questions"] if "reference_permutations" in q]
    low, high = (min(grown), max(grown)) if grown else (bench["settings"]["reference_permutations"],) * 2
    return f"{low}" if low == high else f"{low}-{high}"


def smallest_mean_error(keys: Sequence, errors: Sequence[float]) -> float:
    """The smallest error a reference measures on its question: the least, over budgets (``keys``:
    pipeline and level of each run), of the mean error over seeds — what a table row reports."""
    groups: dict = {}
    for key, error in zip(keys, errors):
        groups.setdefault(key, []).append(error)
    return min(float(np.mean(g)) for g in groups.values())


def trusted_questions(bench: Mapping) -> list[bool]:
    """Per question: is its reference's own error below a third of the smallest error it measures
    (:func:`smallest_mean_error`)? A reference measures only its own question's runs."""
    trusted = []
    for i, q in enumerate(bench["questions"]):
        mine = [r for r in bench["runs"] if r["question"] == i]
        smallest = smallest_mean_error([(r["pipeline"], r["level"]) for r in mine], [r["error"] for r in mine])
        trusted.append(q["reference_noise"] < smallest / 3)
    return trusted


def _reference_check(bench: Mapping) -> str:
    trusted = trusted_questions(bench)
    if all(trusted):
        return f"is below a third of the smallest error it measures on every question ({len(trusted)} of {len(trusted)})"
    return (f"is NOT below a third of the smallest error it measures on {len(trusted) - sum(trusted)} of "
            f"{len(trusted)} questions")


def _ci(mean: float, half: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {half:.{digits}f}" if math.isfinite(half) else f"{mean:.{digits}f}"


def format_table(bench: Mapping) -> str:
    """The Markdown section of one model's benchmark (a dict as written to the JSON)."""
    s, summary, info = bench["settings"], bench["summary"], bench["info"]
    load = bench["load"]
    paper_label = {"once": "paper (shap, batch 1, pixels preprocessed once, `generate` per mask)",
                   "per_mask": "paper (shap, batch 1, processor + `generate` per mask)"}[s["preprocess"]]
    lines = [
        f"**{bench['model']}** — {summary['questions']} questions × {summary['seeds']} seeds; "
        f"F = {info['n_features']:.0f} players ({info['n_video']:.0f} frames, {info['video_tokens']:.0f} video "
        f"tokens, prompt {info['prompt_tokens']:.0f} tokens); vqa-shap estimator `{s['estimator']}`; "
        f"{s['threads']} torch thread(s); {_load(load)}.",
        "",
        "| pipeline | budget (permutations of 2F+1) | evaluations | error vs reference | s / question |",
        "|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        label = paper_label if r["pipeline"] == PAPER else f"vqa-shap (`{s['estimator']}`)"
        lines.append(f"| {label} | {r['level']:g} | {r['evaluations']:.0f} | {_ci(r['error'], r['error_ci'], 3)} | "
                     f"{_ci(r['seconds'], r['seconds_ci'], 2)} |")
    lo, hi = summary["speedup_ci"]
    lines += [
        "",
        f"Speed-up at equal error (the paper's error at its largest budget, {summary['target_error']:.3f}): "
        f"**{summary['speedup']:.1f}×** (95% bootstrap CI {lo:.1f}–{hi:.1f}, questions and seeds resampled"
        f"{'; vqa-shap extrapolated beyond its measured errors' if summary['extrapolated'] else ''}).",
        _decomposition(summary),
        f"Paper's time: {_paper_time(s)}. ± is the 95% CI over questions (each question's mean over seeds).",
        f"Reference: `{s['reference_estimator']}` at {_reference_permutations(bench)} permutations "
        f"(two halves with independent seeds); its own relative error, mean {info['reference_noise_mean']:.4f}, "
        f"max {info['reference_noise_max']:.4f}, {_reference_check(bench)}.",
        f"Read-outs (paper: the first of A, B, … among the generated tokens; vqa-shap: next-token logits) "
        f"compared on {info['readout_checked']} coalitions: they differ on {info['readout_differs']} "
        f"(in {info['questions_differ']} of {bench['n_questions']} questions); where they agree, to "
        f"{info['readout_max_diff']:.1e}. {_readout_policy(s)}",
    ]
    return "\n".join(lines)


def cost_ratio_by_load(bench: Mapping) -> list[tuple[float, float]]:
    """Sorted by load: the 1-minute load average and the paper's cost per evaluation over vqa-shap's
    (seconds / evaluations at each pipeline's largest budget). Per question and seed when every run
    records the load its seed ran at, else per question (mean over seeds, the load recorded after it).
    Both pipelines run interleaved, so load should move the two alike: this shows whether it inflates
    the ratio."""
    runs = bench["runs"]
    if _per_seed_loads(runs):
        groups = {}
        for r in runs:
            groups.setdefault((r["question"], r["seed"]), []).append(r)
        return sorted((float(mine[0]["load"]), _cost_ratio(mine)) for mine in groups.values())
    return sorted((float(load), _cost_ratio([r for r in runs if r["question"] == q]))
                  for q, load in enumerate(bench["load"]["samples"][:bench["n_questions"]]))


def _per_seed_loads(runs) -> bool:
    return bool(runs) and all(np.isfinite(r.get("load", float("nan"))) for r in runs)


def _cost_ratio(runs: list) -> float:
    per_eval = {}
    for pipeline in (PAPER, OURS):
        mine = [r for r in runs if r["pipeline"] == pipeline]
        top = max(r["level"] for r in mine)
        per_eval[pipeline] = float(np.mean([r["seconds"] / r["evaluations"] for r in mine if r["level"] == top]))
    return per_eval[PAPER] / per_eval[OURS]


def format_load_check(bench: Mapping) -> str:
    """One Markdown sentence: the cost-per-evaluation ratio beside the load (every question's; with
    per-seed loads, the means below and above the median load)."""
    pairs = cost_ratio_by_load(bench)
    loads, ratios = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    corr = float(np.corrcoef(loads, ratios)[0, 1]) if len(pairs) > 2 and loads.std() > 0 else float("nan")
    if not _per_seed_loads(bench["runs"]):
        listed = ", ".join(f"{r:.1f}× at {l:.1f}" for l, r in pairs)
        return (f"Load check ({bench['model']}): the paper's cost per evaluation over vqa-shap's, per question, "
                f"beside the load average recorded after it: {listed} (correlation {corr:.2f}).")
    median = float(np.median(loads))
    low, high = ratios[loads < median], ratios[loads >= median]
    split = (f"{low.mean():.1f}× on average below the median load {median:.1f} ({len(low)} seeds), "
             f"{high.mean():.1f}× at or above it ({len(high)} seeds)") if len(low) else \
        f"{high.mean():.1f}× on average ({len(high)} seeds, one load)"
    return (f"Load check ({bench['model']}): the paper's cost per evaluation over vqa-shap's, per question and "
            f"seed, beside the load average while the seed ran ({loads.min():.1f}–{loads.max():.1f}): "
            f"{split}; correlation {corr:.2f}.")


def _decomposition(summary: Mapping) -> str:
    """The speed-up as (cost per evaluation) × (evaluations needed), from the rows' means."""
    rows = {p: [r for r in summary["rows"] if r["pipeline"] == p] for p in (PAPER, OURS)}
    per_eval = {p: rows[p][-1]["seconds"] / rows[p][-1]["evaluations"] for p in rows}
    ours_evals, _ = time_at_error([r["evaluations"] for r in rows[OURS]], [r["error"] for r in rows[OURS]],
                                  summary["target_error"])
    paper_evals = rows[PAPER][-1]["evaluations"]
    return (f"Roughly, it is the cost per evaluation, {per_eval[PAPER]:.3f} s (paper) vs {per_eval[OURS]:.3f} s "
            f"(vqa-shap), {per_eval[PAPER] / per_eval[OURS]:.1f}×, times evaluations to reach that error, "
            f"{paper_evals:.0f} vs {ours_evals:.0f} (interpolated), {paper_evals / ours_evals:.2f}×.")


def _load(load: Mapping) -> str:
    samples = [load["start"][0], *load["samples"], load["end"][0]]
    processes = load.get("processes", 1)
    return (f"machine load (1-minute load average, 2 cores) {np.mean(samples):.1f} on average, from "
            f"{min(samples):.1f} to {max(samples):.1f}"
            + (f"; the questions were split over {processes} benchmark processes" if processes > 1 else ""))


def _paper_time(settings: Mapping) -> str:
    if settings["paper_mode"] == "full":
        return "measured end to end (shap's PermutationExplainer running the paper's forward at every budget)"
    return (f"budget × its seconds per evaluation, measured per question and seed on {settings['timing_masks']} "
            f"of its own coalitions scored the paper's way, interleaved with vqa-shap's runs, plus the one-off "
            f"preprocessing; its values are shap's permutation sampling (vqa-shap's `permutation`, equal to shap "
            f"for the same seed) over vqa-shap's read-out")


def _readout_policy(settings: Mapping) -> str:
    if settings["paper_mode"] == "full":
        return "Questions where they differ are left out of both pipelines' errors."
    return "The paper's values use vqa-shap's read-out, so a difference never enters the error."


def render_doc(text: str, report: Mapping, table: str | None = None) -> str:
    """``text`` with the tables of ``report`` (the benchmark JSON) between :data:`START` and :data:`END`,
    or between the markers of the named ``table`` (:func:`markers`).

    Raises:
        ValueError: the markers are missing or out of order.
    """
    body = "\n\n".join(format_table(bench) for bench in report["models"].values())
    return replace_between(text, *markers(table), body + "\n")


def summarise_bench(cfg: dict, questions: list[dict], runs: list[dict], n_boot: int) -> tuple[dict, dict]:
    """The per-model facts (``info``) and the summary of a benchmark's records.

    In full mode the paper's values carry its own read-out, so questions where it differs from
    vqa-shap's on a checked coalition are left out of the summary (they are counted in ``info``).
    """
    differ = [i for i, q in enumerate(questions) if q["readout_differs"]]
    kept = [i for i in range(len(questions)) if cfg["paper_mode"] == "sampled" or i not in differ]
    info = {key: float(np.mean([q[key] for q in questions]))
            for key in ("n_features", "n_video", "prompt_tokens", "video_tokens", "reference_seconds")}
    noises = [q["reference_noise"] for q in questions]
    info.update(reference_noise_mean=float(np.mean(noises)), reference_noise_max=float(np.max(noises)),
                readout_checked=sum(q["readout_checked"] for q in questions),
                readout_differs=sum(q["readout_differs"] for q in questions),
                readout_max_diff=max(q["readout_max_diff"] for q in questions), questions_differ=len(differ),
                questions_in_summary=len(kept))
    return info, summarise(runs, kept or list(range(len(questions))), n_boot=n_boot)


def _measured(settings: Mapping) -> dict:
    """The settings a run's figures depend on: not ``max_load``, which only decides when a seed starts
    (the load each seed ran at is recorded in its runs)."""
    return {k: v for k, v in settings.items() if k != "max_load"}


def merge_benches(parts: Sequence[dict], n_boot: int = 2000) -> dict:
    """One benchmark (as a dict) from runs of the same model and settings on disjoint question sets
    (e.g. two processes on a 2-core machine); the summary is recomputed over all questions.

    Raises:
        ValueError: the parts differ in model or settings.
    """
    first = parts[0]
    for part in parts[1:]:
        if (part["model"], part.get("trained"), _measured(part["settings"])) != \
                (first["model"], first.get("trained"), _measured(first["settings"])):
            raise ValueError(f"cannot merge benchmarks of different models or settings: {first['model']!r}, "
                             f"{part['model']!r}")
    waits = [part["settings"].get("max_load") for part in parts]
    if len(set(waits)) > 1:   # how each part waited for a quiet machine, kept part by part
        first = {**first, "settings": {**first["settings"], "max_load": waits}}
    questions, runs, samples = [], [], []
    for part in parts:
        runs += [{**r, "question": r["question"] + len(questions)} for r in part["runs"]]
        questions += part["questions"]
        samples += part["load"]["samples"]
    load = {"start": first["load"]["start"], "samples": samples, "end": parts[-1]["load"]["end"],
            "processes": len(parts)}
    info, summary = summarise_bench(first["settings"], questions, runs, n_boot)
    return {**first, "n_questions": len(questions), "questions": questions, "runs": runs, "load": load,
            "info": info, "summary": summary}
