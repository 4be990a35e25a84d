"""``vqa-shap demo``: the main job end to end on the embedded default, step by step.

The default is offline and meaningful: the synthetic coloured-shapes benchmark
(:mod:`vqa_shap.builders.shapes`, answers visible only in known *evidence frames*) and the demo
model (:mod:`vqa_shap.demo`, a small LLaVA-OneVision trained on it). The demo builds the
benchmark into a Hub-style questions folder, loads it back with ``datasets.load_dataset``, explains
it with the demo model into a Hub-style attributions folder, computes the paper's modality metrics and
draws a report image.

The demo is a list of steps (:data:`STEPS`) sharing one :class:`DemoState`; each step does its work
and prints what it did.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vqa_shap.commands import argtypes
from vqa_shap.atomic_files import atomic_write_text
from vqa_shap.estimators import DEFAULT_ESTIMATOR

#: Questions, frames and Shapley budget of the demo run.
DEMO_QUESTIONS = 12
DEMO_BUDGET = 400
DEMO_ESTIMATOR = DEFAULT_ESTIMATOR
#: File marking a folder as the demo's own output: a re-run may replace what is in it.
DEMO_MARKER = ".vqa-shap-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=argtypes.out_folder, default=Path("demo_out"), metavar="FOLDER",
                        help="where to write everything (default: ./demo_out): source/ (videos), questions/ and "
                             "attributions/ (Hub-style dataset folders), metrics.json, report/; re-runs replace them")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="seed of the synthetic benchmark and the estimator (default 0)")
    parser.add_argument("--questions", type=argtypes.int_range(1, 10_000), default=DEMO_QUESTIONS,
                        help=f"synthetic questions to generate and explain (default {DEMO_QUESTIONS})")
    parser.add_argument("--budget", type=argtypes.budget, default=DEMO_BUDGET,
                        help=f"model evaluations per question for the Shapley estimate (default {DEMO_BUDGET})")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out folder that an earlier demo did not create")


@dataclass
class DemoState:
    """What the demo steps share: the output folder, settings and what earlier steps produced."""

    out: Path
    seed: int = 0
    n_questions: int = DEMO_QUESTIONS
    budget: int = DEMO_BUDGET
    benchmark: str = ""
    configs: list[str] = field(default_factory=list)
    questions: dict = field(default_factory=dict)  # config -> list[Question], as loaded back
    attributions: dict = field(default_factory=dict)  # attributions config -> list[Attribution]

    @property
    def source(self) -> Path:
        return self.out / "source"

    @property
    def questions_dir(self) -> Path:
        return self.out / "questions"

    @property
    def attributions_dir(self) -> Path:
        return self.out / "attributions"


def step_build(state: DemoState) -> None:
    from vqa_shap.hub import folder as hub
    from vqa_shap.builders import get_builder
    from vqa_shap.builders.shapes import N_FRAMES, generate_source

    generate_source(state.source, state.n_questions, seed=state.seed)
    result = get_builder("synthetic").build(state.source)
    for config, questions in result.configs.items():
        hub.write_questions(state.questions_dir, config, questions, card_vars={"builder": "synthetic"},
                            overwrite=True)
        state.configs.append(config)
        state.benchmark = questions[0].benchmark
        tasks = sorted({q.task for q in questions})
        print(f"  {config}: {len(questions)} questions ({', '.join(tasks)}), {N_FRAMES}-frame videos in "
              f"{state.source / 'videos'}")
        print(f"  -> Hub-style questions folder {state.questions_dir}")


def step_load(state: DemoState) -> None:
    from vqa_shap.hub import folder as hub
    from vqa_shap.builders.shapes import evidence_frames
    from vqa_shap.schema.arrow import question_features
    from vqa_shap.schema.records import questions_from_rows

    print(f"  load_dataset({str(state.questions_dir)!r}, name=CONFIG, split='test'):")
    for config in state.configs:
        dataset = hub.load_config(state.questions_dir, config)
        questions = questions_from_rows(dataset)
        state.questions[config] = questions
        same = "same as question_features()" if dataset.features == question_features() else "DIFFERENT"
        print(f"  {config}: {len(dataset)} rows, features {same}")
    example = state.questions[state.configs[0]][0]
    print(f"\n  Example ({example.qid}, task {example.task}):")
    print(f"  Q: {example.question}")
    for index, option in enumerate(example.options):
        print(f"    {chr(65 + index)}. {option}" + ("   <- correct" if index == example.answer else ""))
    print(f"  video: {example.inputs[0].path}; the answer is visible only in frame(s) "
          f"{', '.join(map(str, evidence_frames(example)))}")


def step_explain(state: DemoState) -> None:
    import numpy as np

    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.builders.shapes import N_FRAMES, evidence_frames
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.explain.explain_run import ExplainRun, explain_questions

    config = state.configs[0]
    started = time.perf_counter()
    # restart: a re-run replaces the demo's own results (in attributions/.work/<config>; other settings allowed)
    result = explain_questions(ExplainRun(
        state.questions_dir, config, model=DEMO_MODEL, video_root=state.source, out=state.attributions_dir,
        frames=N_FRAMES, budget=state.budget, estimator=DEMO_ESTIMATOR, seed=state.seed, overwrite=True,
        restart=True, progress=False,
    ))
    attrs = load_attributions(state.attributions_dir, result.config)
    state.attributions[result.config] = attrs
    questions = {q.qid: q for q in state.questions[config]}
    print(f"  model 'demo' (LLaVA-OneVision, trained on this benchmark), estimator {DEMO_ESTIMATOR!r}, "
          f"budget {state.budget}: {result.n_computed} questions in {time.perf_counter() - started:.1f} s, "
          f"{result.evaluations} evaluations ({result.evaluations_per_s:.0f}/s), {result.n_errors} errors")
    print(f"  -> Hub-style attributions folder {state.attributions_dir} (config {result.config})")
    print(f"\n  {'qid':<20}{'task':<17}{'answer':>7}{'pred':>6}  top frame by |phi| (evidence)")
    hits = []
    for a in attrs:
        if a.error is not None:
            print(f"  {a.qid:<20}error: {a.error}")
            continue
        video = [i for i, f in enumerate(a.features) if f.modality == "video"]
        top = video[int(np.argmax(np.abs(a.shapley[video, a.answer])))]
        frame = int(round(a.features[top].time * questions[a.qid].inputs[0].fps))
        evidence = evidence_frames(questions[a.qid])
        hits.append(frame in evidence)
        print(f"  {a.qid:<20}{a.task:<17}{chr(65 + a.answer):>7}{chr(65 + a.prediction):>6}  "
              f"frame {frame} ({', '.join(map(str, evidence))}){'' if frame in evidence else '  x'}")
    correct = [a.prediction == a.answer for a in attrs if a.error is None]
    print(f"\n  accuracy {np.mean(correct):.2f}; top frame is an evidence frame for {sum(hits)}/{len(hits)} questions")


def step_metrics(state: DemoState) -> None:
    from vqa_shap.analysis.metrics_table import compute, json_ready, paper_table

    rows, _ = compute(state.attributions_dir, list(state.attributions), bootstrap=200, seed=state.seed)
    print("  " + paper_table(rows).replace("\n", "\n  "))
    path = state.out / "metrics.json"
    atomic_write_text(path, json.dumps(json_ready(rows), indent=2, allow_nan=False) + "\n")
    print(f"  (MC: share of |phi| per modality; PF: per-feature share)  -> {path}")


def step_report(state: DemoState) -> None:
    from vqa_shap.analysis.report import build_report

    questions = {q.qid: q for qs in state.questions.values() for q in qs}
    result = build_report(state.attributions, state.out / "report", questions=questions, video_root=state.source,
                          max_questions=1, bootstrap=100, progress=False)
    for path in (*result.questions, result.shares):
        print(f"  {path}")


#: (title, step) in order.
STEPS: list[tuple[str, Callable[[DemoState], None]]] = [
    ("generate the synthetic coloured-shapes benchmark and build it into a Hub-style folder", step_build),
    ("load it back with datasets.load_dataset", step_load),
    ("explain every question with the demo model", step_explain),
    ("modality metrics (the paper's table)", step_metrics),
    ("report image", step_report),
]


def claim_output_folder(out: Path, *, overwrite: bool = False) -> None:
    """Refuse to write into a non-empty folder the demo did not create (unless ``overwrite``); mark it as the demo's.

    A re-run replaces the demo's own results; anything else in the folder (e.g. an explain work
    directory with unmerged shard results) is never deleted.
    """
    from vqa_shap.errors import UsageError

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / DEMO_MARKER).exists() and not overwrite:
        raise UsageError(f"--out {out} is not empty and was not written by vqa-shap demo; choose another folder "
                         "or pass --overwrite (the demo replaces only its own source/, questions/, attributions/, "
                         "metrics.json and report/)")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).touch()


def run(args: argparse.Namespace) -> int:
    claim_output_folder(Path(args.out), overwrite=getattr(args, "overwrite", False))
    state = DemoState(out=args.out, seed=args.seed, n_questions=args.questions, budget=args.budget)
    started = time.perf_counter()
    print(f"vqa-shap demo -> {state.out}")
    for number, (title, step) in enumerate(STEPS, start=1):
        print(f"\n[{number}/{len(STEPS)}] {title}")
        step(state)
    print(f"\nDone in {time.perf_counter() - started:.0f} s: questions in {state.questions_dir}, attributions in "
          f"{state.attributions_dir}, report in {state.out / 'report'}.")
    print(f"Publish with: vqa-shap push {state.questions_dir} USER/NAME")
    return 0
