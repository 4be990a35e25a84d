"""``vqa-shap build``: normalise a benchmark's official files into a Hub-style questions folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vqa_shap.builders import BUILDERS
    from vqa_shap.builders.base import ON_ERROR

    parser.add_argument("bench", metavar="BENCH", choices=BUILDERS.names(),
                        help=f"the benchmark layout: {', '.join(BUILDERS.names())}")
    parser.add_argument("source", metavar="SOURCE_DIR", type=argtypes.folder, help="the benchmark's annotation folder")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, metavar="FOLDER",
                        help="the Hub-style dataset folder to write (created, or extended with new configs)")
    parser.add_argument("--subset", type=Path, metavar="CSV", help="keep only the q_uid ids of this CSV, in its order")
    parser.add_argument("--on-error", choices=ON_ERROR, default="raise",
                        help="stop at the first bad record (default) or skip bad records and report them")
    parser.add_argument("--skip-report", type=argtypes.out_file, metavar="PATH",
                        help="where to write the skipped records (default: FOLDER/skipped_BENCH.json when any)")
    parser.add_argument("--overwrite", action="store_true", help="replace configs that already exist in FOLDER")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.builders.folder import build_folder

    report = args.skip_report or args.out / f"skipped_{args.bench}.json"
    _check_outputs(args, report)
    built = build_folder(args.bench, args.source, args.out, subset=args.subset, on_error=args.on_error,
                         skip_report=report, overwrite=args.overwrite)
    result = built.result
    answers = result.answer_summary()
    print(f"built {result.n_questions} questions from {args.source} ({args.bench} layout)"
          + (f": {answers}" if answers else ""))
    for info in built.configs:
        print(f"  {info.name}: {info.num_rows} questions -> {info.path}")
    print(result.skip_summary() + (f"; report: {report}" if result.skipped else ""))
    for line in result.repeat_summary():
        print(line)
    return 0


def _check_outputs(args: argparse.Namespace, report: Path) -> None:
    """Refuse, before any work, to write into the source folder or over files vqa-shap did not write."""
    from vqa_shap.errors import UsageError

    if args.out.resolve() == args.source.resolve():
        raise UsageError(f"--out {args.out} is the source folder; write the dataset to another folder")
    argtypes.refuse_foreign_card(args.out, args.overwrite)
    if args.skip_report is None and report.exists() and not args.overwrite:
        raise UsageError(f"{report} exists (an earlier skip report); pass --overwrite to replace it")
