#!/usr/bin/env python
"""Long videos on the synthetic benchmark: shot vs frame players; uniform vs AKS vs oracle frames.

    python scripts/bench_long_video.py --name held      # the first small run (~32-frame videos)
    python scripts/bench_long_video.py --name short_evidence_samplers --layout short_evidence \\
        --compare samplers --questions 24 --k 8 --candidates 64 --budget 512
    python scripts/bench_long_video.py --name short_evidence_budgets --layout short_evidence \\
        --compare players --questions 20 --seeds 0 1 2 --frames 64 --budgets 64 320
    python scripts/bench_long_video.py --from-json     # summaries and docs/shots.md from the stored rows

Each run is one *part* of benchmarks/long_video.json (added or replaced by its ``--name``; the other
parts are kept), and the tables of docs/shots.md are regenerated from the whole file. The logic
lives in ``vqa_shap.measure.long_video``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=None, help="part name in the JSON (default: the layout)")
    parser.add_argument("--layout", default="held", choices=["held", "short_evidence"], help="long-video layout")
    parser.add_argument("--compare", default="both", choices=["players", "samplers", "both"])
    parser.add_argument("--model", default="demo", help="model (default: the demo model)")
    parser.add_argument("--questions", type=int, default=8, help="synthetic questions")
    parser.add_argument("--first-question", type=int, default=0,
                        help="skip this many of the seed's questions (split a run over processes; join with --combine)")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="instead of running: join the part --name of these JSON files (runs over disjoint "
                             "--first-question slices) into --json and regenerate --doc")
    parser.add_argument("--from-json", action="store_true",
                        help="instead of running: recompute every part's summary of --json from its stored rows "
                             "and regenerate --doc (no model is run)")
    parser.add_argument("--question-seed", type=int, default=515151, help="seed of the questions and shot lengths")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="estimator seeds")
    parser.add_argument("--frames", type=int, default=32, help="sampled frames for the players comparison")
    parser.add_argument("--budgets", nargs="+", type=int, default=[384], help="budgets of the players comparison")
    parser.add_argument("--budget", type=int, default=384, help="evaluations of the oracle's Shapley run")
    parser.add_argument("--estimator", default="default")
    parser.add_argument("--k", type=int, default=4, help="frames kept by each selection")
    parser.add_argument("--candidates", type=int, default=32, help="candidate frames for the selections")
    parser.add_argument("--aks-scorer", default="model", help="AKS relevance: 'model' or 'clip:PATH' (docs/shots.md)")
    parser.add_argument("--json", default="benchmarks/long_video.json")
    parser.add_argument("--doc", default="docs/shots.md", help="page whose tables are regenerated ('' to skip)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.from_json:
        from vqa_shap.measure import long_video as lv

        with open(args.json) as fh:
            return _write_result(args, lv.resummarise(json.load(fh)))
    if args.combine:
        from vqa_shap.measure import long_video as lv

        name = args.name or args.layout
        runs = []
        for path in args.combine:
            with open(path) as fh:
                runs.append(json.load(fh)["parts"][name])
        return _write(args, lv.combine_parts(runs))
    import torch

    from vqa_shap.long_video.aks import make_scorer, parse_scorer
    from vqa_shap.measure import long_video as lv
    from vqa_shap.builders.shapes_long_video import LAYOUTS
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    torch.set_num_threads(1)
    kind, path = parse_scorer(args.aks_scorer)
    load_before = os.getloadavg()
    loader_cls, checkpoint = resolve_model(args.model)
    loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
    start = time.perf_counter()
    players, samplers = [], []
    with tempfile.TemporaryDirectory() as root:
        items = LAYOUTS[args.layout](args.first_question + args.questions, args.question_seed, root)
        items = items[args.first_question:]
        if args.compare in ("players", "both"):
            players = lv.compare_players(loader, items, root, n_frames=args.frames, budgets=args.budgets,
                                         seeds=args.seeds, estimator=args.estimator)
        if args.compare in ("samplers", "both"):
            samplers = lv.compare_samplers(loader, items, root, k=args.k, candidates=args.candidates,
                                           budget=args.budget, seed=args.seeds[0], estimator=args.estimator,
                                           scorer=make_scorer(args.aks_scorer, loader, get_protocol()))
    part = {
        "settings": {"layout": args.layout, "compare": args.compare, "model": args.model,
                     "n_questions": args.questions, "first_question": args.first_question,
                     "question_seed": args.question_seed, "seeds": args.seeds,
                     "n_frames": args.frames, "budgets": args.budgets, "budget": args.budget,
                     "estimator": args.estimator, "k": args.k, "candidates": args.candidates,
                     "scorer": kind if path is None else f"{kind}:{os.path.basename(os.path.normpath(path))}",
                     "video_frames": [it.n_frames for it in items]},
        "machine": {"threads": 1, "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
                    "python": platform.python_version(), "seconds": time.perf_counter() - start},
        "summary": lv.summarise(players, samplers),
        "player_rows": players, "sampler_rows": samplers,
    }
    return _write(args, part)


def _write(args, part: dict) -> int:
    """Add ``part`` to the JSON (as ``--name``), print the tables, regenerate the doc."""
    from vqa_shap.measure import long_video as lv

    previous = None
    if os.path.exists(args.json):
        with open(args.json) as fh:
            previous = json.load(fh)
    return _write_result(args, lv.merge_part(previous, args.name or args.layout, part))


def _write_result(args, result: dict) -> int:
    """Write the benchmark JSON (strict: an undefined number, e.g. a constant relevance's Spearman, is
    ``null``), print the tables, regenerate the doc."""
    from vqa_shap.analysis.metrics_table import json_ready
    from vqa_shap.measure import long_video as lv

    with open(args.json, "w") as fh:
        json.dump(json_ready(result), fh, indent=1, allow_nan=False)
    print(lv.format_tables(result))
    print(f"wrote {args.json}")
    if args.doc:
        print(f"{args.doc}: {'updated' if lv.update_doc(args.doc, result) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
