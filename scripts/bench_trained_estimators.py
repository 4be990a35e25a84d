#!/usr/bin/env python
"""Estimator efficiency on a trained demo model's games: per-sample variance x compute.

``--model demo-long`` (64 frames, F = 74, the default) or ``demo-realistic`` (32 frames, EgoSchema-length
prompt, F ~ 160), on the pipeline benchmark's questions. For each question: permutation paths (= shap's samples) and text-flip sets scored once
(memoised in $VQA_SHAP_CACHE), then the compute ``permutation`` needs over the compute ``text_flips``
needs for the same expected error, with a bootstrap CI (``vqa_shap.measure.sample_efficiency``).

    python scripts/bench_trained_estimators.py --questions 0 --paths 50 --flip-sets 60 --json a.json
    python scripts/bench_trained_estimators.py --from-json a.json b.json --json benchmarks/estimators_trained.json \\
        --doc docs/estimators.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from vqa_shap.measure.model_games import add_game_arguments

    add_game_arguments(parser, "demo-long", "trained-table")
    parser.add_argument("--paths", type=int, default=16, help="permutation paths per question (even)")
    parser.add_argument("--flip-sets", type=int, default=40, help="text-flip sets per question")
    args = parser.parse_args(argv)

    from vqa_shap.measure.doc_tables import update_file
    from vqa_shap.measure.model_games import measure_questions, merge_json
    from vqa_shap.measure.sample_efficiency import (DOC_END, DOC_START, format_table, load_samples,
                                                  measure_question, save_json, summary)

    command = "scripts/bench_trained_estimators.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_json:
        samples, command, meta = merge_json(args.from_json, load_samples)
    else:
        samples, meta = measure_questions(args.model, args.questions, lambda *game: [measure_question(
            *game, args.paths, args.flip_sets)], cache_dir=args.cache)
    print(format_table([summary(s) for s in samples]))
    if args.json:
        save_json(samples, args.json, command, meta)
        if args.doc:
            with open(args.json) as fh:
                rows = json.load(fh)["summary"]
            update_file(args.doc, DOC_START, DOC_END, format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
