#!/usr/bin/env python
"""Estimator efficiency on a trained demo model's games: per-sample variance x compute.

``--model demo-long`` (64 frames, F = 74, the default) or ``demo-realistic`` (32 frames, EgoSchema-length
prompt, F ~ 160), on the pipeline benchmark's questions. For each question: permutation paths (= shap's samples) and text-flip sets scored once
(memoised in $VQA_SHAP_CACHE), then the compute ``permutation`` needs over the compute ``text_flips``
needs for the same expected error, with a bootstrap CI (``vqa_shap.measure.sample_efficiency``).

    python scripts/bench_trained_estimators.py --questions 0 --paths 50 --flip-sets 60 --json a.json
    python scripts/bench_trained_estimators.py --from-json a.json b.json --json benchmarks/estimators_trained.json \\
        --doc docs/estimators.md
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
    from vqa_shap.measure.model_games import QUESTION_GAMES

    parser.add_argument("--model", choices=sorted(QUESTION_GAMES), default="demo-long",
                        help="demo-long: 64-frame short_evidence questions; demo-realistic: 32-frame realistic-layout ones")
    parser.add_argument("--questions", nargs="+", type=int, default=[0], help="question indices (of the pipeline "
                        "benchmark's questions for that model)")
    parser.add_argument("--paths", type=int, default=16, help="permutation paths per question (even)")
    parser.add_argument("--flip-sets", type=int, default=40, help="text-flip sets per question")
    parser.add_argument("--cache", default=None, help="memo folder (default $VQA_SHAP_CACHE or ~/.cache/vqa-shap)")
    parser.add_argument("--from-json", nargs="+", default=None, help="no runs: merge these JSONs")
    parser.add_argument("--json", default=None)
    parser.add_argument("--doc", default=None, help="rewrite the trained-table of this markdown file")
    args = parser.parse_args(argv)

    from vqa_shap.measure.doc_tables import update_file
    from vqa_shap.measure.sample_efficiency import (DOC_END, DOC_START, format_table, load_samples,
                                                  measure_question, save_json, summary)

    command = "scripts/bench_trained_estimators.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_json:
        samples, commands, metas = [], [], []
        for path in args.from_json:
            s, data = load_samples(path)
            samples += s
            # a merged JSON keeps its runs' commands and metas: merging it again flattens them
            commands += data["command"] if isinstance(data["command"], list) else [data["command"]]
            metas += data["meta"].get("runs", [data["meta"]])
        command, meta = commands, {"runs": metas}
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        from vqa_shap.measure.model_games import question_game

        torch.set_num_threads(1)
        meta = {"loadavg_start": list(os.getloadavg()), "threads": 1}
        samples = []
        for q in args.questions:
            memo, n_video, key, description = question_game(args.model, q, cache_dir=args.cache)
            samples.append(measure_question(memo, n_video, key, description, args.paths, args.flip_sets))
            print(f"question {q}: {memo.scored} coalitions scored, {len(memo)} in the memo", flush=True)
        meta["loadavg_end"] = list(os.getloadavg())
    print(format_table([summary(s) for s in samples]))
    if args.json:
        save_json(samples, args.json, command, meta)
        if args.doc:
            with open(args.json) as fh:
                rows = json.load(fh)["summary"]
            update_file(args.doc, DOC_START, DOC_END, format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
