"""``vqa-shap view``: a self-contained static HTML site of an attributions dataset.

The site opens from disk (``SITE/index.html``) or from any static web server, and can be uploaded
into the Hub dataset repository next to the parquet files (docs/viewer.md).
"""

from __future__ import annotations

import argparse

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributions", metavar="ATTRIBUTIONS", type=argtypes.folder, help="Hub-style attributions folder")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, metavar="SITE",
                        help="folder to write the site into (missing, empty, or a site an earlier view wrote)")
    parser.add_argument("--config", action="append", type=argtypes.config_name, metavar="C",
                        help="attributions config (repeatable; default: every attributions config in the folder)")
    parser.add_argument("--questions", type=argtypes.folder, help="Hub-style questions folder (question text, videos)")
    parser.add_argument("--questions-config", action="append", metavar="QC", type=argtypes.config_name,
                        help="questions config(s) (default: the ones the attributions cards record)")
    parser.add_argument("--video-root", type=argtypes.folder, help="folder of the videos (needs --questions; "
                        "without it frames are placeholders)")
    parser.add_argument("--report", type=argtypes.folder, metavar="DIR",
                        help="a `vqa-shap report` output folder whose top-level PNG figures and CSV tables the "
                        "index shows, copied into the site (default: those at the top of ATTRIBUTIONS, if any)")
    parser.add_argument("--interactions", type=argtypes.folder, metavar="DIR",
                        help="a `vqa-shap interactions` output folder: each question page shows the pairwise values "
                        "of the same question, model and variant as a frame x word heat map")
    parser.add_argument("--bootstrap", type=argtypes.bootstrap, default=200,
                        help="resamples of the metrics' confidence intervals (default 200; 0: none)")
    parser.add_argument("--title", default="vqa-shap attributions", help="heading of the index page")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.view.folder import site_from_folder

    built = site_from_folder(args.attributions, args.out, configs=args.config, questions=args.questions,
                             questions_configs=args.questions_config, video_root=args.video_root,
                             report=args.report, interactions=args.interactions, bootstrap=args.bootstrap,
                             title=args.title, progress=not args.no_progress)
    result = built.site
    print(f"site of {len(result.configs)} config(s), {result.n_questions} question(s) "
          f"({result.n_errors} error rows) in {result.seconds:.1f} s: {result.out / 'index.html'}")
    for entry in built.skipped:
        print(f"  skipped non-attributions config {entry}")
    if built.interactions or built.unmatched:
        print(f"  interactions config(s) {list(built.interactions)} shown on the question pages"
              + (f"; {list(built.unmatched)} match no attributions config (same model, benchmark, variant)"
                 if built.unmatched else ""))
    n_tables = sum(r.endswith(".csv") for r in result.reports)
    print(f"  {result.n_thumbnails} frame thumbnails, {len(result.reports) - n_tables} report figure(s), "
          f"{n_tables} report table(s)")
    if result.placeholders:
        reason = next(iter(result.placeholders.values()))
        print(f"  {len(result.placeholders)} question(s) with placeholder frames (e.g. {reason})")
    return 0
