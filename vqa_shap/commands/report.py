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
from pathlib import Path

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
    from vqa_shap import hub
    from vqa_shap.analysis import maskbench
    from vqa_shap.errors import VqaShapError
    from vqa_shap.analysis.report import build_report

    available = hub.list_configs(args.attributions)
    if not available:
        raise VqaShapError(f"{args.attributions}: no dataset configs found (expected a Hub-style attributions folder)")
    configs = args.config or available
    unknown = [c for c in configs if c not in available]
    if unknown:
        raise VqaShapError(f"{args.attributions}: unknown config(s) {unknown}; available: {available}")
    attributions = {c: maskbench.load_attributions(args.attributions, c) for c in configs}
    settings = {c: maskbench.attribution_settings(args.attributions, c) for c in configs}
    by_config = None
    if args.questions is not None:
        # each config reads its own questions config: variants of one benchmark share qids
        qconfig = {c: args.questions_config or s.get("questions_config") for c, s in settings.items()}
        if None in qconfig.values():
            raise VqaShapError("pass --questions-config (an attributions card records no questions config)")
        loaded = {qc: {q.qid: q for q in hub.load_questions(args.questions, qc)} for qc in set(qconfig.values())}
        by_config = {c: loaded[qc] for c, qc in qconfig.items()}
    result = build_report(attributions, args.out, questions_by_config=by_config, video_root=args.video_root,
                          max_questions=args.max_questions, bootstrap=args.bootstrap,
                          frame_settings=settings, progress=not args.no_progress)
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
