"""``vqa-shap report``: PNG figures of an attributions dataset.

Per question: attribution bars coloured by modality and a Figure-1-style report (frames with borders
coloured by their value, coloured question/option words, metrics in the margin). Per dataset:
modality shares (MC/PF V/Q/A per model × benchmark) and per-modality violins. Frames are decoded when
``--questions`` and ``--video-root`` are given; otherwise placeholder tiles show the frame times.
The paper's other figures are drawn when the configs allow: answer replacement (several variants of
one model × benchmark), words and heat maps (every config), convergence (configs that differ only in
budget).
"""

from __future__ import annotations

import argparse
from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributions", metavar="ATTRIBUTIONS", type=argtypes.folder, help="Hub-style attributions folder")
    parser.add_argument("--config", action="append", type=argtypes.config_name, metavar="C",
                        help="attributions config (repeatable; default: every config in the folder)")
    parser.add_argument("--questions", type=argtypes.folder, help="Hub-style questions folder (to decode frames)")
    parser.add_argument("--questions-config", metavar="QC", type=argtypes.config_name,
                        help="questions config (default: the one each attributions card records)")
    parser.add_argument("--video-root", type=argtypes.folder, help="folder of the videos (frames are placeholders without it)")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, help="output folder for the PNG files and index.md")
    parser.add_argument("--max-questions", type=argtypes.positive_int, default=None,
                        help="per config, at most this many per-question images (default: all)")
    parser.add_argument("--bootstrap", type=argtypes.bootstrap, default=200,
                        help="resamples for the shares' confidence intervals (default 200; 0: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis.report_folder import report_folder

    result = report_folder(args.attributions, args.out, configs=args.config, questions=args.questions,
                           questions_config=args.questions_config, video_root=args.video_root,
                           max_questions=args.max_questions, bootstrap=args.bootstrap,
                           progress=not args.no_progress)
    configs = args.config or hub.list_configs(args.attributions)
    print(f"report of {len(configs)} config(s) in {result.out}:")
    print(f"  {result.shares}")
    print(f"  {result.violins}")
    print(f"  {len(result.bars)} attribution bar plots, {len(result.questions)} question reports"
          + (f", {len(result.skipped)} error rows skipped" if result.skipped else ""))
    placeholders = len(result.notes)
    if placeholders:
        reason = next(iter(result.notes.values()))
        print(f"  {placeholders} question report(s) with placeholder frames ({reason})")
    paper = result.paper
    if paper is not None:
        print(f"  paper figures: {len(paper.answer_replacement)} answer replacement, {len(paper.words)} words, "
              f"{len(paper.heatmaps)} heat map(s), {'a' if paper.convergence else 'no'} convergence check; "
              f"{len(paper.tables)} table(s)")
        for note in paper.notes:
            print(f"  note: {note}")
    print(f"  index: {result.index}")
    return 0
