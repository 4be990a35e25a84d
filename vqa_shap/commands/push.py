"""``vqa-shap push``: upload a Hub-style dataset folder to the Hugging Face Hub."""

from __future__ import annotations

import argparse

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="FOLDER", type=argtypes.folder,
                        help="a Hub-style dataset folder (build/augment/explain output)")
    parser.add_argument("repo_id", metavar="REPO_ID", type=argtypes.repo_id, help="the dataset repository, e.g. user/my-benchmarks")
    parser.add_argument("--overwrite", action="store_true", help="replace configs that already exist on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.epilog = "The token comes from HF_TOKEN or `hf auth login`; it is never printed."


def run(args: argparse.Namespace) -> int:
    from vqa_shap.hub import folder as hub
    from vqa_shap.hub.push import push

    result = push(args.folder, args.repo_id, overwrite=args.overwrite, private=args.private)
    print(f"pushed {len(result.configs)} config(s) to {result.url}: {', '.join(result.configs)}")
    if result.replaced:
        print(f"  replaced: {', '.join(result.replaced)}")
    if result.kept:
        print(f"  kept (already on the Hub): {', '.join(result.kept)}")
    print(f"  load with: load_dataset({args.repo_id!r}, name={result.configs[0]!r}, split={hub.SPLIT!r})")
    return 0
