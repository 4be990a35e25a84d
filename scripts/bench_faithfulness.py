#!/usr/bin/env python
"""Faithfulness against ground truth: is the top-|phi| frame an evidence frame? (demo model, synthetic)

    python scripts/bench_faithfulness.py --json faithfulness.json

For each estimator and budget, on held-out synthetic questions whose evidence frames are known: the
share of questions whose top-ranked frame (|phi| of the ground-truth option) is an evidence frame, and
precision@k (k = number of evidence frames), next to a random ranking. The logic lives in
``vqa_shap.analysis.faithfulness``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", help="model (default: the demo model)")
    parser.add_argument("--questions", type=int, default=30, help="held-out synthetic questions")
    parser.add_argument("--question-seed", type=int, default=424242, help="seed of the questions")
    parser.add_argument("--estimators", nargs="+", default=["permutation", "cyclic", "kernel", "leverage", "stratified"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[64, 128, 256, 512])
    parser.add_argument("--seed", type=int, default=0, help="estimator seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", metavar="OUT", help="write the rows as JSON")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from vqa_shap.measure.bench_cases import synthetic_cases
    from vqa_shap.analysis.faithfulness import as_dicts, format_table, run_faithfulness
    from vqa_shap.loaders import resolve_model

    torch.set_num_threads(args.threads)
    loader_cls, checkpoint = resolve_model(args.model)
    loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
    with tempfile.TemporaryDirectory() as tmp:
        cases = synthetic_cases(args.questions, seed=args.question_seed, workdir=tmp, loader_family=loader.family)
        rows = run_faithfulness(loader, cases, estimators=args.estimators, budgets=args.budgets, seed=args.seed)
    print(f"{args.model}: {len(cases)} held-out synthetic questions (seed {args.question_seed})\n")
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": args.model, "questions": len(cases), "question_seed": args.question_seed,
                       "threads": args.threads, "rows": as_dicts(rows)}, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
