"""Measure the bundled demo study (`vqa-shap run demo`) and regenerate its table in docs/study.md.

    python scripts/bench_study.py --out /tmp/study_demo --json benchmarks/study_demo.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="an empty folder for the study's outputs")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/study_demo.json"))
    parser.add_argument("--docs", type=Path, default=Path("docs/study.md"))
    args = parser.parse_args()

    from vqa_shap.measure.study_demo import measure, update_docs

    record = measure(args.out)
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    update_docs(record, args.docs)
    print(f"wrote {args.json} and the table of {args.docs}")


if __name__ == "__main__":
    main()
