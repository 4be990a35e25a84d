#!/usr/bin/env python
"""Calibration of the recorded ``relative_error`` on trained games, from stored permutation paths.

No model is evaluated: the paths stored by ``scripts/bench_trained_estimators.py``
(``benchmarks/estimators_trained.json``) are resampled (``vqa_shap.measure.error_calibration``).

    python scripts/bench_error_calibration.py --samples benchmarks/estimators_trained.json \\
        --json benchmarks/error_calibration.json --doc docs/estimators.md
    python scripts/bench_error_calibration.py --from-json benchmarks/error_calibration.json --doc docs/estimators.md
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
    parser.add_argument("--samples", default="benchmarks/estimators_trained.json",
                        help="JSON with stored paths (scripts/bench_trained_estimators.py --json)")
    parser.add_argument("--reps", type=int, default=None, help="resampled estimates per question and paths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-json", default=None, help="no resampling: render this calibration JSON")
    parser.add_argument("--json", default=None, help="write the calibration here")
    parser.add_argument("--doc", default=None, help="rewrite the calibration table of this markdown file")
    args = parser.parse_args(argv)

    from vqa_shap.measure.doc_tables import replace_between
    from vqa_shap.measure.error_calibration import (CALIBRATION_END, CALIBRATION_START, REPS, calibration_rows,
                                                    format_table, load)

    if args.from_json:
        data = load(args.from_json)
    else:
        with open(args.samples) as fh:
            questions = json.load(fh)["questions"]
        data = {"command": "scripts/bench_error_calibration.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "samples": args.samples, **calibration_rows(questions, args.reps or REPS, args.seed)}
    table = format_table(data)
    print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
    if args.doc:
        with open(args.doc) as fh:
            doc = fh.read()
        with open(args.doc, "w") as fh:
            fh.write(replace_between(doc, CALIBRATION_START, CALIBRATION_END, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
