"""The paper's masking benchmark: re-answer each explained question with features masked by their
Shapley values (nothing, everything, positive or negative × signal × mode), all settings of a question
in one ``loader.score`` batch.

One :class:`MaskBenchRow` per question × setting; :func:`summarize` gives accuracy per setting,
:func:`paper_json` the paper's JSON layout. Settings, modes (``joint`` = all features, the paper's
intent), ``force_logit`` and shot players: docs/analysis.md#masking-benchmark. Parts:
:mod:`~vqa_shap.analysis.masking.masks`, :mod:`~vqa_shap.analysis.masking.players`,
:mod:`~vqa_shap.analysis.masking.summary`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from vqa_shap.analysis.masking.masks import (
    ANSWER_MASKINGS, FORCE_LOGITS, MaskBenchError, MaskSetting, feature_index_map, forced_order, keep_matrix, mask_settings, reorder_options,
)
from vqa_shap.analysis.masking.players import check_features, frame_count, plan_for_attribution
from vqa_shap.errors import InternalError, VqaShapError
from vqa_shap.atomic_files import atomic_write_json, safe_stem
from vqa_shap.schema.records import Attribution, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol.base import Protocol

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class MaskBenchOptions:
    """How the benchmark masks and reads out.

    Attributes:
        answer_masking: ``all`` (every option's words are answer features) or ``gt``.
        force_logit: ``None``, ``first`` or ``last``.
        threshold: signal threshold (paper: 0).
        settings: the settings to run (default: all 29 of :func:`mask_settings`).
        sampler: the frame sampler the attributions were computed with (``None``: the protocol's
            default for the loader family).
        shot_detector: the shot detector shot-player attributions were computed with (``None``:
            the default detector; :func:`shot_detector_of` reads it from the card).
    """

    answer_masking: str = "all"
    force_logit: str | None = None
    threshold: float = 0.0
    settings: tuple[MaskSetting, ...] = dataclasses.field(default_factory=mask_settings)
    sampler: str | None = None
    shot_detector: str | None = None

    def __post_init__(self):
        if self.answer_masking not in ANSWER_MASKINGS:
            raise ValueError(f"answer_masking must be one of {ANSWER_MASKINGS}, got {self.answer_masking!r}")
        if self.force_logit is not None and self.force_logit not in FORCE_LOGITS:
            raise ValueError(f"force_logit must be None or one of {FORCE_LOGITS}, got {self.force_logit!r}")
        object.__setattr__(self, "settings", tuple(self.settings))

    @property
    def suffix(self) -> str:
        """Config-name suffix as the paper names its result files (``_gt``, ``_first``, ``_last``)."""
        out = "_gt" if self.answer_masking == "gt" else ""
        if self.force_logit:
            out += f"_{self.force_logit}"
        if self.threshold != 0:
            out += f"_t{self.threshold:g}"
        return out


@dataclass(frozen=True)
class MaskBenchRow:
    """One question × setting result (one row of the mask-bench dataset).

    ``prediction``, ``correct`` and ``n_masked`` are ``None`` when the question failed (``error``).
    ``label`` is the ground truth in the order the model saw (the forced position with
    ``force_logit``).
    """

    qid: str
    benchmark: str
    task: str
    variant: str
    model: str
    setting: str
    signal: str | None
    mode: str | None
    prediction: int | None
    label: int
    correct: bool | None
    n_masked: int | None
    n_features: int | None = None
    answer_masking: str = "all"
    force_logit: str | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return MaskSetting(self.setting, self.signal, self.mode).key

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "MaskBenchRow":
        return cls(**{f.name: row.get(f.name) for f in dataclasses.fields(cls)})


@lru_cache(maxsize=None)
def maskbench_features():
    """The ``datasets.Features`` of the mask-bench dataset (one row per question × setting)."""
    from datasets import Features, Value

    return Features({
        "qid": Value("string"), "benchmark": Value("string"), "task": Value("string"),
        "variant": Value("string"), "model": Value("string"), "setting": Value("string"),
        "signal": Value("string"), "mode": Value("string"), "prediction": Value("int32"),
        "label": Value("int32"), "correct": Value("bool"), "n_masked": Value("int32"),
        "n_features": Value("int32"), "answer_masking": Value("string"),
        "force_logit": Value("string"), "error": Value("string"),
    })


# --------------------------------------------------------------------------------------------
# frames of an attribution


def attribution_settings(folder: Path | str, config: str) -> dict[str, Any]:
    """The settings an attributions config's card records (``model``, ``n_frames``, ``sampler``,
    ``questions_config``, …, as written by ``vqa-shap explain``); ``{}`` when the card has none."""
    from vqa_shap.hub.card import config_vars

    return config_vars(folder, config)


# --------------------------------------------------------------------------------------------
# running


def evaluate_question(attribution: Attribution, question: Question, loader: Any, protocol: "Protocol",
                      video_root: Path | str, n_frames: int, options: MaskBenchOptions = MaskBenchOptions(), *,
                      shot_cache: Path | str | None = None) -> list[MaskBenchRow]:
    """Run every setting of ``options`` on one question in a single ``loader.score`` batch.

    The masks are coalitions of the attribution's players; shot players (``explain --players
    shots``) are rebuilt by :func:`plan_for_attribution` and a masked shot masks all its sampled
    frames, through the Game's player groups as explain masked them
    (:func:`vqa_shap.game.expand_coalitions`). ``n_masked``/``n_features`` count players.

    Args:
        shot_cache: folder caching shot boundaries (shot players only), or ``None``.

    Raises:
        MaskBenchError: the attribution and the question/protocol do not fit together.
        VqaShapError: video or loader errors (missing video, too many options, ...).
    """
    from vqa_shap.game import expand_coalitions

    if attribution.error is not None:
        raise MaskBenchError(f"the attribution has an error: {attribution.error}")
    if question.answer is None:
        raise MaskBenchError("the question has no known answer: the masking benchmark needs the ground truth")
    if question.answer != attribution.answer:
        raise MaskBenchError(f"answer differs: question {question.answer} vs attribution {attribution.answer}")
    layout = plan_for_attribution(protocol, question, attribution, video_root, n_frames,
                                  loader_family=loader.family, temporal_unit=loader.temporal_unit,
                                  sampler=options.sampler, shot_detector=options.shot_detector, shot_cache=shot_cache)
    plan, features = layout.plan, layout.features
    keep = keep_matrix(options.settings, layout.players, attribution.shapley, question.answer,
                       threshold=options.threshold, answer_masking=options.answer_masking)
    masks = expand_coalitions(keep, layout.groups, len(features))
    shown, label = question, question.answer
    if options.force_logit:  # the words are their own players: reorder the feature masks
        order = forced_order(question.n_options, question.answer, options.force_logit)
        shown = reorder_options(question, order)
        label = shown.answer
        index_map = feature_index_map(features, order)
        moved = tuple(protocol.features(shown, plan, loader.temporal_unit))
        check_features(moved, [features[i] for i in index_map], what=f"reordered question {question.qid!r}",
                       same_options=False)
        masks = masks[:, index_map]
    frames = protocol.load_frames(shown, Path(video_root), plan)
    prepared = loader.prepare(shown, frames, plan, protocol)
    scores = np.asarray(loader.score(prepared, masks), dtype=np.float64)
    if scores.shape[0] != masks.shape[0]:
        raise InternalError(f"loader returned {scores.shape[0]} score rows for {masks.shape[0]} coalitions")
    preds = scores.argmax(axis=1)  # ties -> lowest index, as torch.argmax in the paper
    return [
        _row(attribution, question, s, label, options, prediction=int(p), n_masked=int((~k).sum()),
             n_features=len(layout.players))
        for s, p, k in zip(options.settings, preds, keep)
    ]


def _row(attribution: Attribution, question: Question | None, setting: MaskSetting, label: int,
         options: MaskBenchOptions, *, prediction: int | None = None, n_masked: int | None = None,
         n_features: int | None = None, error: str | None = None) -> MaskBenchRow:
    src = question or attribution
    return MaskBenchRow(
        qid=attribution.qid, benchmark=src.benchmark, task=src.task, variant=src.variant,
        model=attribution.model, setting=setting.setting, signal=setting.signal, mode=setting.mode,
        prediction=prediction, label=int(label),
        correct=None if prediction is None else bool(prediction == label),
        n_masked=n_masked, n_features=n_features, answer_masking=options.answer_masking,
        force_logit=options.force_logit, error=error,
    )


def error_rows(attribution: Attribution, question: Question | None, reason: str,
               options: MaskBenchOptions) -> list[MaskBenchRow]:
    """One row per setting recording why the question could not be run (never dropped silently)."""
    answer = question.answer if question is not None else attribution.answer
    label = answer
    if options.force_logit and question is not None:
        label = 0 if options.force_logit == "first" else question.n_options - 1
    return [_row(attribution, question, s, label, options, error=reason) for s in options.settings]


def _check_work_dir(work: Path, settings: dict[str, Any]) -> None:
    """Create ``work`` or check its finished results were computed with the same settings."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "settings.json"
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded != settings:
            diff = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
            raise MaskBenchError(f"{work} holds results computed with other settings ({', '.join(diff)}); "
                                 "remove it or choose another work directory")
        return
    atomic_write_json(path, settings)


