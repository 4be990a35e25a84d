#!/usr/bin/env python
"""The paper's pipeline vs vqa-shap's, side by side: the speed-up per question at equal error.

    python scripts/bench_pipeline.py                                  # demo model, <= 10 min on 2 cores
    python scripts/bench_pipeline.py --models realistic --questions 4 --first-question 4 --json b.json
    python scripts/bench_pipeline.py --from-json a.json b.json demo.json --json benchmarks/bench_pipeline.json \
        --doc docs/performance.md                                     # merge runs, regenerate the doc

The logic lives in ``vqa_shap.measure.pipeline`` (runs) and ``vqa_shap.measure.pipeline_report`` (statistics,
tables). ``--doc`` rewrites the table between the ``pipeline-table`` markers of that Markdown file
(``--doc-table NAME``: between the ``pipeline-table:NAME`` markers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

MODELS = ("demo", "demo-long", "demo-realistic", "realistic")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["demo"], choices=MODELS,
                        help="demo: the demo model on synthetic questions; demo-long: the long-video demo model on "
                             "64-frame short_evidence questions; demo-realistic: the trained realistic-proportion "
                             "demo model (32 frames x 36 tokens, EgoSchema-length prompt) on its synthetic "
                             "questions; realistic: a realistic-proportion LLaVA-OneVision with random weights "
                             "(32 frames x 36 tokens) on 32-frame questions")
    parser.add_argument("--questions", type=int, default=8, help="questions per model (distinct texts and videos)")
    parser.add_argument("--seeds", type=int, default=5, help="estimator seeds 0..N-1")
    parser.add_argument("--paper-levels", nargs="+", type=float, default=[1, 2],
                        help="the paper's budgets in permutations (x (2F+1) evaluations)")
    parser.add_argument("--ours-levels", nargs="+", type=float, default=[1, 2],
                        help="vqa-shap's budgets in the same unit")
    parser.add_argument("--estimator", default=None, help="vqa-shap's estimator (default: the package default)")
    parser.add_argument("--reference-permutations", type=int, default=None,
                        help="the reference's budget in permutations (default: 16 realistic and demo-realistic, "
                             "64 demo)")
    parser.add_argument("--reference-estimator", default="cyclic")
    parser.add_argument("--reference-trust", type=float, default=3.0,
                        help="grow the reference until its own error is below the smallest error it measures / this")
    parser.add_argument("--reference-max-permutations", type=int, default=None,
                        help="the reference's cap when it grows (default: --reference-permutations, no growth)")
    parser.add_argument("--references", type=Path, default=None, metavar="DIR",
                        help="store references here, keyed by model and question digests, with each question's "
                             "finished runs, and reuse them: a rerun with the same settings only grows the "
                             "references (e.g. benchmarks/references)")
    parser.add_argument("--paper-mode", choices=("sampled", "full"), default="sampled",
                        help="sampled: the paper's time from timed samples of its coalitions; full: end to end")
    parser.add_argument("--preprocess", choices=("once", "per_mask"), default="once",
                        help="the paper's frame masking: pixels preprocessed once (LLaVA-Video script) or the "
                             "processor per mask (VideoLLaMA3 script)")
    parser.add_argument("--timing-masks", type=int, default=8, help="paper-way coalitions timed per question and seed")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="the paper's generation cap (default 16 for the demo model, which stops at EOS; "
                             "2 for the random realistic model: the letter and EOS of a trained model)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--max-load", type=float, default=None, metavar="L",
                        help="before each seed's runs, wait until the 1-minute load average is at most L (a quiet "
                             "machine: e.g. 1.5 on 2 cores); each seed's runs record the load they ran at either way")
    parser.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    parser.add_argument("--doc", metavar="MD", help="rewrite the pipeline table in this Markdown file")
    parser.add_argument("--doc-table", metavar="NAME", default=None,
                        help="with --doc: rewrite the table between the pipeline-table:NAME markers instead "
                             "(a second benchmark in the same page, e.g. paper-budget)")
    parser.add_argument("--first-question", type=int, default=0,
                        help="demo-long, demo-realistic and realistic: index of the first question (split a run "
                             "over processes)")
    parser.add_argument("--from-json", metavar="IN", nargs="+",
                        help="no runs: read these JSONs (several: runs of disjoint questions, merged per model)")
    return parser


def _run_model(name: str, args, tmp: str, save=None) -> dict:
    from vqa_shap.measure.bench_cases import long_video_cases, realistic_cases, synthetic_cases
    from vqa_shap.measure.pipeline import run_pipeline_bench
    from vqa_shap.loaders import get_loader, resolve_model
    from vqa_shap.loaders.testing.tiny import tiny_model_dir
    from vqa_shap.measure.model_games import model_digest

    if name == "demo":
        loader_cls, checkpoint = resolve_model("demo")
        cases = synthetic_cases(args.questions, seed=60_000_000, workdir=tmp)
        label, tokens, ref = "Demo model (synthetic questions, 8 frames)", args.max_new_tokens or 16, 64
    elif name == "demo-long":
        loader_cls, checkpoint = resolve_model("demo-long")
        cases = long_video_cases(args.questions, seed=60_000_000, workdir=tmp, start=args.first_question)
        label, tokens, ref = "Long-video demo model (short_evidence questions, 64 frames)", args.max_new_tokens or 16, 64
    elif name == "demo-realistic":
        loader_cls, checkpoint = resolve_model("demo-realistic")
        cases = synthetic_cases(args.questions, seed=60_000_000, workdir=tmp, start=args.first_question, realistic=True)
        label = "Realistic-proportion demo model (trained; synthetic questions in EgoSchema length, 32 frames)"
        tokens, ref = args.max_new_tokens or 16, 16
    else:
        loader_cls = get_loader("llava_onevision")
        checkpoint = str(tiny_model_dir("llava_onevision", realistic=True))
        cases = realistic_cases(args.questions, start=args.first_question)
        label, tokens, ref = "Realistic-proportion LLaVA-OneVision (random weights)", args.max_new_tokens or 2, 16
    loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
    print(f"\n== {label}", flush=True)
    bench = run_pipeline_bench(
        loader, cases, model=label, trained=name != "realistic", seeds=range(args.seeds), paper_levels=args.paper_levels,
        ours_levels=args.ours_levels, estimator=args.estimator,
        reference_permutations=args.reference_permutations or ref, reference_estimator=args.reference_estimator,
        paper_mode=args.paper_mode, preprocess=args.preprocess, timing_masks=args.timing_masks,
        max_new_tokens=tokens, threads=args.threads, reference_trust=args.reference_trust,
        reference_max_permutations=args.reference_max_permutations, references=args.references,
        model_key=f"{name}_{model_digest(checkpoint)}", max_load=args.max_load,
        checkpoint=None if save is None else (lambda bench: save(name, bench.to_dict())))
    return bench.to_dict()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from vqa_shap.measure.pipeline_report import merge_benches
    from vqa_shap.measure.pipeline_report import format_table, render_doc

    if args.from_json:
        reports = []
        for name in args.from_json:
            try:
                reports.append(json.loads(Path(name).read_text()))
            except (OSError, ValueError) as exc:
                print(f"error: cannot read {name}: {exc}", file=sys.stderr)
                return 2
        report = reports[0]
        if len(reports) > 1:
            try:
                parts = {}
                for r in reports:
                    for model, bench in r["models"].items():
                        parts.setdefault(model, []).append(bench)
                report = {**report, "command": [r["command"] for r in reports],
                          "models": {m: merge_benches(b) if len(b) > 1 else b[0] for m, b in parts.items()}}
            except (KeyError, ValueError) as exc:
                print(f"error: cannot merge {', '.join(args.from_json)}: {exc}", file=sys.stderr)
                return 2
        for bench in report["models"].values():
            print(format_table(bench) + "\n")
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
            print(f"wrote {args.json}")
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        torch.set_num_threads(args.threads)
        report = {"threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
                  "cpus": os.cpu_count(), "command": " ".join(["scripts/bench_pipeline.py", *(argv or sys.argv[1:])]),
                  "models": {}}

        def save(name: str, bench: dict) -> None:  # after every question, so a stopped run keeps its results
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps({**report, "models": {**report["models"], name: bench}},
                                                      indent=1) + "\n")

        for name in args.models:
            with tempfile.TemporaryDirectory() as tmp:
                report["models"][name] = _run_model(name, args, tmp, save)
            print("\n" + format_table(report["models"][name]), flush=True)
            save(name, report["models"][name])
        if args.json:
            print(f"\nwrote {args.json}")
    if args.doc:
        try:
            doc = Path(args.doc)
            doc.write_text(render_doc(doc.read_text(), report, args.doc_table))
        except (OSError, ValueError) as exc:
            print(f"error: {args.doc}: {exc}", file=sys.stderr)
            return 2
        print(f"updated {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
