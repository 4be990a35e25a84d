#!/usr/bin/env python
"""Long videos on the synthetic benchmark: shot vs frame players; uniform vs AKS vs oracle frames.

    python scripts/bench_long_video.py                      # the committed small run (~5 min on 1 core)
    python scripts/bench_long_video.py --questions 60 --seeds 0 1 2 3 4 --budget 1024 --k 8   # bigger

Writes benchmarks/long_video.json and regenerates the tables of docs/shots.md from it. The logic
lives in ``vqa_shap.bench.long_video``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", help="model (default: the demo model)")
    parser.add_argument("--questions", type=int, default=8, help="synthetic questions")
    parser.add_argument("--question-seed", type=int, default=515151, help="seed of the questions and shot lengths")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="estimator seeds")
    parser.add_argument("--frames", type=int, default=32, help="sampled frames for the players comparison")
    parser.add_argument("--budget", type=int, default=384, help="evaluations per Shapley run")
    parser.add_argument("--estimator", default="default")
    parser.add_argument("--k", type=int, default=4, help="frames kept by each selection")
    parser.add_argument("--candidates", type=int, default=32, help="candidate frames for the selections")
    parser.add_argument("--json", default="benchmarks/long_video.json")
    parser.add_argument("--doc", default="docs/shots.md", help="page whose tables are regenerated ('' to skip)")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from vqa_shap.bench import long_video as lv
    from vqa_shap.loaders import resolve_model

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    loader_cls, checkpoint = resolve_model(args.model)
    loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        items = lv.long_video_items(args.questions, args.question_seed, root)
        players = lv.compare_players(loader, items, root, n_frames=args.frames, budget=args.budget,
                                     seeds=args.seeds, estimator=args.estimator)
        samplers = lv.compare_samplers(loader, items, root, k=args.k, candidates=args.candidates,
                                       budget=args.budget, seed=args.seeds[0], estimator=args.estimator)
    result = {
        "settings": {"model": args.model, "n_questions": args.questions, "question_seed": args.question_seed,
                     "seeds": args.seeds, "n_frames": args.frames, "budget": args.budget,
                     "estimator": args.estimator, "k": args.k, "candidates": args.candidates,
                     "video_frames": [it.n_frames for it in items]},
        "machine": {"threads": 1, "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
                    "python": platform.python_version(), "seconds": time.perf_counter() - start},
        "summary": lv.summarise(players, samplers),
        "player_rows": players, "sampler_rows": samplers,
    }
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)
    print(lv.format_tables(result))
    print(f"wrote {args.json}")
    if args.doc:
        print(f"{args.doc}: {'updated' if lv.update_doc(args.doc, result) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
