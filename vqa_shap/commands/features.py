"""``vqa-shap features``: list each question's players (frames, question words, option words)
without running any model."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from pathlib import Path

from vqa_shap.atomic_files import atomic_write_json
from vqa_shap.commands import argtypes
from vqa_shap.explain_options import PLAYERS

#: Per-question notes printed at most (all are in the JSON).
MAX_NOTES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("questions", metavar="QUESTIONS", type=argtypes.folder, help="questions dataset: a Hub-style folder")
    parser.add_argument("--config", required=True, type=argtypes.config_name, help="config to read, e.g. egoschema or hd-epic_hard_5")
    parser.add_argument("--video-root", type=argtypes.folder, default=None,
                        help="folder the questions' input paths are relative to; without it only text "
                             "features are listed")
    parser.add_argument("--frames", type=argtypes.frames, default=16, help="frames to sample per question (default 16)")
    parser.add_argument("--protocol", default="pollard2025", type=argtypes.protocol, help="protocol (default pollard2025)")
    parser.add_argument("--loader", default=None, metavar="FAMILY", type=argtypes.loader_family,
                        help="model family; picks the frame sampler where the protocol has one per family")
    parser.add_argument("--sampler", default=None, type=argtypes.sampler, help="override the protocol's frame sampler")
    parser.add_argument("--temporal-unit", type=argtypes.positive_int, default=1,
                        help="consecutive frames per video player (default 1)")
    parser.add_argument("--players", default="frames", choices=PLAYERS,
                        help="video players: one per frame group (default) or one per detected shot (docs/shots.md)")
    parser.add_argument("--shot-detector", default=None, type=argtypes.shot_detector,
                        help="shot detector for --players shots: diff, content, adaptive, transnetv2 (the "
                             "published weights of the 'shots' extra) or transnetv2:PATH (a TransNet V2 weights .pth; "
                             "default: transnetv2 with the 'shots' extra, else diff)")
    parser.add_argument("--json", required=True, type=argtypes.out_file, dest="json_out", metavar="OUT",
                        help="output JSON file")


def question_entry(protocol, question, video_root: Path | None, n_frames: int, loader: str | None,
                   sampler: str | None, temporal_unit: int, players: str = "frames",
                   shot_detector: str | None = None) -> dict:
    """The JSON entry of one question: its ordered players, or why frames are not listed."""
    from vqa_shap.video import VideoError

    entry = {"qid": question.qid, "benchmark": question.benchmark, "task": question.task,
             "variant": question.variant, "n_frames": 0, "stride": None, "note": None, "error": None}
    plan = None
    if video_root is None:
        entry["note"] = "no --video-root: text features only"
    elif not question.inputs:
        entry["note"] = "the question has no visual inputs: text features only"
    else:
        missing = [i.path for i in question.inputs if not (video_root / i.path).exists()]
        if missing:
            entry["note"] = f"videos not found under {video_root}: {', '.join(missing)}: text features only"
        else:
            try:
                plan = protocol.plan_frames(question, video_root, n_frames, sampler=sampler,
                                            loader_family=loader)
            except VideoError as exc:
                entry["error"] = str(exc)
                entry["note"] = "frames could not be planned: text features only"
    if plan is not None:
        entry["n_frames"] = len(plan.frames)
        entry["stride"] = plan.stride
        distinct = len({(f.input, f.index) for f in plan.frames})
        if distinct < len(plan.frames):  # as explain says: the paper repeats frames of a short video
            entry["note"] = (f"its video has only {distinct} distinct frame(s) for {len(plan.frames)} requested: "
                             "frames repeat (as in the paper)")
    features = protocol.features(question, plan, temporal_unit=temporal_unit)
    if players == "shots" and plan is not None:
        from vqa_shap.long_video.shots import shot_layout

        features, _ = shot_layout(protocol, question, plan, features, temporal_unit, video_root,
                                  detector=shot_detector)
    entry["features"] = [f.to_row() for f in features]
    return entry


def run(args) -> int:
    from tqdm.auto import tqdm

    from vqa_shap.errors import VqaShapError
    from vqa_shap.hub.folder import load_questions
    from vqa_shap.protocol import get_protocol

    if args.frames < 1:
        raise VqaShapError(f"--frames must be >= 1, got {args.frames}")
    if args.temporal_unit < 1:
        raise VqaShapError(f"--temporal-unit must be >= 1, got {args.temporal_unit}")
    if args.video_root is not None and not args.video_root.is_dir():
        raise VqaShapError(f"--video-root {args.video_root} is not a folder")
    protocol = get_protocol(args.protocol)
    if args.sampler is not None:
        from vqa_shap.protocol.samplers import SAMPLERS

        if args.sampler not in SAMPLERS:
            raise VqaShapError(f"unknown sampler {args.sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
        if args.sampler == "aks":
            from vqa_shap.errors import UsageError

            raise UsageError("--sampler aks scores frames with a model: use it with explain "
                               "(features has no model)")
    if args.shot_detector is not None and args.players != "shots":
        from vqa_shap.errors import UsageError

        raise UsageError(f"--shot-detector {args.shot_detector} needs --players shots (it would be ignored)")
    questions = load_questions(args.questions, args.config)
    repeated = [q for q, n in Counter(q.qid for q in questions).items() if n > 1]
    if repeated:
        logging.getLogger("vqa_shap").warning(
            "%s config %r: %d qid(s) appear more than once (%s); each row is listed", args.questions, args.config,
            len(repeated), ", ".join(map(repr, repeated[:5])))
    entries = [question_entry(protocol, q, args.video_root, args.frames, args.loader, args.sampler,
                              args.temporal_unit, args.players, args.shot_detector)
               for q in tqdm(questions, desc=f"features {args.config}", unit="question")]
    result = {
        "questions_dataset": str(args.questions), "config": args.config, "protocol": protocol.name,
        "loader": args.loader, "frames_requested": args.frames, "temporal_unit": args.temporal_unit,
        "video_root": None if args.video_root is None else str(args.video_root), "questions": entries,
    }
    atomic_write_json(args.json_out, result, mkdir=True, indent=1, ensure_ascii=False)

    with_frames = sum(1 for e in entries if e["n_frames"])
    errors = [e for e in entries if e["error"]]
    print(f"{len(entries)} questions, {with_frames} with frames, "
          f"{sum(len(e['features']) for e in entries)} features -> {args.json_out}")
    noted = [e for e in entries if e["note"] and not e["error"]]
    if args.video_root is None:
        print("  no --video-root: text features only")
    else:
        for e in noted[:MAX_NOTES]:
            print(f"  {e['qid']}: {e['note']}")
        if len(noted) > MAX_NOTES:
            print(f"  … {len(noted) - MAX_NOTES} more questions with a note (see the JSON's 'note')")
    for e in errors:
        print(f"  {e['qid']}: error: {e['error']}")
    return 1 if errors else 0
