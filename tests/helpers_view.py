"""Folders for the viewer's tests: questions, synthesised videos and two attributions configs whose
players are exactly the protocol's (values random: the viewer needs no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vqa_shap.schema.records import Attribution, Question, VisualInput

QUESTIONS_CONFIG = "mini"
CONFIGS = ("tiny-a__mini", "tiny-b__mini")
MANY = "synthetic-many__mini"
N_FRAMES = 4
#: Questions whose video is replaced by garbage after planning (a broken video path).
BROKEN = "broken_video"
ERROR = "failed"
VARIANT_QUESTIONS = "mini_hard_1"
VARIANT = "tiny-a__mini_hard_1"


def questions() -> list[Question]:
    return [
        Question("ego_1", "egoschema", "summary", "What is the main activity of c in the video",
                 ("C washes the dishes", "C cooks pasta", "C reads a book"), 1, inputs=(VisualInput("video", "ego_1.mp4"),)),
        Question("mv_2", "mvbench", "action_count", "How many times did the person jump?",
                 ("One", "Two", "Three", "Four"), 3, inputs=(VisualInput("video", "mv_2.mp4"),)),
        Question(BROKEN, "mvbench", "action_count", "Where is the cup?", ("Here", "There"), 0,
                 inputs=(VisualInput("video", "broken.mp4"),)),
        Question(ERROR, "egoschema", "summary", "Why?", ("Because", "Why not"), 0,
                 inputs=(VisualInput("video", "missing.mp4"),)),
    ]


def _rows(qs, videos: Path, model: str, seed: int) -> list[dict]:
    from vqa_shap.estimators.base import relative_error
    from vqa_shap.protocol import get_protocol

    proto = get_protocol("pollard2025")
    rng = np.random.default_rng(seed)
    rows = []
    for q in qs:
        common = dict(qid=q.qid, benchmark=q.benchmark, task=q.task, variant=q.variant, model=model,
                      loader="llava_onevision", protocol="pollard2025", answer=q.answer, estimator="permutation",
                      budget=64, evaluations=64, seed=seed)
        if q.qid == ERROR:
            rows.append(Attribution(features=(), shapley=[], error="missing.mp4: file not found", **common).to_row())
            continue
        plan = proto.plan_frames(q, videos, N_FRAMES, loader_family="llava_onevision")
        feats = proto.features(q, plan)
        phi = rng.normal(size=(len(feats), q.n_options))
        full = rng.normal(size=q.n_options)
        stderr = np.abs(rng.normal(scale=0.05, size=phi.shape))
        if seed == 1:
            stderr[0, 0] = np.inf  # fewer than two samples: shown as ∞
        rows.append(Attribution(features=feats, shapley=phi, stderr=stderr, value_full=full,
                                value_empty=full - phi.sum(0), prediction=int(np.argmax(full)),
                                relative_error=relative_error(phi, stderr, int(np.argmax(full))), **common).to_row())
    return rows


def write_view_folders(root: Path, *, many: int = 0, variant: bool = False) -> dict:
    """Questions, videos (one broken after planning) and attributions configs :data:`CONFIGS`
    (plus ``many`` synthetic rows as config :data:`MANY`, and with ``variant`` the questions config
    :data:`VARIANT_QUESTIONS` — same qids, one more option — explained as :data:`VARIANT`)."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.measure.view_site import synthetic_attributions
    from vqa_shap.schema.arrow import attribution_features
    from vqa_shap.synthetic_inputs import synthesize_inputs

    qs = questions()
    hub.write_questions(root / "questions", QUESTIONS_CONFIG, qs)
    videos = root / "videos"
    synthesize_inputs(qs[:3], videos, n_frames=12, size=(48, 64), seed=0)
    rows = {c: _rows(qs, videos, c.split("__")[0], seed) for seed, c in enumerate(CONFIGS)}
    if variant:  # planned (like the others) before the video breaks
        from dataclasses import replace

        hard = [replace(q, variant="hard_1", options=(*q.options, "Never"), option_origin=()) for q in qs]
        hub.write_questions(root / "questions", VARIANT_QUESTIONS, hard)
        rows[VARIANT] = _rows(hard, videos, "tiny-a", 2)
    (videos / "broken.mp4").write_bytes(b"not a video")
    card = {"questions_config": QUESTIONS_CONFIG, "n_frames": N_FRAMES, "sampler": None}
    for config, config_rows in rows.items():
        qconfig = VARIANT_QUESTIONS if config == VARIANT else QUESTIONS_CONFIG
        hub.write_config(root / "attributions", config, config_rows, features=attribution_features(),
                         kind="attributions", card_vars={**card, "model": config.split("__")[0], "questions_config": qconfig})
    if many:
        hub.write_config(root / "attributions", MANY, [a.to_row() for a in synthetic_attributions(many)],
                         features=attribution_features(), kind="attributions", card_vars={"model": "synthetic"})
    return {"questions": root / "questions", "videos": videos, "attributions": root / "attributions", "rows": rows}
