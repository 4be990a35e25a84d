#!/usr/bin/env python
"""The interactions study on the demo benchmark (vqa_shap.measure.interactions): are two evidence frames
redundant (negative k-SII), and does an evidence frame interact with the question word naming what to
look for? Exact k-SII of the demo model's game on frames + key word, means and 95% CIs over questions
drawn with several question seeds; writes JSON and regenerates the tables between markers.

    python scripts/bench_interactions.py --json benchmarks/interactions.json --doc README.md docs/interactions.md
    python scripts/bench_interactions.py --regenerate-doc --json benchmarks/interactions.json --doc README.md docs/interactions.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=16, help="synthetic questions per question seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="question seeds")
    parser.add_argument("--approximator-budgets", type=int, nargs="*", default=[128, 256])
    parser.add_argument("--approximator-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", default=None, help="write the measurements here")
    parser.add_argument("--doc", nargs="*", default=[], help="files whose interactions table to regenerate")
    parser.add_argument("--regenerate-doc", action="store_true", help="only regenerate --doc from --json")
    args = parser.parse_args(argv)

    from vqa_shap.measure.interactions import format_table, run_study, summarise, update_docs

    if args.regenerate_doc:
        with open(args.json, encoding="utf-8") as handle:
            print("updated:", update_docs(args.doc, json.load(handle)) or "nothing")
        return 0
    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vqa_shap_interactions_") as workdir:
        rows = run_study(n_questions=args.questions, seeds=args.seeds, workdir=workdir,
                         approximator_budgets=args.approximator_budgets, approximator_seeds=args.approximator_seeds)
    summary = summarise(rows)
    data = {"settings": {"n_questions": args.questions, "seeds": args.seeds, "model": "demo", "index": "k-SII",
                         "approximator": "KernelSHAPIQ", "approximator_budgets": args.approximator_budgets,
                         "approximator_seeds": args.approximator_seeds, "torch_threads": 1,
                         "loadavg": [round(x, 2) for x in os.getloadavg()], "loadavg_start": list(load_before)},
            "summary": summary, "questions": rows}
    print(format_table(summary))
    print("approximator relative error:", summary["approximator_relative_error"])
    if args.json:
        from vqa_shap.atomic_files import atomic_write_json

        atomic_write_json(args.json, data, indent=1)
        print(f"json: {args.json}")
        if args.doc:
            print("updated:", update_docs(args.doc, data) or "nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
