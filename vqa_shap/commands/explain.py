"""``vqa-shap explain``: questions dataset + model -> attributions dataset (resumable, shardable)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from vqa_shap.commands import argtypes
from vqa_shap.explain_options import EXPLAIN_OPTIONS, OPTIONS, Option, run_arguments

#: The frame options a command re-plans an attributions config's frames with, and what it calls them.
_RECORDED = {"frames": "frames per question", "sampler": "frame sampler",
             "shot_detector": "shot detector of shot-player attributions: diff, content, adaptive, transnetv2 or "
                              "transnetv2:PATH"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for option in EXPLAIN_OPTIONS:  # every option is declared once, in vqa_shap.explain_options
        add_option(parser, option)


def add_option(parser: argparse.ArgumentParser, option: Option) -> None:
    """``option`` as an argument of ``parser`` (dest = its name; its argtypes converter checks the value)."""
    help_text = option.help_text().replace("%", "%%")
    if option.kind is bool:  # a default-on setting is switched off by its flag, e.g. --no-progress
        parser.add_argument(option.cli_flag, dest=option.name, action="store_false" if option.default else "store_true",
                            help=help_text)
        return
    kwargs = {"help": help_text, "choices": option.choices}
    if option.cli_type is not None:
        kwargs["type"] = getattr(argtypes, option.cli_type)
    if option.positional:
        parser.add_argument(option.name, metavar=option.name.upper(), **kwargs)
    else:
        parser.add_argument(option.cli_flag, dest=option.name, default=option.default, required=option.required,
                            **kwargs)


def add_recorded_options(parser: argparse.ArgumentParser) -> None:
    """``--frames``, ``--sampler`` and ``--shot-detector`` of a command that re-plans the frames of an
    attributions config (rank, mask-bench): explain's declared types and bounds, by default the value
    the attributions card records (``None``)."""
    for name, what in _RECORDED.items():
        add_option(parser, replace(OPTIONS[name], default=None,
                                   help=f"{what} (default: as recorded in the attributions card)"))


def run(args: argparse.Namespace) -> int:
    from vqa_shap.explain.explain_run import ExplainRun, explain_questions

    argtypes.refuse_foreign_card(args.out, args.overwrite)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    result = explain_questions(ExplainRun(**run_arguments(args)))
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
