"""``vqa-shap build``: normalise a benchmark's official files into a Hub-style questions folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vqa_shap.builders import BUILDERS

    parser.add_argument("bench", metavar="BENCH", choices=BUILDERS.names(),
                        help=f"the benchmark layout: {', '.join(BUILDERS.names())}")
    parser.add_argument("source", metavar="SOURCE_DIR", type=argtypes.folder, help="the benchmark's annotation folder")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, metavar="FOLDER",
                        help="the Hub-style dataset folder to write (created, or extended with new configs)")
    parser.add_argument("--subset", type=Path, metavar="CSV", help="keep only the q_uid ids of this CSV, in its order")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                        help="stop at the first bad record (default) or skip bad records and report them")
    parser.add_argument("--skip-report", type=argtypes.out_file, metavar="PATH",
                        help="where to write the skipped records (default: FOLDER/skipped_BENCH.json when any)")
    parser.add_argument("--overwrite", action="store_true", help="replace configs that already exist in FOLDER")


def run(args: argparse.Namespace) -> int:
    from vqa_shap import hub
    from vqa_shap.builders import get_builder
    from vqa_shap.errors import VqaShapError

    report = args.skip_report or args.out / f"skipped_{args.bench}.json"
    _check_outputs(args, report)
    result = get_builder(args.bench).build(args.source, subset=args.subset, on_error=args.on_error)
    if result.skipped:  # always written when anything was skipped, even if nothing built
        result.write_skip_report(report)
    if not result.configs:
        raise VqaShapError(f"{args.source}: no {args.bench} questions were built"
                           + (f" ({result.skip_summary()}; report: {report})" if result.skipped else ""))
    # refuse before writing anything, so a refused build leaves the folder untouched
    clashes = sorted(set(hub.list_configs(args.out)) & set(result.configs))
    if clashes and not args.overwrite:
        raise VqaShapError(
            f"{args.out}: config(s) {', '.join(clashes)} already exist; pass --overwrite to replace them")

    card_vars = {"builder": args.bench}
    if args.subset is not None:
        card_vars["subset"] = args.subset.name  # the file name only: no local paths in a public card
    print(f"built {result.n_questions} questions from {args.source} ({args.bench} layout)")
    for config, questions in result.configs.items():
        info = hub.write_questions(args.out, config, questions, card_vars=card_vars, overwrite=args.overwrite)
        print(f"  {config}: {info.num_rows} questions -> {info.path}")
    print(result.skip_summary() + (f"; report: {report}" if result.skipped else ""))
    return 0


def _check_outputs(args: argparse.Namespace, report: Path) -> None:
    """Refuse, before any work, to write into the source folder or over files vqa-shap did not write."""
    from vqa_shap.errors import UsageError

    if args.out.resolve() == args.source.resolve():
        raise UsageError(f"--out {args.out} is the source folder; write the dataset to another folder")
    argtypes.refuse_foreign_card(args.out, args.overwrite)
    if args.skip_report is None and report.exists() and not args.overwrite:
        raise UsageError(f"{report} exists (an earlier skip report); pass --overwrite to replace it")
