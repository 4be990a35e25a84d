#!/usr/bin/env python
"""Per question at equal budget: the paper's way vs vqa-shap's, side by side on a realistic-proportion
tiny model, with the per-evaluation costs behind the ratio.

    python scripts/bench_loader.py --json benchmarks/bench_loader.json --doc docs/performance-loader.md

The logic lives in ``vqa_shap.measure.loaders``; this script only parses arguments, prints and writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="llava_onevision", help="tiny model family (default llava_onevision)")
    parser.add_argument("--questions", type=int, default=3, help="distinct questions (texts and videos)")
    parser.add_argument("--seeds", type=int, default=2, help="estimator seeds per question")
    parser.add_argument("--permutations", type=int, default=1, help="budget in permutations (x (2F+1) evaluations)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the per-evaluation timings")
    parser.add_argument("--max-new-tokens", type=int, default=2,
                        help="the paper's generation cap (2: what a trained model generates, 'A<|im_end|>')")
    parser.add_argument("--paper-processor", choices=["once", "per_mask"], default="once",
                        help="the paper's way: frames through the processor once, masks multiply the normalised "
                             "pixels (its LLaVA-Video script; default) or the processor per mask (its VideoLLaMA3 script)")
    parser.add_argument("--small", action="store_true", help="tiny proportions (a smoke test, not a measurement)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--from-json", metavar="IN", help="measure nothing: regenerate --doc from this JSON")
    parser.add_argument("--doc", metavar="MD", help="regenerate the table between the loader-table markers of MD")
    args = parser.parse_args(argv)
    if min(args.questions, args.seeds, args.permutations, args.repeats, args.threads) < 1:
        print("bench_loader: --questions, --seeds, --permutations, --repeats and --threads must be >= 1", file=sys.stderr)
        return 2

    if args.from_json:
        return regenerate(args.from_json, args.doc)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from vqa_shap.measure import loaders as bench
    from vqa_shap.loaders import get_loader
    from vqa_shap.loaders.testing.tiny import tiny_model_dir
    from vqa_shap.protocol import get_protocol

    torch.set_num_threads(args.threads)
    folder = tiny_model_dir(args.family, realistic=not args.small)
    loader = get_loader(args.family).load(str(folder), device="cpu", dtype="float32")
    question, plan, frames = bench.benchmark_question(realistic=not args.small, seed=0)
    prepared = loader.prepare(question, frames, plan, get_protocol("pollard2025"))
    seq_len = len(loader.token_ids(prepared, np.ones(prepared.n_features, dtype=bool)))
    print(f"{args.family} tiny ({'small' if args.small else 'realistic'}): {prepared.n_video} frames, {prepared.kept_embeds.shape[0]} video "
          f"tokens, prompt {seq_len} tokens, F = {prepared.n_features}; load {os.getloadavg()[0]:.1f}")
    bench.warm_up()
    costs = bench.per_evaluation_costs(loader, prepared, repeats=args.repeats)
    print("per evaluation (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in costs.items()))
    runs = []
    for q in range(args.questions):
        for seed in range(args.seeds):
            run = bench.time_question(loader, q, seed, permutations=args.permutations, realistic=not args.small,
                                      paper_first=len(runs) % 2 == 0, max_new_tokens=args.max_new_tokens,
                                      paper_processor=args.paper_processor)
            runs.append(run)
            print(f"question {q} seed {seed}: F = {run.n_features}, {run.evaluations} evaluations, paper "
                  f"{run.paper_s:.1f} s, ours {run.ours_s:.1f} s, {run.speedup:.2f}x; load {run.load[0]:.1f}")
    report = {"family": args.family, "model": folder.name, "sequence_length": seq_len,
              "max_new_tokens": args.max_new_tokens, "paper_processor": args.paper_processor,
              "video_tokens": int(prepared.kept_embeds.shape[0]), "threads": args.threads,
              "torch": torch.__version__, "machine": platform.machine(), "per_evaluation": costs,
              "runs": [asdict(r) for r in runs], "summary": bench.summarise(runs)}
    print()
    print(bench.render_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    if args.doc:
        return regenerate(report, args.doc)
    return 0


def regenerate(report: dict | str, doc: str | None) -> int:
    """Write the tables of ``report`` (or of the JSON file it names) into ``doc`` between its markers."""
    from vqa_shap.measure.loaders import update_doc

    if doc is None:
        print("bench_loader: --from-json needs --doc", file=sys.stderr)
        return 2
    try:
        if isinstance(report, str):
            report = json.loads(Path(report).read_text())
        update_doc(doc, report)
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench_loader: cannot regenerate {doc}: {exc}", file=sys.stderr)
        return 2
    print(f"updated {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
