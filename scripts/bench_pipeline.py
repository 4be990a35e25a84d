#!/usr/bin/env python
"""The paper's pipeline vs vqa-shap's, side by side in one run, on the demo model and on a
realistic-proportion model (32 frames x 36 tokens, ~150 text tokens).

    python scripts/bench_pipeline.py --json bench_pipeline.json
    python scripts/bench_pipeline.py --models demo --questions 2       # quicker

Paper: shap PermutationExplainer, batch size 1, processor + generate per mask, letter scan (SEED §3.6,
§4). vqa-shap: cached vision features, batched forwards, prefix sharing, the default estimator, at the
paper's budget and below. Reports evaluations/s, wall time per question, their ratios, and each one's
error against a high-budget reference. The logic lives in ``vqa_shap.bench.pipeline``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile

MODELS = ("demo", "realistic")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS,
                        help="demo: the demo model on synthetic questions; realistic: a realistic-proportion "
                             "tiny LLaVA-OneVision (random weights) on 32-frame questions")
    parser.add_argument("--questions", type=int, default=2, help="questions per model")
    parser.add_argument("--permutations", type=int, default=6,
                        help="the paper's budget in permutations (x (2F+1) evaluations)")
    parser.add_argument("--fractions", nargs="+", type=float, default=[1.0, 0.5, 1 / 3, 1 / 6],
                        help="vqa-shap budgets as fractions of the paper's")
    parser.add_argument("--estimators", nargs="+", default=["default"])
    parser.add_argument("--reference-permutations", type=int, default=32)
    parser.add_argument("--reference-estimator", default="cyclic")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="the paper's generation cap (default: 16 for the demo model, which stops at EOS; "
                             "2 for the random realistic model, i.e. the letter and EOS of a trained model)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from vqa_shap.bench.pipeline import format_table, realistic_cases, run_pipeline_bench, synthetic_cases
    from vqa_shap.loaders import get_loader, resolve_model
    from vqa_shap.loaders.tiny import tiny_model_dir

    torch.set_num_threads(args.threads)
    report = {"threads": args.threads, "torch": torch.__version__, "machine": platform.machine(), "models": {}}
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            if name == "demo":
                loader_cls, checkpoint = resolve_model("demo")
                cases = synthetic_cases(args.questions, seed=60_000_000, workdir=tmp)
                label, new_tokens = "demo model (synthetic questions)", args.max_new_tokens or 16
            else:
                loader_cls, checkpoint = get_loader("llava_onevision"), str(tiny_model_dir("llava_onevision", realistic=True))
                cases = realistic_cases(args.questions)
                label, new_tokens = "realistic-proportion LLaVA-OneVision (random weights)", args.max_new_tokens or 2
            loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
            print(f"\n== {label}", flush=True)
            bench = run_pipeline_bench(loader, cases, model=label, permutations=args.permutations,
                                       fractions=args.fractions, estimators=args.estimators,
                                       reference_permutations=args.reference_permutations,
                                       reference_estimator=args.reference_estimator,
                                       max_new_tokens=new_tokens)
        print()
        print(format_table(bench), flush=True)
        report["models"][name] = bench.to_dict()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
