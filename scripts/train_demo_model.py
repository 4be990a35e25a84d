#!/usr/bin/env python
"""Train the demo model (a small LLaVA-OneVision) on the synthetic benchmark, on CPU, and save it.

    python scripts/train_demo_model.py                      # writes loaders/demo_model/
    python scripts/train_demo_model.py --out /tmp/demo --steps 200
    python scripts/train_demo_model.py --out loaders/demo_long_model --resume loaders/demo_model \
        --layout short_evidence --steps 2500 --lr 1e-3    # the long-video demo model (64-frame videos)
    python scripts/train_demo_model.py --out loaders/demo_realistic_model --init-from loaders/demo_model \
        --layout realistic                                 # realistic proportions (32 frames x 36 tokens)

Deterministic for a seed and thread count. After training, the held-out accuracy is measured through
the real inference path (videos -> builder -> loader) and recorded in the folder's
``vqa_shap_training.json``. The logic lives in ``vqa_shap.demo.training``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from vqa_shap.builders.shapes_long_video import SHORT_TOTAL
    from vqa_shap.demo.architecture import REALISTIC_FRAMES, TRAIN_LAYOUTS, DemoArchitecture, layout_architecture
    from vqa_shap.demo.evaluation import evaluate
    from vqa_shap.demo.training import TrainConfig, record_evaluation, train

    defaults, arch = TrainConfig(), DemoArchitecture()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "loaders" / "demo_model", help="model folder to write")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--hidden", type=int, default=arch.hidden, help="language model width")
    parser.add_argument("--layers", type=int, default=arch.layers, help="language model layers")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads")
    parser.add_argument("--max-minutes", type=float, default=defaults.max_minutes,
                        help="stop training after this much wall time (the model is still saved)")
    parser.add_argument("--resume", type=Path, help="continue from the weights of an earlier run's folder")
    parser.add_argument("--init-from", type=Path,
                        help="start from a trained model of another size (realistic layout: loaders/demo_model)")
    parser.add_argument("--curriculum", type=float, nargs=2, default=defaults.curriculum, metavar=("START", "END"),
                        help="fractions of the steps over which distractor frames ramp in")
    parser.add_argument("--templates", nargs="+", default=list(defaults.templates), metavar="TEMPLATE",
                        help="templates of the training questions, cycled (repeat one to draw it more often)")
    parser.add_argument("--layout", default=defaults.layout, choices=TRAIN_LAYOUTS,
                        help="training videos: the benchmark's (frames), long videos whose evidence is one short shot "
                             "(short_evidence), or realistic proportions (realistic: 32 frames of 96 px, "
                             "EgoSchema-length questions with five long options)")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"frames per training video (default {defaults.n_frames}; 64 for short_evidence; "
                             f"{REALISTIC_FRAMES} for realistic)")
    parser.add_argument("--frame-counts", type=int, nargs="+", default=None, metavar="N",
                        help="frames per training video, cycled over the steps (default: --frames; realistic: "
                             "8 16 32, shorter videos are cheaper steps)")
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="learning-rate warm-up steps")
    parser.add_argument("--target-accuracy", type=float, default=defaults.target_accuracy,
                        help="stop once the held-out accuracy reaches it at two checks in a row")
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every, help="steps between held-out checks")
    parser.add_argument("--held-out", type=int, default=defaults.eval_questions,
                        help="held-out questions of the checks during training")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="no training: evaluate the model in --out through the full pipeline and record it")
    parser.add_argument("--eval-questions", type=int, default=300,
                        help="held-out questions evaluated through the full pipeline after training")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    frames = {"short_evidence": SHORT_TOTAL, "realistic": REALISTIC_FRAMES}.get(args.layout, defaults.n_frames)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         threads=args.threads, max_minutes=args.max_minutes, curriculum=tuple(args.curriculum),
                         templates=tuple(args.templates), layout=args.layout, n_frames=args.frames or frames,
                         eval_every=args.eval_every, eval_questions=args.held_out, warmup=args.warmup,
                         target_accuracy=args.target_accuracy,
                         frame_counts=tuple(args.frame_counts or ((8, 16, 32) if args.layout == "realistic" else ())))
    arch = replace(layout_architecture(args.layout), hidden=args.hidden, layers=args.layers)
    if not args.evaluate_only:
        result = train(args.out, config, arch, resume=args.resume, init_from=args.init_from)
        print(f"trained {result.steps} steps in {result.seconds / 60:.1f} min (stopped: {result.stopped}); "
              f"held-out accuracy during training {result.held_out_accuracy:.3f}")
    evaluation = evaluate(args.out, args.eval_questions, threads=args.threads, layout=config.layout,
                          n_frames=config.n_frames)
    record_evaluation(args.out, evaluation)
    tasks = ", ".join(f"{t} {a:.3f}" for t, a in sorted(evaluation.per_task.items()))
    print(f"held-out accuracy through the full pipeline: {evaluation.accuracy:.3f} on "
          f"{evaluation.n_questions} questions (seed {evaluation.seed}; {tasks})")
    changes = ", ".join(f"{name} {share:.3f}" for name, share in (evaluation.masked_changes or {}).items())
    print(f"answers changed by masking (of those answered right): {changes}")
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"saved {args.out} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
