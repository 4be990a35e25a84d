#!/usr/bin/env python
"""Estimators run end to end on a trained demo model's games, error from the seeds' spread.

``--model demo-realistic`` (32 frames, EgoSchema-length prompt, F ~ 160) or ``demo-long`` (64 frames,
F ~ 74), on the pipeline benchmark's questions; every coalition is memoised in $VQA_SHAP_CACHE, so a
re-run scores nothing (``vqa_shap.measure.trained_runs``).

    python scripts/bench_trained_runs.py --model demo-realistic --questions 0 --specs permutation centred_msr \\
        --budgets 1280 4800 --seeds 3 --json a.json
    python scripts/bench_trained_runs.py --from-json a.json b.json --json benchmarks/estimators_trained_runs.json \\
        --doc docs/estimators.md
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from vqa_shap.measure.model_games import add_game_arguments

    add_game_arguments(parser, "demo-realistic", "trained-runs table")
    parser.add_argument("--specs", nargs="+", default=["permutation", "centred_msr"],
                        help="estimator specs; permutation (shap's sampler) is the baseline of the ratios")
    parser.add_argument("--budgets", nargs="+", type=int, default=[1280, 2400, 4800])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per spec and budget (at least 2: the error is their spread)")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: the error is measured from the spread between seeds")

    from vqa_shap.measure.doc_tables import update_file
    from vqa_shap.measure.model_games import measure_questions, merge_json
    from vqa_shap.measure.trained_runs import DOC_END, DOC_START, format_table, load_runs, run_specs, save_json, summarise

    command = "scripts/bench_trained_runs.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_json:
        runs, command, meta = merge_json(args.from_json, load_runs)
    else:
        runs, meta = measure_questions(args.model, args.questions, lambda *game: run_specs(
            *game, args.specs, args.budgets, range(args.seeds)), cache_dir=args.cache)
    table = format_table(summarise(runs))
    print(table)
    if args.json:
        save_json(runs, args.json, command, meta)
    if args.doc:
        update_file(args.doc, DOC_START, DOC_END, table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
