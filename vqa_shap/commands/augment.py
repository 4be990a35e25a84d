"""``vqa-shap augment``: add an extra-answer variant (easy, hard_N) of a questions config."""

from __future__ import annotations

import argparse

from vqa_shap.builders.folder import augment_folder as augment  # noqa: F401 - the library function, re-exported
from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="FOLDER", type=argtypes.folder, help="a Hub-style questions folder")
    parser.add_argument("--config", required=True, type=argtypes.config_name, help="the (original) config to derive the variant from")
    parser.add_argument("--variant", required=True, type=argtypes.variant, metavar="easy|hard_N",
                        help="easy: distractors from another question; hard_N: N extra distractors")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="random seed (default 0, as the paper)")
    parser.add_argument("--paper-exact", action="store_true",
                        help="the paper's sampling: allow distractors that duplicate an option already present")
    parser.add_argument("--overwrite", action="store_true", help="replace the variant config if it exists")


def run(args: argparse.Namespace) -> int:
    info = augment(args.folder, args.config, args.variant, seed=args.seed, dedupe=not args.paper_exact,
                   overwrite=args.overwrite)
    print(f"added {info.name}: {info.num_rows} questions (variant {args.variant} of {args.config}, "
          f"seed {args.seed}, {'paper-exact' if args.paper_exact else 'deduplicated'}) -> {info.path}")
    return 0
