#!/usr/bin/env python
"""Modality contributions (MC/PF of V, Q, A) of the trained realistic-proportion demo model next to the
paper's FrozenBiLM and InternVideo rows, written as JSON and as the table in docs/demo.md.

    python scripts/bench_modalities.py --paper PAPER --json benchmarks/modalities_demo_realistic.json
    python scripts/bench_modalities.py --from-json benchmarks/modalities_demo_realistic.json   # table only

PAPER is the paper's files laid out as docs/analysis.md describes (``subsets/``, ``answers/``,
``shapley/<model>/<benchmark>/``). The logic lives in ``vqa_shap.measure.modalities``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo-realistic", help="the model to explain (--model of explain)")
    parser.add_argument("--paper", type=Path, help="the paper's published files (needed unless --from-json)")
    parser.add_argument("--questions", type=int, default=12, help="synthetic questions explained (the paper's tables here have 12 per benchmark)")
    parser.add_argument("--budget", type=int, default=530, help="evaluations per question (2 permutations at F ~ 132)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "modalities_demo_realistic.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "demo.md")
    parser.add_argument("--from-json", action="store_true", help="no runs: render the table from --json")
    args = parser.parse_args(argv)

    from vqa_shap.measure.modalities import measure_model, measure_paper, update_doc

    if args.from_json:
        record = json.loads(args.json.read_text())
    else:
        if args.paper is None or not (args.paper / "shapley").is_dir():
            print(f"error: --paper {args.paper}: need the paper's files with a shapley/ folder", file=sys.stderr)
            return 2
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        with tempfile.TemporaryDirectory() as tmp:
            record = {"command": " ".join(["scripts/bench_modalities.py", *(argv or sys.argv[1:])]),
                      "model": measure_model(args.model, Path(tmp) / "model", n_questions=args.questions,
                                             budget=args.budget, threads=args.threads),
                      "paper_rows": measure_paper(args.paper, Path(tmp) / "paper")}
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    update_doc(record, args.doc)
    print(f"updated {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
