#!/usr/bin/env python
"""How long `vqa-shap view` takes on a config of 5,000 questions (synthetic rows, no videos).

    python scripts/bench_view.py --json benchmarks/bench_view.json --doc docs/viewer.md

One distinct synthetic dataset per seed, each written as a Hub-style attributions folder and viewed
end to end (parquet loading, metrics with bootstrap intervals, data files); the mean build time and
its 95% interval over the seeds, with the machine load. The logic lives in
``vqa_shap.measure.view_site``; this script only parses arguments, prints and writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5000, help="questions in the config (default 5000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one synthetic dataset per seed")
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples of the metrics' intervals (the default)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--from-json", metavar="IN", help="measure nothing: regenerate --doc from this JSON")
    parser.add_argument("--doc", metavar="MD", help="regenerate the table between the view-bench markers of MD")
    args = parser.parse_args(argv)
    if args.questions < 1 or len(args.seeds) < 2:
        print("bench_view: --questions must be >= 1 and --seeds needs at least two seeds (for an interval)", file=sys.stderr)
        return 2
    from vqa_shap.measure.view_site import bench_view, render_table, update_doc

    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-view-") as tmp:
            report = bench_view(tmp, n_questions=args.questions, seeds=tuple(args.seeds), bootstrap=args.bootstrap)
        for run in report["runs"]:
            print(f"seed {run['seed']}: {run['seconds']:.1f} s, site {run['site_bytes'] / 2**20:.1f} MiB")
    print(render_table(report), end="")
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.doc:
        update_doc(args.doc, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
