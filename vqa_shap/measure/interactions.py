"""The interactions study on the demo benchmark, where the evidence frames are known.

For each synthetic question (:mod:`vqa_shap.builders.shapes`) the demo model's game on the
ground-truth option's score is restricted to the video frames plus the **key word** — the question
word that names what to look for (``square`` in "What colour was the square?", ``red`` in "Which
shape was red?"; "Which shape was shown?" has none) — every other word kept; its exact pairwise k-SII
(:func:`vqa_shap.interactions.exact_interactions`, ``2^9 = 512`` coalitions) gives per question

* ``evidence x evidence``: the two evidence frames' interaction (two-evidence questions);
* ``evidence x other frame``: mean over pairs of an evidence frame and a frame without the answer;
* ``evidence x key word``: mean over the evidence frames;
* ``other frame x key word``: mean over the frames without the answer (the control);
* the three modality interactions (video x question, video x answer, question x answer; 8 coalitions).

Values are in the option-score units (logits for the demo model). Also measured: the error of a
shapiq approximator against the exact values on the same games (its coalitions come from the cache,
so it costs no model evaluation). Used by ``scripts/bench_interactions.py``.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from vqa_shap.measure.doc_tables import markers, replace_between, update_file
from vqa_shap.measure.stats import mean_ci
from vqa_shap.interactions.index import exact_interactions, modality_groups, shapiq_interactions

__all__ = ["QUANTITIES", "key_word", "question_interactions", "run_study", "summarise", "format_table"]

#: quantity -> table label, in table order
QUANTITIES = {
    "evidence_x_evidence": "evidence frame × evidence frame (two-evidence questions)",
    "evidence_x_other": "evidence frame × frame without the answer",
    "evidence_x_keyword": "evidence frame × key question word",
    "other_x_keyword": "frame without the answer × key question word",
    "video_x_question": "video × question (modality groups)",
    "video_x_answer": "video × answer (modality groups)",
    "question_x_answer": "question × answer (modality groups)",
}


def key_word(question) -> str | None:
    """The word naming what to look for (lower case), or None (``shape_shown`` questions)."""
    from vqa_shap.builders.shapes import evidence_frames

    frame = question.extra["frames"][evidence_frames(question)[0]]
    return {"colour_of_shape": frame["shape"], "shape_of_colour": frame["colour"]}.get(question.task)


def _study_groups(features, frame_indices: Sequence[int], evidence: Sequence[int], word: str | None):
    """Players (video frames, then the key word if found), and which are evidence frames."""
    video = [f for f, feat in enumerate(features) if feat.modality == "video"]
    groups = [[f] for f in video]
    is_evidence = [frame_indices[j] in set(evidence) for j in range(len(video))]
    if word is not None:
        matches = [f for f, feat in enumerate(features) if feat.modality == "question"
                   and feat.name.lower().strip("?.,") == word]
        if matches:
            groups.append([matches[0]])
    return groups, is_evidence


def question_interactions(loader, case, protocol, *, approximator_budgets: Sequence[int] = (),
                          approximator_seeds: Sequence[int] = (0,), approximator: str = "KernelSHAPIQ") -> dict:
    """The study's quantities for one synthetic question (see the module docstring).

    Returns:
        A dict with ``qid``, ``task``, ``n_evidence``, ``has_keyword``, each of :data:`QUANTITIES` (None
        where it does not apply), ``evaluations``, ``seconds`` and ``approx_error``: per budget, the
        mean absolute error of the approximator's pair values over ``approximator_seeds``, relative to
        the mean absolute exact pair value.
    """
    from vqa_shap.builders.shapes import evidence_frames
    from vqa_shap.game import Game

    start = time.perf_counter()
    prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
    features = protocol.features(case.question, case.plan, loader.temporal_unit)
    frame_indices = [case.plan.frames[g[0]].index for g in protocol.frame_groups(case.plan, loader.temporal_unit)]
    evidence = evidence_frames(case.question)
    groups, is_evidence = _study_groups(features, frame_indices, evidence, key_word(case.question))
    answer = int(case.question.answer)

    def game(player_groups):
        return Game(lambda c: loader.score(prepared, c), prepared.n_features, groups=player_groups,
                    video_features=prepared.n_video)

    frames_game = game(groups)
    exact = exact_interactions(frames_game)
    matrix = exact.matrix(answer)
    n_video = len(is_evidence)
    ev = [j for j in range(n_video) if is_evidence[j]]
    other = [j for j in range(n_video) if not is_evidence[j]]
    has_word = len(groups) > n_video
    modality = exact_interactions(game(modality_groups([f.modality for f in features])))
    m = modality.matrix(answer)
    out = {
        "qid": case.question.qid, "task": case.question.task, "n_evidence": len(ev), "has_keyword": has_word,
        "evidence_x_evidence": float(matrix[ev[0], ev[1]]) if len(ev) == 2 else None,
        "evidence_x_other": float(np.mean([matrix[e, o] for e in ev for o in other])) if other else None,
        "evidence_x_keyword": float(np.mean([matrix[e, n_video] for e in ev])) if has_word else None,
        "other_x_keyword": float(np.mean([matrix[o, n_video] for o in other])) if has_word and other else None,
        "video_x_question": float(m[0, 1]), "video_x_answer": float(m[0, 2]), "question_x_answer": float(m[1, 2]),
        "evaluations": int(frames_game.evaluations + 8),
        "value_range": float(exact.value_full[answer] - exact.value_empty[answer]),
    }
    scale = float(np.mean(np.abs(exact.values[:, answer]))) or 1.0
    out["approx_error"] = {}
    for budget in approximator_budgets:
        errors = [np.mean(np.abs(shapiq_interactions(frames_game, int(budget), approximator=approximator,
                                                     seed=int(s)).values[:, answer] - exact.values[:, answer]))
                  for s in approximator_seeds]
        out["approx_error"][str(int(budget))] = float(np.mean(errors)) / scale  # str keys: as JSON has them
    out["seconds"] = time.perf_counter() - start
    return out


def run_study(*, n_questions: int, seeds: Sequence[int], workdir: str | os.PathLike, approximator_budgets=(128, 256),
              approximator_seeds=(0, 1, 2), approximator: str = "KernelSHAPIQ", progress: bool = True) -> list[dict]:
    """Every question of ``n_questions`` synthetic questions per question seed, with the demo model."""
    from tqdm.auto import tqdm

    from vqa_shap.measure.bench_cases import synthetic_cases
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    protocol = get_protocol("pollard2025")
    loader_cls, checkpoint = resolve_model("demo")
    loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
    rows = []
    for seed in seeds:
        cases = synthetic_cases(n_questions, seed=int(seed), workdir=os.path.join(workdir, f"seed{seed}"))
        for case in tqdm(cases, desc=f"interactions seed {seed}", unit="q", disable=not progress):
            row = question_interactions(loader, case, protocol, approximator_budgets=approximator_budgets,
                                        approximator_seeds=approximator_seeds, approximator=approximator)
            rows.append({"question_seed": int(seed), **row})
    return rows


def summarise(rows: Sequence[dict]) -> dict:
    """Per quantity: questions, mean, 95% CI half-width (Student t), share of negative values and
    the mean per question seed; plus the approximator's relative error per budget."""
    out = {}
    for key in QUANTITIES:
        values = [r[key] for r in rows if r.get(key) is not None]
        if not values:
            continue
        mean, half = mean_ci(values)
        per_seed = {}
        for seed in sorted({r["question_seed"] for r in rows}):
            seed_values = [r[key] for r in rows if r["question_seed"] == seed and r.get(key) is not None]
            if seed_values:
                per_seed[str(seed)] = float(np.mean(seed_values))
        out[key] = {"questions": len(values), "mean": mean, "ci95": half,
                    "negative_share": float(np.mean(np.asarray(values) < 0)), "mean_per_question_seed": per_seed}
    ranges = [r["value_range"] for r in rows if r.get("value_range") is not None]
    if ranges:
        out["value_range"] = dict(zip(("mean", "ci95"), mean_ci(np.abs(ranges))))
    budgets = sorted({int(b) for r in rows for b in r.get("approx_error", {})})
    out["approximator_relative_error"] = {
        str(b): dict(zip(("mean", "ci95"), mean_ci([r["approx_error"][str(b)] for r in rows
                                                     if str(b) in r.get("approx_error", {})])))
        for b in budgets}
    return out


