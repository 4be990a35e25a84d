#!/usr/bin/env python
"""Benchmark the Shapley estimators against analytic values, side by side with shap.

Error (relative L2 of the target column of φ, mean over seeds) versus evaluations and versus modelled
compute (prefix + suffix cost model) for every test game, F and estimator; the budget each estimator
needs to match shap's PermutationExplainer at 5000 evaluations. Prints markdown tables, writes a PNG
and optionally JSON.

    python scripts/bench_estimators.py --quick              # smoke run (seconds)
    python scripts/bench_estimators.py --json bench.json    # full run (~10 min on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import sys

# one BLAS thread: the grid is many small solves, and oversubscribed threads only slow them down
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", nargs="+", default=["additive", "pairwise", "higher_order", "video_like"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 60, 250])
    parser.add_argument("--estimators", nargs="+",
                        default=["permutation", "cyclic", "kernel", "leverage", "stratified"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[250, 500, 1000, 2000, 5000, 10000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--reference-budget", type=int, default=5000)
    parser.add_argument("--prefix-cost", type=float, default=24.0, help="ms per distinct video prefix")
    parser.add_argument("--suffix-cost", type=float, default=7.0, help="ms per coalition's text suffix")
    parser.add_argument("--full-cost", type=float, default=30.0, help="ms per full forward (games without video)")
    parser.add_argument("--plot", default="bench_estimators.png", help="PNG output path")
    parser.add_argument("--json", default=None, help="write all measurements as JSON here")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (video_like, F=20, 2 seeds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.games, args.sizes, args.seeds = ["video_like"], [20], 2
        args.budgets, args.reference_budget = [100, 400], 400

    from vqa_shap.bench.estimators import format_summary, format_tables, plot, run_benchmark, save_json
    from vqa_shap.game import CostModel

    result = run_benchmark(args.games, args.sizes, args.estimators, args.budgets, seeds=args.seeds,
                           reference="shap", reference_budget=args.reference_budget,
                           cost_model=CostModel(args.prefix_cost, args.suffix_cost, args.full_cost))
    print(format_tables(result))
    print(f"#### evaluations / compute saved versus shap@{args.reference_budget} (fewer evals× / less compute×)\n")
    print(format_summary(result))
    print()
    plot(result, args.plot)
    print(f"plot: {args.plot}")
    if args.json:
        save_json(result, args.json)
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
