"""``vqa-shap view``: a self-contained static HTML site of an attributions dataset.

The site opens from disk (``SITE/index.html``) or from any static web server, and can be uploaded
into the Hub dataset repository next to the parquet files (docs/viewer.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributions", metavar="ATTRIBUTIONS", type=argtypes.folder, help="Hub-style attributions folder")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, metavar="SITE",
                        help="folder to write the site into (missing, empty, or a site an earlier view wrote)")
    parser.add_argument("--config", action="append", type=argtypes.config_name, metavar="C",
                        help="attributions config (repeatable; default: every attributions config in the folder)")
    parser.add_argument("--questions", type=argtypes.folder, help="Hub-style questions folder (question text, videos)")
    parser.add_argument("--questions-config", action="append", metavar="QC", type=argtypes.config_name,
                        help="questions config(s) (default: the ones the attributions cards record)")
    parser.add_argument("--video-root", type=argtypes.folder, help="folder of the videos (needs --questions; "
                        "without it frames are placeholders)")
    parser.add_argument("--report", type=argtypes.folder, metavar="DIR",
                        help="a `vqa-shap report` output folder whose top-level PNG figures and CSV tables the "
                        "index shows, copied into the site (default: those at the top of ATTRIBUTIONS, if any)")
    parser.add_argument("--interactions", type=argtypes.folder, metavar="DIR",
                        help="a `vqa-shap interactions` output folder: each question page shows the pairwise values "
                        "of the same question, model and variant as a frame x word heat map")
    parser.add_argument("--bootstrap", type=argtypes.bootstrap, default=200,
                        help="resamples of the metrics' confidence intervals (default 200; 0: none)")
    parser.add_argument("--title", default="vqa-shap attributions", help="heading of the index page")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _configs(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The configs to show (checked before any loading) and whether the user named them."""
    from vqa_shap import hub
    from vqa_shap.errors import UsageError

    available = hub.list_configs(args.attributions)
    if not available:
        raise UsageError(f"{args.attributions}: no dataset configs found (expected a Hub-style attributions folder)")
    unknown = [c for c in args.config or () if c not in available]
    if unknown:
        raise UsageError(f"{args.attributions}: unknown config(s) {unknown}; available: {available}")
    return list(args.config or available), bool(args.config)


def _questions_configs(args: argparse.Namespace, settings) -> list[str]:
    """The questions configs to read (checked before any loading); ``[]`` without ``--questions``."""
    from vqa_shap import hub
    from vqa_shap.errors import UsageError

    if args.questions is None:
        return []
    qconfigs = set(args.questions_config or ()) or {s.get("questions_config") for s in settings.values()}
    qconfigs.discard(None)
    if not qconfigs:
        raise UsageError("pass --questions-config (the attributions cards record no questions config)")
    available = hub.list_configs(args.questions)
    missing = sorted(qconfigs - set(available))
    if missing:
        raise UsageError(f"{args.questions}: no questions config(s) {missing}; available: {available}")
    return sorted(qconfigs)


def _load(args: argparse.Namespace, configs: list[str], named: bool):
    """The configs' rows; a config of another schema is skipped (listed) unless the user named it."""
    from vqa_shap.analysis import maskbench
    from vqa_shap.errors import VqaShapError

    attributions, skipped = {}, []
    for config in configs:
        try:
            attributions[config] = maskbench.load_attributions(args.attributions, config)
        except (VqaShapError, ValueError, KeyError, TypeError) as exc:  # another schema, or rows that do not fit
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            if named:
                raise VqaShapError(f"{args.attributions}: config {config!r} cannot be shown: {reason}") from exc
            skipped.append(f"{config}: {reason}")
    if not attributions:
        raise VqaShapError(f"{args.attributions}: no attributions config among {configs}")
    return attributions, skipped


def _interactions(args: argparse.Namespace) -> dict:
    """Config -> rows of every config of ``--interactions`` (``{}`` without it)."""
    from vqa_shap import hub
    from vqa_shap.errors import VqaShapError
    from vqa_shap.view.interactions import load_interactions

    if args.interactions is None:
        return {}
    loaded = {c: load_interactions(args.interactions, c) for c in hub.list_configs(args.interactions)}
    wrong = sorted(c for c, rows in loaded.items() if rows is None)
    if wrong or not loaded:
        raise VqaShapError(f"{args.interactions}: not an interactions folder (configs without the players, pairs and "
                           f"interactions columns: {wrong or 'no configs at all'})")
    return loaded


def _questions(args: argparse.Namespace, qconfigs: list[str], settings) -> dict | None:
    """Attributions config -> qid -> question: the questions config its card records when loaded,
    else the only one loaded, else all of them (variants share qids, so each config gets its own)."""
    from vqa_shap import hub

    if args.questions is None:
        return None
    loaded = {qc: {q.qid: q for q in hub.load_questions(args.questions, qc)} for qc in qconfigs}
    merged = {qid: q for per in loaded.values() for qid, q in per.items()}
    return {c: loaded.get(s.get("questions_config")) or merged for c, s in settings.items()}


def run(args: argparse.Namespace) -> int:
    from vqa_shap.errors import UsageError, VqaShapError
    from vqa_shap.view.interactions import match
    from vqa_shap.view.site import build_site, check_site_folder

    if args.video_root is not None and args.questions is None:
        raise UsageError("--video-root needs --questions (the questions name each video)")
    try:
        check_site_folder(args.out)
    except VqaShapError as exc:
        raise UsageError(str(exc)) from None
    from vqa_shap import hub
    from vqa_shap.analysis import maskbench

    configs, named = _configs(args)
    settings = {c: maskbench.attribution_settings(args.attributions, c) for c in configs}
    qconfigs = _questions_configs(args, settings)
    with hub._datasets_bars_off():  # one bar (the site's), not one per config loaded
        attributions, skipped = _load(args, configs, named)
        interactions = _interactions(args)
        questions = _questions(args, qconfigs, {c: settings[c] for c in attributions})
    # a report's top-level figures and tables (per-question images live in sub-folders and are not linked)
    report = Path(args.report or args.attributions)
    reports, tables = sorted(report.glob("*.png")), sorted(report.glob("*.csv"))
    shown, unmatched = match(interactions, attributions)
    result = build_site(attributions, args.out, questions=questions, video_root=args.video_root,
                        settings={c: settings[c] for c in attributions}, reports=reports, report_tables=tables,
                        interactions=shown, bootstrap=args.bootstrap, title=args.title, progress=not args.no_progress)
    print(f"site of {len(result.configs)} config(s), {result.n_questions} question(s) "
          f"({result.n_errors} error rows) in {result.seconds:.1f} s: {result.out / 'index.html'}")
    for entry in skipped:
        print(f"  skipped non-attributions config {entry}")
    if interactions:
        print(f"  interactions config(s) {sorted(set(interactions) - set(unmatched))} shown on the question pages"
              + (f"; {unmatched} match no attributions config (same model, benchmark, variant)" if unmatched else ""))
    n_tables = sum(r.endswith(".csv") for r in result.reports)
    print(f"  {result.n_thumbnails} frame thumbnails, {len(result.reports) - n_tables} report figure(s), "
          f"{n_tables} report table(s)")
    if result.placeholders:
        reason = next(iter(result.placeholders.values()))
        print(f"  {len(result.placeholders)} question(s) with placeholder frames (e.g. {reason})")
    return 0
