"""``vqa-shap explain``: questions dataset + model -> attributions dataset (resumable, shardable)."""

from __future__ import annotations

import argparse

from vqa_shap.commands import argtypes
from vqa_shap.explain import (
    DEFAULT_BATCH_SIZE, DEFAULT_BUDGET, DEFAULT_ESTIMATOR, DEFAULT_FRAMES, DEFAULT_PROTOCOL,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("questions", metavar="QUESTIONS", type=argtypes.folder, help="Hub-style questions folder")
    parser.add_argument("--config", required=True, type=argtypes.config_name, help="questions config to explain, e.g. hd-epic")
    parser.add_argument("--model", required=True,
                        help="checkpoint id, local save_pretrained folder, demo, demo-long, demo-realistic or "
                             "tiny-random/<family>")
    parser.add_argument("--video-root", required=True, type=argtypes.folder, help="folder the questions' video paths are relative to")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, help="Hub-style output folder (other configs in it are kept)")
    parser.add_argument("--frames", type=argtypes.frames, default=DEFAULT_FRAMES, help=f"frames per question (default {DEFAULT_FRAMES})")
    parser.add_argument("--budget", type=argtypes.budget, default=DEFAULT_BUDGET,
                        help=f"model evaluations per question (default {DEFAULT_BUDGET})")
    parser.add_argument("--strict-budget", action="store_true",
                        help="record an error for a question whose players need more evaluations than "
                             "--budget (default: explain it at the estimator's minimum, e.g. 2F+1)")
    parser.add_argument("--estimator", default=DEFAULT_ESTIMATOR, type=argtypes.estimator, help="Shapley estimator (default: %(default)s)")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="estimator seed, the same for every question")
    parser.add_argument("--batch-size", type=argtypes.batch_size, default=DEFAULT_BATCH_SIZE,
                        help=f"coalitions per batched forward (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--device", default=None, type=argtypes.device, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default=None, type=argtypes.dtype, help="torch dtype (default: bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--threads", type=argtypes.threads, default=None,
                        help="CPU threads for torch (default: torch's; 1 is fastest for tiny models or a busy CPU)")
    parser.add_argument("--loader", default=None, help="loader family (default: from the checkpoint)")
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL, type=argtypes.protocol, help="protocol (default: %(default)s)")
    parser.add_argument("--sampler", default=None, type=argtypes.sampler, help="frame sampler (default: the protocol's for the model family)")
    parser.add_argument("--aks-scorer", default=None, type=argtypes.aks_scorer,
                        help="relevance of candidate frames for --sampler aks: 'model' (default: the explained "
                             "model's confidence with one frame) or 'clip:PATH' (a local CLIP/SigLIP folder)")
    parser.add_argument("--players", default="frames", choices=("frames", "shots"),
                        help="video players: one per sampled frame (default, the paper's) or one per shot "
                             "(the frames of a shot masked together; docs/shots.md)")
    parser.add_argument("--shot-detector", default=None, type=argtypes.shot_detector,
                        help="shot detector for --players shots: diff, content, adaptive or transnetv2:PATH (a "
                             "TransNet V2 weights .pth; default: content with the 'shots' extra, else diff)")
    parser.add_argument("--name", default=None, type=argtypes.config_name, help="output config name (default: <model-slug>__<config>)")
    parser.add_argument("--work-dir", default=None, type=argtypes.out_folder, help="per-question work files (default: OUT/.work/<name>)")
    parser.add_argument("--rank", type=argtypes.int_range(0), default=None, help="shard index (default: $RANK or $SLURM_PROCID, else 0)")
    parser.add_argument("--world-size", type=argtypes.positive_int, default=None,
                        help="number of shards (default: $WORLD_SIZE or $SLURM_NTASKS, else 1)")
    parser.add_argument("--retry-errors", action="store_true", help="recompute questions recorded as errors")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing config of the same name (finished work files are reused)")
    parser.add_argument("--restart", action="store_true",
                        help="discard earlier work files of this config and explain every question again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.explain import ExplainRun, explain_questions

    argtypes.refuse_foreign_card(args.out, args.overwrite)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    result = explain_questions(ExplainRun(
        args.questions, args.config, model=args.model, video_root=args.video_root, out=args.out,
        frames=args.frames, budget=args.budget, strict_budget=args.strict_budget, estimator=args.estimator, seed=args.seed,
        batch_size=args.batch_size, device=args.device, dtype=args.dtype, loader=args.loader,
        protocol=args.protocol, sampler=args.sampler, aks_scorer=args.aks_scorer, players=args.players,
        shot_detector=args.shot_detector, name=args.name, work_dir=args.work_dir,
        rank=args.rank, world_size=args.world_size, retry_errors=args.retry_errors,
        overwrite=args.overwrite, restart=args.restart, progress=not args.no_progress,
    ))
    shard = result.shard
    where = f" (shard {shard.rank} of {shard.world_size})" if shard.world_size > 1 else ""
    print(f"{result.config}{where}: {result.n_questions} questions, {result.n_computed} explained now, "
          f"{result.n_resumed} resumed, {result.n_errors} errors")
    if result.n_computed:
        print(f"  {result.questions_per_s:.2f} questions/s, {result.evaluations_per_s:.0f} evaluations/s "
              f"({result.evaluations} evaluations in {result.seconds:.1f} s)")
    if result.written:
        print(f"  wrote config {result.config!r} to {result.folder} "
              f"(load_dataset({str(result.folder)!r}, name={result.config!r}, split='test'))")
    else:
        print(f"  work files in {result.work_dir}; when every shard is done: vqa-shap merge {result.folder}")
    return 0
