"""``vqa-shap merge``: assemble the shard outputs of ``vqa-shap explain`` into attributions configs."""

from __future__ import annotations

import argparse

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", metavar="FOLDER", nargs="+", type=argtypes.folder,
                        help="explain output folders of the shards (the same folder if they shared one)")
    parser.add_argument("--out", default=None, type=argtypes.out_folder, help="destination Hub-style folder (default: the first FOLDER)")
    parser.add_argument("--config", action="append", default=None, type=argtypes.config_name,
                        help="merge only this config (repeatable; default: every config found)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="write what exists even if some questions have no result")
    parser.add_argument("--overwrite", action="store_true", help="replace existing configs in the destination")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.explain.merge import merge_shards

    results = merge_shards(args.folders, out=args.out, configs=args.config,
                           allow_partial=args.allow_partial, overwrite=args.overwrite)
    for r in results:
        note = f", {len(r.missing)} questions missing" if r.missing else ""
        print(f"{r.config}: {r.n_rows} rows ({r.n_errors} errors{note}) -> {r.folder}")
    return 0
