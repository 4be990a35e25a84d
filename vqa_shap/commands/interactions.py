"""``vqa-shap interactions``: questions dataset + model -> pairwise Shapley interactions (k-SII) config."""

from __future__ import annotations

import argparse

from vqa_shap.commands import argtypes
from vqa_shap.explain_options import DEFAULT_BATCH_SIZE, DEFAULT_FRAMES, DEFAULT_PROTOCOL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vqa_shap.interactions.interactions_run import DEFAULT_BUDGET, DEFAULT_K, MAX_K, PLAYER_KINDS

    parser.add_argument("questions", metavar="QUESTIONS", type=argtypes.folder, help="Hub-style questions folder")
    parser.add_argument("--config", required=True, type=argtypes.config_name, help="questions config, e.g. synthetic")
    parser.add_argument("--model", required=True, help="checkpoint id, local folder, demo, or tiny-random/<family>")
    parser.add_argument("--video-root", required=True, type=argtypes.folder, help="folder the video paths are relative to")
    parser.add_argument("--out", required=True, type=argtypes.out_folder,
                        help="Hub-style interactions folder (other configs in it are kept)")
    parser.add_argument("--players", choices=PLAYER_KINDS, default="modality",
                        help="modality: video x question x answer, exact with 8 evaluations; top-k: the k "
                             "features with the largest |phi| of the ground-truth option (default: %(default)s)")
    parser.add_argument("-k", type=argtypes.int_range(2, MAX_K), default=DEFAULT_K,
                        help=f"players of a top-k game (default {DEFAULT_K})")
    parser.add_argument("--attributions", type=argtypes.folder, default=None,
                        help="top-k: Hub-style attributions folder whose phi ranks the features (default: compute phi)")
    parser.add_argument("--attributions-config", type=argtypes.config_name, default=None,
                        help="its config (default: <model-slug>__<config>)")
    parser.add_argument("--budget", type=argtypes.budget, default=DEFAULT_BUDGET,
                        help=f"top-k: evaluations per question; exact when 2^k <= budget (default {DEFAULT_BUDGET})")
    parser.add_argument("--approximator", type=argtypes.interaction_approximator, default="KernelSHAPIQ",
                        help="shapiq approximator when 2^k > budget (default: %(default)s)")
    parser.add_argument("--phi-budget", type=argtypes.budget, default=DEFAULT_BUDGET,
                        help=f"top-k without --attributions: budget of the Shapley values (default {DEFAULT_BUDGET})")
    parser.add_argument("--phi-estimator", default="default", type=argtypes.estimator,
                        help="top-k without --attributions: Shapley estimator (default: %(default)s)")
    parser.add_argument("--frames", type=argtypes.frames, default=DEFAULT_FRAMES, help=f"frames per question (default {DEFAULT_FRAMES})")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="approximator/estimator seed")
    parser.add_argument("--batch-size", type=argtypes.batch_size, default=DEFAULT_BATCH_SIZE, help="coalitions per forward")
    parser.add_argument("--device", default=None, type=argtypes.device, help="torch device (default: automatic)")
    parser.add_argument("--dtype", default=None, type=argtypes.dtype, help="torch dtype (default: automatic)")
    parser.add_argument("--threads", type=argtypes.threads, default=None, help="CPU threads for torch")
    parser.add_argument("--loader", default=None, help="loader family (default: from the checkpoint)")
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL, type=argtypes.protocol, help="protocol (default: %(default)s)")
    parser.add_argument("--sampler", default=None, type=argtypes.sampler, help="frame sampler")
    parser.add_argument("--name", default=None, type=argtypes.config_name,
                        help="output config name (default: <model-slug>__<config>__modality or __top<k>)")
    parser.add_argument("--retry-errors", action="store_true", help="recompute questions recorded as errors")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing config of the same name")
    parser.add_argument("--restart", action="store_true", help="discard earlier work files of this config")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.errors import UsageError
    from vqa_shap.explain.explain_run import ExplainRun
    from vqa_shap.interactions.interactions_run import InteractionsJob, interactions_questions

    if args.players != "top-k" and (args.attributions is not None or args.attributions_config is not None):
        raise UsageError("--attributions/--attributions-config rank the top-k players; add --players top-k")
    argtypes.refuse_foreign_card(args.out, args.overwrite)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    job = InteractionsJob(players=args.players, k=args.k, approximator=args.approximator,
                          attributions=None if args.attributions is None else str(args.attributions),
                          attributions_config=args.attributions_config, phi_estimator=args.phi_estimator,
                          phi_budget=args.phi_budget)
    result = interactions_questions(ExplainRun(
        args.questions, args.config, model=args.model, video_root=args.video_root, out=args.out,
        frames=args.frames, budget=args.budget, seed=args.seed, batch_size=args.batch_size, device=args.device,
        dtype=args.dtype, loader=args.loader, protocol=args.protocol, sampler=args.sampler, name=args.name,
        retry_errors=args.retry_errors, overwrite=args.overwrite, restart=args.restart,
        progress=not args.no_progress), job)
    print(f"{result.config}: {result.n_questions} questions, {result.n_computed} computed now, "
          f"{result.n_resumed} resumed, {result.n_errors} errors ({result.evaluations} evaluations in "
          f"{result.seconds:.1f} s)")
    print(f"  wrote config {result.config!r} to {result.folder} "
          f"(load_dataset({str(result.folder)!r}, name={result.config!r}, split='test'))")
    return 0
