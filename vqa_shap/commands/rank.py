"""``vqa-shap rank``: agreement between two frame rankings (e.g. Gemini vs Shapley) per question.

Shot players (``explain --players shots``) are ranked as the video players they are, one image per
shot for Gemini (the shots re-detected with the recorded detector, ``--shot-detector`` to override).

Prints the mean/median textbook Spearman ρ, Kendall τ and the paper's position-wise Spearman;
``--json`` writes every question's rankings and statistics, ``--plot`` a violin plot. The Gemini
ranker reads its API key from ``GEMINI_API_KEY``/``GOOGLE_API_KEY`` (never printed) and caches raw
answers per question (``--cache``), so reruns only ask again for missing or null answers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vqa_shap.analysis.rankers import DEFAULT_GEMINI_MODEL, RANKERS
from vqa_shap.commands import argtypes
from vqa_shap.commands.explain import add_recorded_options
from vqa_shap.atomic_files import atomic_write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributions", metavar="ATTRIBUTIONS", type=argtypes.folder,
                        help="Hub-style attributions folder (vqa-shap explain)")
    parser.add_argument("--config", required=True, type=argtypes.config_name, metavar="C", help="attributions config")
    parser.add_argument("--ranker", choices=RANKERS.names(), default="gemini",
                        help="the ranking to evaluate (default: gemini)")
    parser.add_argument("--against", choices=RANKERS.names(), default="shapley",
                        help="the reference ranking (default: shapley)")
    parser.add_argument("--questions", type=argtypes.folder, help="Hub-style questions folder (needed by gemini)")
    parser.add_argument("--questions-config", metavar="QC", type=argtypes.config_name,
                        help="questions config (default: the one the attributions card records)")
    parser.add_argument("--video-root", type=argtypes.folder, help="folder of the videos (needed by gemini)")
    add_recorded_options(parser)
    parser.add_argument("--gemini-model", default=DEFAULT_GEMINI_MODEL, help="Gemini model (default: %(default)s)")
    parser.add_argument("--thinking-budget", type=argtypes.int_range(0), default=None,
                        help="Gemini thinking budget (the paper's flash variant used 0; default: the model's)")
    parser.add_argument("--cache", type=argtypes.out_folder, default=None,
                        help="raw Gemini answers, one JSON per question (default: ranks/<gemini model>/<config> "
                             "next to --json, or in the current folder)")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="seed of the random ranker")
    parser.add_argument("--json", type=argtypes.out_file, metavar="OUT", help="write per-question rankings and statistics")
    parser.add_argument("--plot", type=argtypes.out_file, metavar="PNG", help="violin plot of the per-question statistics")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _make(name: str, args: argparse.Namespace, cache: Path):
    from vqa_shap.analysis.rankers import get_ranker

    if name == "gemini":
        return get_ranker("gemini", model=args.gemini_model, cache_dir=cache, thinking_budget=args.thinking_budget)
    if name == "random":
        return get_ranker("random", seed=args.seed)
    return get_ranker(name)


def _temporal_unit(attrs, recorded) -> int:
    """Frames per video feature of shot-player attributions: shot names do not tell it (frame players'
    ``frame_<i>-<j>`` names do), the loader family recorded with them does."""
    from vqa_shap.errors import VqaShapError
    from vqa_shap.loaders import get_loader

    families = sorted({a.loader for a in attrs if a.error is None and a.loader} | (
        {recorded["loader"]} if recorded.get("loader") else set()))
    if len(families) != 1:
        raise VqaShapError(f"the shot-player attributions record {'no loader family' if not families else families}; "
                           "rank needs one to re-plan their frames")
    return int(get_loader(families[0]).temporal_unit)  # an unknown family: RegistryError listing the valid ones


def run(args: argparse.Namespace) -> int:
    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis.masking import experiment as maskbench
    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.analysis import ranking
    from vqa_shap.analysis.masking.players import shot_detector_of, temporal_unit_of
    from vqa_shap.errors import VqaShapError

    attrs = load_attributions(args.attributions, args.config)
    recorded = maskbench.attribution_settings(args.attributions, args.config)
    base = args.json.parent if args.json else Path(".")
    cache = args.cache or base / "ranks" / args.gemini_model / args.config
    ranker, reference = _make(args.ranker, args, cache), _make(args.against, args, cache)
    questions = None
    if args.questions is not None:
        qconfig = args.questions_config or recorded.get("questions_config")
        if not qconfig:
            raise VqaShapError("pass --questions-config (the attributions card records none)")
        questions = {q.qid: q for q in hub.load_questions(args.questions, qconfig)}
    needs_frames = ranker.needs_frames or reference.needs_frames  # shots are re-detected only to show them
    shot_detector = shot_detector_of(attrs, recorded, args.shot_detector) if needs_frames else None
    unit = _temporal_unit(attrs, recorded) if shot_detector else max(
        (temporal_unit_of(a.features) for a in attrs if a.error is None), default=1)
    results = ranking.rank_questions(
        attrs, ranker, reference, questions=questions, video_root=args.video_root,
        n_frames=args.frames or recorded.get("n_frames"), sampler=args.sampler or recorded.get("sampler"),
        temporal_unit=unit, shot_detector=shot_detector, progress=not args.no_progress)
    summary = ranking.summarize_agreement(results)
    print(f"{args.config}: {args.ranker} vs {args.against}: {summary.n_questions} questions, "
          f"{summary.n_errors} without a ranking")
    print(f"{'statistic':<14} {'n':>4} {'mean':>8} {'median':>8}")
    for name, st in summary.stats.items():
        mean = "-" if st["mean"] is None else f"{st['mean']:+.3f}"
        median = "-" if st["median"] is None else f"{st['median']:+.3f}"
        print(f"{name:<14} {st['n']:>4} {mean:>8} {median:>8}")
    if getattr(ranker, "requests", 0) or getattr(reference, "requests", 0):
        print(f"Gemini requests made: {getattr(ranker, 'requests', 0) + getattr(reference, 'requests', 0)} "
              f"(answers cached in {cache})")
    if args.json:
        atomic_write_text(args.json, json.dumps({
            "config": args.config, "ranker": args.ranker, "against": args.against,
            "summary": {"n_questions": summary.n_questions, "n_errors": summary.n_errors, **summary.stats},
            "questions": [r.to_row() for r in results],
        }, indent=2), mkdir=True)
        print(f"wrote {args.json}")
    if args.plot:
        from vqa_shap.analysis.plots import plot_rank_violins

        label = f"{args.ranker} vs {args.against}"
        plot_rank_violins({f"{label}: position-wise": [r.positionwise for r in results],
                           f"{label}: Spearman": [r.spearman for r in results],
                           f"{label}: Kendall": [r.kendall for r in results]},
                          args.plot, statistic="correlation")
        print(f"wrote {args.plot}")
    return 0
