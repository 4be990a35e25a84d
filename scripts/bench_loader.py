#!/usr/bin/env python
"""Loader speed, side by side in one run: pixel masking (the paper's way) vs cached features,
one-by-one vs batched, with and without prefix sharing, on a realistic-proportion tiny model.

    python scripts/bench_loader.py --json bench_loader.json

The logic lives in ``vqa_shap.bench.loaders``; this script only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="llava_onevision", help="tiny model family (default llava_onevision)")
    parser.add_argument("--workload", nargs="+", default=["permutation", "grouped"],
                        choices=["permutation", "grouped", "random"], help="coalition workloads to time")
    parser.add_argument("--coalitions", type=int, default=48, help="coalitions per workload")
    parser.add_argument("--pixel-rows", type=int, default=9, help="coalitions scored on the slow pixel path")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=16, help="coalitions per scoring call (as the Game batches)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--small", action="store_true", help="tiny proportions instead of realistic ones (smoke test)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from vqa_shap.loaders import get_loader
    from vqa_shap.bench import loaders as bench
    from vqa_shap.loaders.tiny import tiny_model_dir
    from vqa_shap.protocol import get_protocol

    torch.set_num_threads(args.threads)
    folder = tiny_model_dir(args.family, realistic=not args.small)
    loader = get_loader(args.family).load(str(folder), device="cpu", dtype="float32")
    question, plan, frames = bench.benchmark_question(realistic=not args.small)
    prepared = loader.prepare(question, frames, plan, get_protocol("pollard2025"))
    seq_len = len(loader.token_ids(prepared, np.ones(prepared.n_features, dtype=bool)))
    report = {"family": args.family, "model": str(folder), "n_features": prepared.n_features,
              "n_video_players": prepared.n_video, "sequence_length": seq_len,
              "video_tokens": int(prepared.kept_embeds.shape[0]), "batch_size": args.batch_size,
              "threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
              "workloads": {}}
    print(f"{args.family} tiny ({'small' if args.small else 'realistic'}): {prepared.n_video} frames, "
          f"{report['video_tokens']} video tokens, sequence {seq_len} tokens, {prepared.n_features} players")
    for kind in args.workload:
        masks = bench.workload(prepared.n_features, prepared.n_video, kind, args.coalitions)
        distinct = len({m[:prepared.n_video].tobytes() for m in masks})
        results = bench.run(loader, prepared, masks, batch_size=args.batch_size, repeats=args.repeats,
                            pixel_rows=args.pixel_rows, chunk=args.chunk)
        report["workloads"][kind] = {"coalitions": len(masks), "distinct_video_parts": distinct,
                                     "results": bench.as_dict(results)}
        print(f"\nworkload {kind}: {len(masks)} coalitions, {distinct} distinct video parts")
        print(f"{'mode':<24}{'evals/s':>10}{'speed-up':>10}{'max |diff|':>12}")
        for r in results:
            print(f"{r.mode:<24}{r.evals_per_s:>10.1f}{r.speedup:>9.1f}x{r.max_abs_diff:>12.1e}")
        by = {r.mode: r for r in results}
        print(f"batched / one-by-one (cached): {by['cached_batched'].evals_per_s / by['cached_one_by_one'].evals_per_s:.2f}x; "
              f"prefix sharing / without: {by['cached_batched_prefix'].evals_per_s / by['cached_batched'].evals_per_s:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