def run_mask_bench(attributions: Sequence[Attribution], questions: Mapping[str, Question], loader: Any,
                   protocol: "Protocol", video_root: Path | str, *, n_frames: int | None = None,
                   options: MaskBenchOptions = MaskBenchOptions(), work_dir: Path | str | None = None,
                   progress: bool = True) -> list[MaskBenchRow]:
    """Run the masking benchmark over explained questions.

    Args:
        attributions: the explained questions (rows with ``error`` get error rows).
        questions: qid -> question (the questions the attributions were computed on).
        loader: a loaded model loader (``family``, ``temporal_unit``, ``prepare``, ``score``).
        protocol: the protocol the attributions were computed with.
        video_root: where the questions' videos are.
        n_frames: frames to plan per question (default: :func:`frame_count` of the attributions).
        options: masking options.
        work_dir: if given, each finished question's rows are written there atomically
            (``<qid>.json``) and reused on a rerun, so a killed run loses nothing.
        progress: show a tqdm progress bar.

    Returns:
        One row per question × setting, in attribution order then setting order.
    """
    from tqdm.auto import tqdm

    if n_frames is None:
        n_frames = frame_count(attributions, loader.temporal_unit)
    work = Path(work_dir) if work_dir is not None else None
    if work is not None:
        _check_work_dir(work, {
            "model": getattr(loader, "checkpoint", None) or type(loader).__name__, "n_frames": int(n_frames),
            "answer_masking": options.answer_masking, "force_logit": options.force_logit,
            "threshold": options.threshold, "sampler": options.sampler,
            "settings": [s.key for s in options.settings],
            **({"shot_detector": options.shot_detector} if options.shot_detector else {}),
        })
    rows: list[MaskBenchRow] = []
    n_failed = 0
    for attr in tqdm(attributions, desc="mask-bench", unit="q", disable=not progress):
        cached = work / f"{safe_stem(attr.qid)}.json" if work is not None else None
        if cached is not None and cached.exists():
            rows += [MaskBenchRow.from_row(r) for r in json.loads(cached.read_text())]
            continue
        question = questions.get(attr.qid)
        try:
            if question is None:
                raise MaskBenchError(f"question {attr.qid!r} is not in the questions dataset")
            q_rows = evaluate_question(attr, question, loader, protocol, video_root, n_frames, options,
                                       shot_cache=work / "shots" if work is not None else None)
        except Exception as exc:  # noqa: BLE001 - recorded per question, the run goes on
            n_failed += 1
            reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, VqaShapError) else str(exc)
            log.warning("mask-bench: %s: %s", attr.qid, reason)
            q_rows = error_rows(attr, question, reason, options)
        if cached is not None:
            atomic_write_json(cached, [r.to_row() for r in q_rows])
        rows += q_rows
    if n_failed:
        log.warning("mask-bench: %d of %d questions failed (see the error column)", n_failed, len(attributions))
    return rows


# --------------------------------------------------------------------------------------------
# summaries
