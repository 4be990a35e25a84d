"""``vqa-shap interactions``: questions dataset + model -> pairwise Shapley interactions (k-SII) config."""

from __future__ import annotations

import argparse
from dataclasses import replace

from vqa_shap.commands import argtypes
from vqa_shap.commands.explain import add_option
from vqa_shap.explain_options import OPTIONS, Option

#: The explain options interactions takes as they are declared (help, default, bounds, check):
#: vqa_shap.explain_options owns them; only the interactions-only ones below are written here.
SHARED = ("questions", "config", "model", "video_root", "out", "frames", "seed", "batch_size", "device", "dtype",
          "threads", "loader", "protocol", "sampler", "retry_errors", "overwrite", "restart", "progress")


def shared_options() -> tuple[Option, ...]:
    """Every explain option interactions takes, in ``--help`` order: :data:`SHARED` as declared, and
    ``budget``/``name`` with their meaning here (same type, default and bounds)."""
    from vqa_shap.interactions.interactions_run import DEFAULT_BUDGET

    budget = replace(OPTIONS["budget"], default=DEFAULT_BUDGET,
                     help="top-k: evaluations per question; exact when 2^k <= budget")
    name = replace(OPTIONS["name"], help="output config name (default: <model-slug>__<config>__modality or __top<k>)")
    return (*(OPTIONS[n] for n in SHARED[:5]), budget, *(OPTIONS[n] for n in SHARED[5:]), name)


def _interactions_options() -> tuple[Option, ...]:
    """Interactions-only settings derived from an explain option: its type, default and bounds, another help."""
    from vqa_shap.interactions.interactions_run import DEFAULT_BUDGET

    return (replace(OPTIONS["budget"], name="phi_budget", default=DEFAULT_BUDGET,
                    help="top-k without --attributions: budget of the Shapley values"),
            replace(OPTIONS["estimator"], name="phi_estimator",
                    help="top-k without --attributions: Shapley estimator"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vqa_shap.interactions.interactions_run import DEFAULT_K, MAX_K, PLAYER_KINDS

    for option in shared_options():  # declared once, in vqa_shap.explain_options
        add_option(parser, option)
    parser.add_argument("--players", choices=PLAYER_KINDS, default="modality",
                        help="modality: video x question x answer, exact with 8 evaluations; top-k: the k "
                             "features with the largest |phi| of the ground-truth option (default: %(default)s)")
    parser.add_argument("-k", type=argtypes.int_range(2, MAX_K), default=DEFAULT_K,
                        help=f"players of a top-k game (default {DEFAULT_K})")
    parser.add_argument("--attributions", type=argtypes.folder, default=None,
                        help="top-k: Hub-style attributions folder whose phi ranks the features (default: compute phi)")
    parser.add_argument("--attributions-config", type=argtypes.config_name, default=None,
                        help="its config (default: <model-slug>__<config>)")
    parser.add_argument("--approximator", type=argtypes.interaction_approximator, default="KernelSHAPIQ",
                        help="shapiq approximator when 2^k > budget (default: %(default)s)")
    for option in _interactions_options():
        add_option(parser, option)


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
    run_fields = {o.name: getattr(args, o.name) for o in shared_options() if o.run_field}
    result = interactions_questions(ExplainRun(**run_fields), job)
    print(f"{result.config}: {result.n_questions} questions, {result.n_computed} computed now, "
          f"{result.n_resumed} resumed, {result.n_errors} errors ({result.evaluations} evaluations in "
          f"{result.seconds:.1f} s)")
    print(f"  wrote config {result.config!r} to {result.folder} "
          f"(load_dataset({str(result.folder)!r}, name={result.config!r}, split='test'))")
    return 0
