"""``vqa-shap metrics``: the paper's modality metrics of an attributions dataset, with intervals.

Prints the paper's table (Ground Truth signal: MC V/Q/A, PF V/Q/A, Acc) per model × benchmark ×
variant; ``--json`` writes every signal's subset means with bootstrap intervals (and propagated
standard errors where the attributions carry them), ``--markdown`` a readable report,
``--per-question`` the paper's per-question table. Rows with ``error`` are excluded and counted.
"""

from __future__ import annotations

import argparse
import json

from vqa_shap.analysis.metrics_table import compute, json_ready, markdown_report, paper_table
from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributions", metavar="ATTRIBUTIONS", type=argtypes.folder,
                        help="Hub-style attributions dataset folder (vqa-shap explain / import-paper)")
    parser.add_argument("--config", action="append", type=argtypes.config_name, metavar="C",
                        help="config to evaluate (repeatable; default: every config in the folder)")
    parser.add_argument("--json", type=argtypes.out_file, metavar="OUT", help="write the metric rows as JSON")
    parser.add_argument("--markdown", type=argtypes.out_file, metavar="OUT", help="write a Markdown report")
    parser.add_argument("--per-question", type=argtypes.out_file, metavar="OUT",
                        help="write the per-question metrics (the paper's q_uid_metrics layout) as CSV")
    parser.add_argument("--paper-compat", action="store_true",
                        help="reproduce the paper's answer Ratio (count divided by all features, not answer features)")
    parser.add_argument("--bootstrap", type=argtypes.bootstrap, default=1000, metavar="N",
                        help="question resamples for the confidence intervals (0: none; default 1000)")
    parser.add_argument("--confidence", type=argtypes.confidence, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="bootstrap seed")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from vqa_shap.analysis.metrics import question_metrics_frame
    from vqa_shap.atomic_files import atomic_write_text

    rows, per_question = compute(args.attributions, args.config, paper_compat=args.paper_compat,
                                 bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed)
    print(paper_table(rows))
    if args.json:
        atomic_write_text(args.json, json.dumps(json_ready(rows), indent=2, allow_nan=False) + "\n", mkdir=True)
        print(f"wrote {len(rows)} rows to {args.json}")
    if args.markdown:
        atomic_write_text(args.markdown, markdown_report(rows) + "\n", mkdir=True)
        print(f"wrote {args.markdown}")
    if args.per_question:
        frames = {config: question_metrics_frame(qms) for config, qms in per_question.items() if qms}
        table = pd.concat(frames, names=["config", "qid", "signal"]) if frames else pd.DataFrame()
        atomic_write_text(args.per_question, table.to_csv(), mkdir=True)
        print(f"wrote {args.per_question}")
    return 0
