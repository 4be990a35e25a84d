"""``vqa-shap demo``: the main job on the bundled sample benchmark, step by step.

The demo is a list of steps (:data:`STEPS`) sharing one :class:`DemoState`; each step does its work
and prints what it did. Later stages of the pipeline (explain, metrics, report) append steps.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: The variants the demo derives from the sample benchmark.
DEMO_VARIANTS = ("easy", "hard_5")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), metavar="FOLDER",
                        help="where to write the demo's Hub-style dataset folder (default: ./demo_out); "
                             "configs the demo writes are replaced on re-runs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the variants (default 0)")


@dataclass
class DemoState:
    """What the demo steps share: the output folder and what earlier steps produced."""

    out: Path
    seed: int = 0
    benchmark: str = ""
    configs: list[str] = field(default_factory=list)
    questions: dict = field(default_factory=dict)  # config -> list[Question], as loaded back


def step_build(state: DemoState) -> None:
    from vqa_shap import hub
    from vqa_shap.builders import SAMPLE_DIR, get_builder

    result = get_builder("egoschema").build(SAMPLE_DIR)
    for config, questions in result.configs.items():
        hub.write_questions(state.out, config, questions, card_vars={"builder": "egoschema"}, overwrite=True)
        state.configs.append(config)
        state.benchmark = questions[0].benchmark
        print(f"  {config}: {len(questions)} questions built from the bundled sample (EgoSchema layout)")


def step_variants(state: DemoState) -> None:
    from vqa_shap.commands.augment import augment

    source = state.configs[0]
    for variant in DEMO_VARIANTS:
        info = augment(state.out, source, variant, seed=state.seed, overwrite=True)
        state.configs.append(info.name)
        print(f"  {info.name}: {info.num_rows} questions (variant {variant} of {source}, seed {state.seed})")


def step_load(state: DemoState) -> None:
    from vqa_shap import hub
    from vqa_shap.schema import question_features, questions_from_rows

    print(f"  load_dataset({str(state.out)!r}, name=CONFIG, split='test'):")
    print(f"  {'config':<22}{'questions':>10}  {'options/question':<18}{'variant':<10}features")
    for config in state.configs:
        dataset = hub.load_config(state.out, config)
        questions = questions_from_rows(dataset)
        state.questions[config] = questions
        counts = sorted({q.n_options for q in questions})
        options = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        same = "same as question_features()" if dataset.features == question_features() else "DIFFERENT"
        print(f"  {config:<22}{len(dataset):>10}  {options:<18}{questions[0].variant:<10}{same}")
    example = state.questions[state.configs[-1]][0]
    print(f"\n  Example ({state.configs[-1]}, qid {example.qid}, task {example.task}):")
    print(f"  Q: {example.question}")
    for index, option in enumerate(example.options):
        origin = example.option_origin[index]
        mark = "  <- correct" if index == example.answer else ""
        print(f"    {chr(65 + index)}. {option}   [from {origin.qid}#{origin.index}]{mark}")
    print(f"  video: {', '.join(i.path for i in example.inputs)} (relative to the video root)")


#: (title, step) in order; later stages append theirs.
STEPS: list[tuple[str, Callable[[DemoState], None]]] = [
    ("build the bundled sample benchmark into a Hub-style folder", step_build),
    (f"add the {' and '.join(DEMO_VARIANTS)} variants", step_variants),
    ("load every config back with datasets.load_dataset", step_load),
]


def run(args: argparse.Namespace) -> int:
    state = DemoState(out=args.out, seed=args.seed)
    print(f"vqa-shap demo -> {state.out}")
    for number, (title, step) in enumerate(STEPS, start=1):
        print(f"\n[{number}/{len(STEPS)}] {title}")
        step(state)
    print(f"\nDone: {len(state.configs)} configs in {state.out} (card: {state.out / 'README.md'}).")
    print(f"Publish with: vqa-shap push {state.out} USER/NAME")
    return 0
