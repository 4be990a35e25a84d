"""``vqa-shap mask-bench``: the paper's masking benchmark on an attributions dataset, through a model.

Every question is scored once per masking setting (nothing; everything × mode; positive/negative ×
signal × mode) in one batch; the tidy results (one row per question × setting) are written as a
Hub-style config, and the accuracy differences to ``nothing`` are printed (``--json`` for a file).
``joint`` means "all features eligible" (the paper's intent; its released code masks only answers).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vqa_shap.analysis.masking.masks import ANSWER_MASKINGS, FORCE_LOGITS
from vqa_shap.commands import argtypes
from vqa_shap.commands.explain import add_recorded_options
from vqa_shap.atomic_files import atomic_write_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributions", metavar="ATTRIBUTIONS", type=argtypes.folder,
                        help="Hub-style attributions folder (vqa-shap explain)")
    parser.add_argument("--config", required=True, type=argtypes.config_name, metavar="C", help="attributions config")
    parser.add_argument("--questions", required=True, type=argtypes.folder, metavar="QUESTIONS",
                        help="Hub-style questions folder the attributions were computed on")
    parser.add_argument("--questions-config", metavar="QC", type=argtypes.config_name,
                        help="questions config (default: the one the attributions card records)")
    parser.add_argument("--model", help="checkpoint id, local folder or tiny-random/<family> "
                                        "(default: the attributions' model)")
    parser.add_argument("--video-root", required=True, type=argtypes.folder, help="folder the questions' video paths are relative to")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, help="Hub-style output folder (other configs are kept)")
    parser.add_argument("--answer-masking", choices=ANSWER_MASKINGS, default="all",
                        help="answer words eligible for masking: every option's, or only the ground truth's (default all)")
    parser.add_argument("--force-logit", choices=FORCE_LOGITS, default=None,
                        help="show the ground-truth option first/last (masks computed in the original order)")
    parser.add_argument("--threshold", type=argtypes.finite_float, default=0.0, help="signal threshold (default 0, as the paper)")
    add_recorded_options(parser)
    parser.add_argument("--loader", default=None, help="loader family (default: from the checkpoint)")
    parser.add_argument("--protocol", default=None, type=argtypes.protocol, help="protocol (default: the attributions' protocol)")
    parser.add_argument("--device", default=None, type=argtypes.device, help="torch device (default: automatic)")
    parser.add_argument("--dtype", default=None, type=argtypes.dtype, help="torch dtype (default: automatic)")
    parser.add_argument("--threads", type=argtypes.threads, default=None,
                        help="CPU threads for torch (default: torch's; 1 is fastest for tiny models or a busy CPU)")
    parser.add_argument("--batch-size", type=argtypes.batch_size, default=8, help="coalitions per forward pass (default 8)")
    parser.add_argument("--name", default=None, type=argtypes.config_name,
                        help="output config name (default: the attributions config + _gt/_first/_last)")
    parser.add_argument("--json", type=argtypes.out_file, metavar="OUT",
                        help="write the accuracy table and the paper's benchmark JSON layout")
    parser.add_argument("--work-dir", type=argtypes.out_folder, default=None,
                        help="per-question results for resuming (default: OUT/.work/mask-bench/<name>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output config")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis.masking import experiment as maskbench
    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.analysis.masking.players import shot_detector_of
    from vqa_shap.analysis.masking.summary import format_matrix, paper_json, summarize
    from vqa_shap.errors import VqaShapError
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    argtypes.refuse_foreign_card(args.out, args.overwrite)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    attrs = load_attributions(args.attributions, args.config)
    recorded = maskbench.attribution_settings(args.attributions, args.config)
    qconfig = args.questions_config or recorded.get("questions_config")
    if not qconfig:
        raise VqaShapError(f"{args.attributions}: the card of {args.config!r} records no questions config; "
                           "pass --questions-config")
    questions = {q.qid: q for q in hub.load_questions(args.questions, qconfig)}
    models = sorted({a.model for a in attrs})
    model = args.model or recorded.get("model") or (models[0] if len(models) == 1 else None)
    if not model:
        raise VqaShapError(f"config {args.config!r} holds several models {models}; pass --model")
    protocols = sorted({a.protocol for a in attrs if a.protocol})
    protocol = get_protocol(args.protocol or (protocols[0] if len(protocols) == 1 else "pollard2025"))
    sampler = args.sampler or recorded.get("sampler")
    if sampler == "aks":
        raise VqaShapError(f"{args.attributions}: config {args.config!r}: mask-bench cannot re-plan --sampler aks "
                           "frames (AKS picks them with its relevance scorer)")
    options = maskbench.MaskBenchOptions(answer_masking=args.answer_masking, force_logit=args.force_logit,
                                         threshold=args.threshold, sampler=sampler,
                                         shot_detector=shot_detector_of(attrs, recorded, args.shot_detector))
    name = args.name or f"{args.config}{options.suffix}"
    if not args.overwrite and name in hub.list_configs(args.out):
        raise VqaShapError(f"{args.out}: config {name!r} already exists; pass --overwrite to replace it")

    loader_cls, checkpoint = resolve_model(model, args.loader)
    loader = loader_cls.load(checkpoint, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    n_frames = args.frames or recorded.get("n_frames") or maskbench.frame_count(attrs, loader.temporal_unit)
    work = args.work_dir or Path(args.out) / ".work" / "mask-bench" / name
    rows = maskbench.run_mask_bench(attrs, questions, loader, protocol, args.video_root, n_frames=int(n_frames),
                                    options=options, work_dir=work, progress=not args.no_progress)
    card_vars = {"model": model, "attributions_config": args.config, "questions_config": qconfig,
                 "answer_masking": options.answer_masking, "force_logit": options.force_logit,
                 "threshold": options.threshold, "n_frames": int(n_frames),
                 **({"players": "shots", "shot_detector": options.shot_detector} if options.shot_detector else {})}
    info = hub.write_config(args.out, name, [r.to_row() for r in rows], features=maskbench.maskbench_features(),
                            kind="maskbench", card_vars=card_vars, overwrite=args.overwrite)
    summary = summarize(rows)
    n_questions = len(attrs)
    n_failed = len({r.qid for r in rows if r.error is not None})
    print(f"{name}: {n_questions} questions, {n_failed} failed; model {model}; answer masking "
          f"{options.answer_masking}; force logit {options.force_logit or 'none'}")
    print(format_matrix(summary))
    print(f"wrote config {name!r} ({info.num_rows} rows) to {args.out}")
    if args.json:
        payload = {
            "config": name, "attributions_config": args.config, "model": model, **{
                k: card_vars[k] for k in ("answer_masking", "force_logit", "threshold", "n_frames")},
            "n_questions": n_questions, "n_failed": n_failed,
            "settings": [{"setting": s.setting, "signal": s.signal, "mode": s.mode, "n_questions": s.n_questions,
                          "n_errors": s.n_errors, "accuracy": s.accuracy, "diff": s.diff} for s in summary],
            "paper": paper_json(rows),
            "errors": sorted({f"{r.qid}: {r.error}" for r in rows if r.error is not None}),
        }
        atomic_write_text(args.json, json.dumps(payload, indent=2), mkdir=True)
        print(f"wrote {args.json}")
    return 0
