#!/usr/bin/env python
"""Benchmark the Shapley estimators: error versus modelled compute, against permutation (= shap).

Relative L2 error of φ (target option) against exact values, mean over seeds, versus modelled
compute (measured cost model: 55 ms per distinct video prefix, 12.6 ms per coalition's text suffix)
for every game, estimator and budget; the compute each estimator needs to match permutation
sampling (identical to shap's PermutationExplainer) at 5000 evaluations, with a bootstrap CI.

    python scripts/bench_estimators.py --json benchmarks/estimators.json --doc docs/estimators.md
    python scripts/bench_estimators.py --quick                          # smoke run (seconds)
    python scripts/bench_estimators.py --regenerate-doc                 # docs table from the JSON only

The ``demo_model`` game enumerates the demo model's 2^18 coalitions once (15-35 min on one thread),
cached in ``$VQA_SHAP_CACHE`` (default ``~/.cache/vqa-shap``); later runs take ~5-8 minutes.
Estimator specs take options: ``shared_video:per_video=8``, ``shapiq:approximator=SVARM``.
"""

from __future__ import annotations

import argparse
import os
import sys

# one BLAS/torch thread: the grid is many small solves, and oversubscribed threads only slow them down
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ESTIMATORS = ["auto", "cyclic", "text_flips", "text_flips:shifts=2", "text_flips:shifts=2,text_draws=8", "neyman_flips", "shared_video", "shared_video:per_video=2", "shared_video:per_video=8", "kernel",
              "kernel:border=True", "kernel:border=True,tail=1", "kernel:border=True,tail=2", "leverage", "stratified", "kernel:text_per_video=4", "regression_adjusted",
              "regression_adjusted:order=2,sizes=kernel", "regression_adjusted:size_effects=True",
              "regression_adjusted:order=0,size_effects=True", "centred_msr", "forest_msr", "forest_msr:folds=4", "shapiq", "shapiq:approximator=SVARM"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", nargs="+", default=["demo_model", "video_like", "higher_order"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[60, 250], help="F of the synthetic games")
    parser.add_argument("--estimators", nargs="+", default=ESTIMATORS)
    parser.add_argument("--budgets", nargs="+", type=int, default=[250, 500, 1000, 2000, 5000, 10000, 20000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--reference-budget", type=int, default=5000)
    parser.add_argument("--prefix-cost", type=float, default=55.0, help="ms per distinct video prefix")
    parser.add_argument("--suffix-cost", type=float, default=12.6, help="ms per coalition's text suffix")
    parser.add_argument("--full-cost", type=float, default=96.0, help="ms per full forward (games without video)")
    parser.add_argument("--shapiq-max-players", type=int, default=24,
                        help="skip shapiq's approximators on larger games (minutes per estimate there)")
    parser.add_argument("--json", default=None, help="write all measurements as JSON here")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the measured (game, F, estimator) cells of an existing --json")
    parser.add_argument("--doc", default=None, help="regenerate the table of this markdown file (between markers)")
    parser.add_argument("--regenerate-doc", action="store_true",
                        help="only rewrite --doc (default docs/estimators.md) from --json "
                             "(default benchmarks/estimators.json)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (video_like, F=20, 2 seeds)")
    args = parser.parse_args(argv)

    from vqa_shap.measure.estimators import format_tables, load_json, merge_results, run_benchmark, save_json, update_doc
    from vqa_shap.game import CostModel

    if args.regenerate_doc:
        doc, data = args.doc or "docs/estimators.md", args.json or "benchmarks/estimators.json"
        print(f"{doc}: {'updated' if update_doc(doc, data) else 'already up to date'}")
        return 0
    if args.quick:
        args.games, args.sizes, args.seeds = ["video_like"], [20], 2
        args.budgets, args.reference_budget = [100, 400], 400
        args.estimators = ["shap", "cyclic", "shared_video", "kernel", "leverage", "stratified"]
    import torch

    torch.set_num_threads(1)
    result = run_benchmark(args.games, args.sizes, args.estimators, args.budgets, seeds=args.seeds,
                           reference="permutation", reference_budget=args.reference_budget,
                           cost_model=CostModel(args.prefix_cost, args.suffix_cost, args.full_cost),
                           shapiq_max_players=args.shapiq_max_players)
    if args.merge:
        if not args.json or not os.path.exists(args.json):
            parser.error("--merge needs an existing --json file")
        result = merge_results(load_json(args.json), result)
    print(format_tables(result))
    if args.json:
        save_json(result, args.json)
        print(f"json: {args.json}")
        if args.doc:
            update_doc(args.doc, args.json)
            print(f"doc: {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