def format_table(summary: dict) -> str:
    """The Markdown table of the README and docs/interactions.md."""
    lines = ["| pair (ground-truth option's score) | questions | mean k-SII [95% CI] | mean per question seed | negative |",
             "|---|---:|---|---|---:|"]
    for key, label in QUANTITIES.items():
        s = summary.get(key)
        if s is None:
            continue
        lines.append(f"| {label} | {s['questions']} | {s['mean']:+.2f} [{s['mean'] - s['ci95']:+.2f}, "
                     f"{s['mean'] + s['ci95']:+.2f}] | {' / '.join(f'{v:+.2f}' for v in s['mean_per_question_seed'].values())} "
                     f"| {100 * s['negative_share']:.0f}% |")
    return "\n".join(lines)


# ------------------------------------------------------------------ JSON and generated tables
DOC_START, DOC_END = markers("interactions-table")
COMMAND = "python scripts/bench_interactions.py --json benchmarks/interactions.json --doc README.md docs/interactions.md"


def render_doc(text: str, data: dict) -> str:
    """``text`` with its interactions table (between :data:`DOC_START`/:data:`DOC_END`) regenerated from ``data``."""
    return replace_between(text, DOC_START, DOC_END, _doc_block(data))


def _doc_block(data: dict) -> str:
    """The generated block: the table and a paragraph on the settings, the scale and the approximator."""
    s = data["settings"]
    body = (f"{format_table(data['summary'])}\n\n"
            f"Demo model, {s['n_questions']} synthetic questions per question seed {s['seeds']} "
            f"({data['summary'].get('evidence_x_evidence', {}).get('questions', 0)} with two evidence frames), "
            f"exact k-SII (2^9 coalitions per question), torch on 1 thread; machine load {s['loadavg'][0]:.1f}.")
    if "value_range" in data["summary"]:
        body += (f" For scale: the score moves by {data['summary']['value_range']['mean']:.2f} on average (|v(all 9)"
                 " − v(none)|, the rest of the prompt kept).")
    approx = data["summary"].get("approximator_relative_error") or {}
    if approx:
        errors = ", ".join(f"{v['mean']:.2f} ± {v['ci95']:.2f} at {b}" for b, v in approx.items())
        body += (f" shapiq's {s['approximator']} on the same games, against the exact values (mean |error| of the "
                 f"pair values / mean |exact pair value|, seeds {s['approximator_seeds']}): {errors} coalitions.")
    return body + "\n"


def update_docs(paths: Sequence[str | os.PathLike], data: dict) -> list[str]:
    """Regenerate the table in every file of ``paths``; returns the files that changed."""
    block = _doc_block(data)
    return [str(path) for path in paths if update_file(path, DOC_START, DOC_END, block)]
