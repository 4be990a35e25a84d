"""``vqa-shap run``: a study file's models × benchmarks × variants, built, explained, measured and drawn,
resumable at every step (docs/study.md)."""

from __future__ import annotations

import argparse

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="STUDY",
                        help="a study file (YAML, docs/study.md) or the name of a bundled study: demo")
    parser.add_argument("--out", type=argtypes.out_folder, default=None, metavar="DIR",
                        help="output folder (default: the study file's 'out', else ./<study name>_study)")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, done or to do, and do nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.study.study_run import describe, output_folder, run_study
    from vqa_shap.study.spec import load_study

    study = load_study(args.study)
    out = output_folder(study, args.out)
    if args.dry_run:
        describe(study, out)
        return 0
    run_study(study, out, progress=not args.no_progress)
    return 0
