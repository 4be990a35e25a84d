"""The paper's masking benchmark (SEED_SPEC.md §7), run through the model loaders.

For every explained question the model is evaluated once per *masking setting*:

* ``nothing``: the unmasked input;
* ``everything`` × mode: every eligible feature of the mode masked;
* ``positive`` / ``negative`` × signal × mode: Shapley-guided masking. The signal per feature is the
  normalised Shapley value ψ (each option column divided by its max |φ|, :mod:`vqa_shap.analysis.metrics`) of
  the ground-truth column (``ground_truth``), the mean over the other columns (``false``) or over all
  columns (``all``). ``negative`` *keeps* features whose signal is ``> threshold`` — so it masks
  negative features **and exact zeros**, as the paper does; ``positive`` keeps features whose signal
  is ``< threshold`` (masks positive features and exact zeros).

Modes say which features are eligible for masking (the rest are always kept):
``video`` = frames, ``question`` = question words, ``answer`` = the words of every option (or only
the ground-truth option's words with ``answer_masking="gt"``), and ``joint`` = **all features
eligible**. ``joint`` is the paper's intent (its benchmark tables print it as "All" and its shipped
default results imply it) although its released code builds the answer-only mask for ``joint``;
with ``answer_masking="gt"`` our ``joint`` makes video, question and the ground-truth option's words
eligible.

All settings of one question are coalitions over the same features, so they are scored in **one**
``loader.score`` batch. ``force_logit`` (``"first"``/``"last"``) moves the ground-truth option's text
to the first/last position before the question is prepared (the other options keep their relative
order, and the label becomes 0 / K−1); masks are computed in the original order and mapped onto the
reordered features.

The output is tidy: one :class:`MaskBenchRow` per question × setting; :func:`summarize` gives the
accuracy per setting and its difference to ``nothing``; :func:`paper_json` the paper's benchmark
JSON layout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from vqa_shap.errors import VqaShapError
from vqa_shap.schema import Attribution, Feature, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol import FramePlan, Protocol

log = logging.getLogger(__name__)

#: Shapley signals, in the paper's order (SEED_SPEC.md §7).
SIGNALS = ("ground_truth", "false", "all")
#: Masking modes, in the paper's order.
MODES = ("joint", "video", "question", "answer")
#: Which answer words the ``answer`` (and ``joint``) modes may mask.
ANSWER_MASKINGS = ("all", "gt")
#: Where ``force_logit`` moves the ground-truth option.
FORCE_LOGITS = ("first", "last")
#: The four kinds of setting.
SETTING_KINDS = ("nothing", "everything", "positive", "negative")


class MaskBenchError(VqaShapError):
    """A question cannot be run through the masking benchmark (the message says why)."""


@dataclass(frozen=True)
class MaskSetting:
    """One masking configuration.

    Attributes:
        setting: ``nothing``, ``everything``, ``positive`` or ``negative``.
        signal: ``ground_truth``, ``false`` or ``all`` for positive/negative, else ``None``.
        mode: ``joint``, ``video``, ``question`` or ``answer``; ``None`` for ``nothing``.
    """

    setting: str
    signal: str | None = None
    mode: str | None = None

    def __post_init__(self):
        if self.setting not in SETTING_KINDS:
            raise ValueError(f"setting must be one of {SETTING_KINDS}, got {self.setting!r}")
        needs_signal = self.setting in ("positive", "negative")
        if needs_signal != (self.signal is not None) or (needs_signal and self.signal not in SIGNALS):
            raise ValueError(f"{self.setting!r} takes a signal in {SIGNALS} only for positive/negative, "
                             f"got {self.signal!r}")
        if (self.setting == "nothing") != (self.mode is None) or (
                self.mode is not None and self.mode not in MODES):
            raise ValueError(f"{self.setting!r} needs a mode in {MODES} (none for 'nothing'), got {self.mode!r}")

    @property
    def key(self) -> str:
        """``setting[/signal]/mode``, e.g. ``negative/ground_truth/joint``."""
        return "/".join(p for p in (self.setting, self.signal, self.mode) if p is not None)


def mask_settings() -> tuple[MaskSetting, ...]:
    """All 29 settings in the paper's order: nothing; everything × mode; positive, negative × signal × mode."""
    out = [MaskSetting("nothing")]
    out += [MaskSetting("everything", None, m) for m in MODES]
    for kind in ("positive", "negative"):
        out += [MaskSetting(kind, s, m) for s in SIGNALS for m in MODES]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# mask construction (pure)


def normalised_shapley(shapley: np.ndarray) -> np.ndarray:
    """ψ = φ / max|φ| per option column (SEED_SPEC.md §6.2), via :mod:`vqa_shap.analysis.metrics`."""
    from vqa_shap.analysis import metrics

    return np.asarray(metrics.normalise_columns(np.asarray(shapley, dtype=np.float64)))


def signal_values(psi: np.ndarray, answer: int, signal: str) -> np.ndarray:
    """The per-feature metric of a Shapley signal from normalised values ψ (F×K).

    ``ground_truth`` = ψ of the GT column, ``false`` = mean of the other columns (zeros with a
    single option), ``all`` = mean of all columns — :func:`vqa_shap.analysis.metrics.signal_weights`.
    """
    from vqa_shap.analysis import metrics

    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    psi = np.asarray(psi, dtype=np.float64)
    return psi @ metrics.signal_weights(psi.shape[1], answer)[:, SIGNALS.index(signal)]


def eligible_features(features: Sequence[Feature], mode: str, answer: int,
                      answer_masking: str = "all") -> np.ndarray:
    """Which features a mode may mask (bool[F]); the others are always kept.

    ``joint`` makes every feature eligible (with ``answer_masking="gt"`` only the ground-truth
    option's answer words among the answer words).
    """
    if answer_masking not in ANSWER_MASKINGS:
        raise ValueError(f"answer_masking must be one of {ANSWER_MASKINGS}, got {answer_masking!r}")
    modality = np.array([f.modality for f in features])
    option = np.array([f.option for f in features], dtype=np.int64)
    answer_words = modality == "answer"
    if answer_masking == "gt":
        answer_words &= option == answer
    if mode == "joint":
        return (modality != "answer") | answer_words
    if mode in ("video", "question"):
        return modality == mode
    if mode == "answer":
        return answer_words
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def keep_mask(setting: MaskSetting, features: Sequence[Feature], psi: np.ndarray, answer: int, *,
              threshold: float = 0.0, answer_masking: str = "all") -> np.ndarray:
    """The coalition (bool[F], True = keep) of one masking setting (SEED_SPEC.md §7).

    Args:
        setting: the masking setting.
        features: the question's players, in order.
        psi: normalised Shapley values F×K (:func:`normalised_shapley`).
        answer: the ground-truth option index (original order).
        threshold: the signal threshold (paper: 0).
        answer_masking: ``all`` or ``gt`` (see :func:`eligible_features`).
    """
    n = len(features)
    if setting.setting == "nothing":
        return np.ones(n, dtype=bool)
    if setting.setting == "everything":
        keep = np.zeros(n, dtype=bool)
    else:
        metric = signal_values(psi, answer, setting.signal)
        keep = metric > threshold if setting.setting == "negative" else metric < threshold
    return keep | ~eligible_features(features, setting.mode, answer, answer_masking)


def keep_matrix(settings: Sequence[MaskSetting], features: Sequence[Feature], shapley: np.ndarray,
                answer: int, *, threshold: float = 0.0, answer_masking: str = "all") -> np.ndarray:
    """All settings' coalitions as one bool[S, F] matrix (rows in ``settings`` order)."""
    shapley = np.asarray(shapley, dtype=np.float64)
    if shapley.shape[0] != len(features):
        raise MaskBenchError(f"shapley has {shapley.shape[0]} rows but there are {len(features)} features")
    psi = normalised_shapley(shapley)
    return np.stack([keep_mask(s, features, psi, answer, threshold=threshold,
                               answer_masking=answer_masking) for s in settings])


# --------------------------------------------------------------------------------------------
# force_logit: reorder the options, map the masks


def forced_order(n_options: int, answer: int, force_logit: str) -> tuple[int, ...]:
    """The new option order: position j shows original option ``order[j]``.

    The ground-truth option is moved to the first (``"first"``) or last (``"last"``) position; the
    others keep their relative order.
    """
    if force_logit not in FORCE_LOGITS:
        raise ValueError(f"force_logit must be one of {FORCE_LOGITS}, got {force_logit!r}")
    rest = [i for i in range(n_options) if i != answer]
    return tuple([answer] + rest if force_logit == "first" else rest + [answer])


def reorder_options(question: Question, order: Sequence[int]) -> Question:
    """``question`` with its options (and their origins) shown in ``order``; the answer follows its text."""
    order = tuple(int(i) for i in order)
    if sorted(order) != list(range(question.n_options)):
        raise ValueError(f"{order} is not a permutation of the {question.n_options} options")
    return dataclasses.replace(
        question,
        options=tuple(question.options[i] for i in order),
        answer=order.index(question.answer),
        option_origin=tuple(question.option_origin[i] for i in order),
    )


def feature_index_map(features: Sequence[Feature], order: Sequence[int]) -> np.ndarray:
    """For each feature of the reordered question, the index of the same feature in ``features``.

    Frames and question words stay in place; option ``order[j]``'s words move to block j.
    ``keep_reordered = keep_original[..., index_map]``.
    """
    option = np.array([f.option if f.modality == "answer" else -1 for f in features], dtype=np.int64)
    non_answer = np.flatnonzero(option < 0)
    blocks = [np.flatnonzero(option == o) for o in order]
    answer_at = np.flatnonzero(option >= 0)
    if answer_at.size and (option[answer_at[0]:] < 0).any():
        raise MaskBenchError("answer words must follow the frames and question words")
    return np.concatenate([non_answer, *blocks]).astype(np.int64)


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
    """

    answer_masking: str = "all"
    force_logit: str | None = None
    threshold: float = 0.0
    settings: tuple[MaskSetting, ...] = dataclasses.field(default_factory=mask_settings)
    sampler: str | None = None

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


def load_attributions(folder: Path | str, config: str) -> list[Attribution]:
    """The typed rows of one attributions config of a Hub-style folder.

    Raises:
        VqaShapError: the folder/config does not exist or is not an attributions dataset.
    """
    from vqa_shap import hub

    dataset = hub.load_config(folder, config)
    missing = [c for c in ("qid", "model", "shapley", "features", "answer") if c not in dataset.column_names]
    if missing:
        raise VqaShapError(f"{folder}: config {config!r} is not an attributions dataset (no column(s) {missing})")
    return [Attribution.from_row(r) for r in dataset]


def frame_count(attributions: Iterable[Attribution], temporal_unit: int = 1) -> int:
    """The frame count to plan with: the largest number of video players × temporal unit.

    Questions with short windows get fewer frames than requested, so the maximum over the rows
    recovers the ``--frames`` the attributions were computed with (checked per question by
    :func:`plan_for_attribution`).
    """
    counts = [sum(f.modality == "video" for f in a.features) for a in attributions if a.error is None]
    return max(counts, default=0) * int(temporal_unit)


def attribution_settings(folder: Path | str, config: str) -> dict[str, Any]:
    """The settings an attributions config's card records (``model``, ``n_frames``, ``sampler``,
    ``questions_config``, …, as written by ``vqa-shap explain``); ``{}`` when the card has none."""
    from vqa_shap import hub

    return hub.config_vars(folder, config)


def temporal_unit_of(features: Sequence[Feature]) -> int:
    """Frames per video player, read from the player names (``frame_<i>-<j>`` groups; 1 otherwise)."""
    unit = 1
    for f in features:
        match = re.fullmatch(r"frame_(\d+)-(\d+)", f.name) if f.modality == "video" else None
        if match:
            unit = max(unit, int(match.group(2)) - int(match.group(1)) + 1)
    return unit


def plan_for_attribution(protocol: "Protocol", question: Question, attribution: Attribution,
                         video_root: Path | str, n_frames: int, *, loader_family: str | None,
                         temporal_unit: int = 1, sampler: str | None = None,
                         ) -> "tuple[FramePlan, tuple[Feature, ...]]":
    """Re-plan the frames an attribution was computed on and check its players match.

    ``n_frames``, ``sampler`` and ``loader_family`` must be those the attribution was computed with.

    Returns:
        ``(plan, features)`` with ``features = protocol.features(question, plan, temporal_unit)``.

    Raises:
        MaskBenchError: the protocol's players differ from the attribution's (names, modalities
            or frame times), e.g. another frame count or sampler was used.
    """
    plan = protocol.plan_frames(question, Path(video_root), n_frames, sampler=sampler, loader_family=loader_family)
    features = tuple(protocol.features(question, plan, temporal_unit))
    check_features(features, attribution.features, what=f"question {question.qid!r}")
    return plan, features


def check_features(ours: Sequence[Feature], theirs: Sequence[Feature], *, what: str,
                   same_options: bool = True) -> None:
    """Raise :class:`MaskBenchError` unless two player lists agree (name, modality, frame time, and
    the option index of answer words unless ``same_options`` is false)."""
    if len(ours) != len(theirs):
        raise MaskBenchError(f"{what}: the protocol gives {len(ours)} features but the attribution has "
                             f"{len(theirs)} (another --frames or loader?)")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        same_time = (a.time is None or b.time is None) or abs(float(a.time) - float(b.time)) < 1e-6
        same_option = a.option == b.option or not same_options
        if (a.name, a.modality) != (b.name, b.modality) or not same_time or not same_option:
            raise MaskBenchError(f"{what}: feature {i} differs: protocol {a.name!r} ({a.modality}, "
                                 f"option {a.option}, t={a.time}) vs attribution {b.name!r} ({b.modality}, "
                                 f"option {b.option}, t={b.time})")


# --------------------------------------------------------------------------------------------
# running


def evaluate_question(attribution: Attribution, question: Question, loader: Any, protocol: "Protocol",
                      video_root: Path | str, n_frames: int,
                      options: MaskBenchOptions = MaskBenchOptions()) -> list[MaskBenchRow]:
    """Run every setting of ``options`` on one question in a single ``loader.score`` batch.

    Raises:
        MaskBenchError: the attribution and the question/protocol do not fit together.
        VqaShapError: video or loader errors (missing video, too many options, ...).
    """
    if attribution.error is not None:
        raise MaskBenchError(f"the attribution has an error: {attribution.error}")
    if question.answer != attribution.answer:
        raise MaskBenchError(f"answer differs: question {question.answer} vs attribution {attribution.answer}")
    plan, features = plan_for_attribution(protocol, question, attribution, video_root, n_frames,
                                          loader_family=loader.family, temporal_unit=loader.temporal_unit,
                                          sampler=options.sampler)
    keep = keep_matrix(options.settings, features, attribution.shapley, question.answer,
                       threshold=options.threshold, answer_masking=options.answer_masking)
    shown, label = question, question.answer
    if options.force_logit:
        order = forced_order(question.n_options, question.answer, options.force_logit)
        shown = reorder_options(question, order)
        label = shown.answer
        index_map = feature_index_map(features, order)
        moved = tuple(protocol.features(shown, plan, loader.temporal_unit))
        check_features(moved, [features[i] for i in index_map], what=f"reordered question {question.qid!r}",
                       same_options=False)
        keep = keep[:, index_map]
    frames = protocol.load_frames(shown, Path(video_root), plan)
    prepared = loader.prepare(shown, frames, plan, protocol)
    scores = np.asarray(loader.score(prepared, keep), dtype=np.float64)
    if scores.shape[0] != keep.shape[0]:
        raise MaskBenchError(f"loader returned {scores.shape[0]} score rows for {keep.shape[0]} coalitions")
    preds = scores.argmax(axis=1)  # ties -> lowest index, as torch.argmax in the paper
    return [
        _row(attribution, question, s, label, options, prediction=int(p), n_masked=int((~k).sum()),
             n_features=len(features))
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
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(settings))
    os.replace(tmp, path)


def _safe_name(qid: str) -> str:
    # readable and collision-free: qids "a/b" and "a_b" get different digests
    digest = hashlib.sha1(qid.encode("utf-8")).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', qid)[:80]}-{digest}"


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
        })
    rows: list[MaskBenchRow] = []
    n_failed = 0
    for attr in tqdm(attributions, desc="mask-bench", unit="q", disable=not progress):
        cached = work / f"{_safe_name(attr.qid)}.json" if work is not None else None
        if cached is not None and cached.exists():
            rows += [MaskBenchRow.from_row(r) for r in json.loads(cached.read_text())]
            continue
        question = questions.get(attr.qid)
        try:
            if question is None:
                raise MaskBenchError(f"question {attr.qid!r} is not in the questions dataset")
            q_rows = evaluate_question(attr, question, loader, protocol, video_root, n_frames, options)
        except Exception as exc:  # noqa: BLE001 - recorded per question, the run goes on
            n_failed += 1
            reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, VqaShapError) else str(exc)
            log.warning("mask-bench: %s: %s", attr.qid, reason)
            q_rows = error_rows(attr, question, reason, options)
        if cached is not None:
            tmp = cached.with_suffix(".json.tmp")
            tmp.write_text(json.dumps([r.to_row() for r in q_rows]))
            os.replace(tmp, cached)
        rows += q_rows
    if n_failed:
        log.warning("mask-bench: %d of %d questions failed (see the error column)", n_failed, len(attributions))
    return rows


# --------------------------------------------------------------------------------------------
# summaries


@dataclass(frozen=True)
class SettingAccuracy:
    """Accuracy of one setting over the questions that ran, and its difference to ``nothing``."""

    setting: str
    signal: str | None
    mode: str | None
    n_questions: int
    n_errors: int
    accuracy: float | None
    diff: float | None

    @property
    def key(self) -> str:
        return MaskSetting(self.setting, self.signal, self.mode).key


def summarize(rows: Sequence[MaskBenchRow]) -> list[SettingAccuracy]:
    """Accuracy per setting (settings in first-seen order) and the difference to ``nothing``.

    Questions with an error are excluded and counted in ``n_errors``.
    """
    by_key: dict[tuple, list[MaskBenchRow]] = {}
    for r in rows:
        by_key.setdefault((r.setting, r.signal, r.mode), []).append(r)
    accs: dict[tuple, float | None] = {}
    for k, rs in by_key.items():
        ok = [r.correct for r in rs if r.error is None]
        accs[k] = float(np.mean(ok)) if ok else None
    base = accs.get(("nothing", None, None))
    out = []
    for k, rs in by_key.items():
        n_err = sum(r.error is not None for r in rs)
        acc = accs[k]
        diff = None if acc is None or base is None else acc - base
        out.append(SettingAccuracy(*k, n_questions=len(rs) - n_err, n_errors=n_err, accuracy=acc, diff=diff))
    return out


def paper_json(rows: Sequence[MaskBenchRow]) -> dict[str, Any]:
    """The paper's benchmark JSON layout (SEED_SPEC.md §7) from tidy rows.

    ``{"nothing": {"preds", "accuracy"}, "everything": {mode: ...}, "positive": {signal: {mode: ...}},
    "negative": ...}``; preds follow the question order of ``rows`` (``null`` for failed questions,
    which the accuracy excludes).
    """
    out: dict[str, Any] = {}
    by_key: dict[tuple, list[MaskBenchRow]] = {}
    for r in rows:
        by_key.setdefault((r.setting, r.signal, r.mode), []).append(r)
    for (setting, signal, mode), rs in by_key.items():
        ok = [r.correct for r in rs if r.error is None]
        entry = {"preds": [r.prediction for r in rs], "accuracy": float(np.mean(ok)) if ok else None}
        if setting == "nothing":
            out["nothing"] = entry
        elif setting == "everything":
            out.setdefault("everything", {})[mode] = entry
        else:
            out.setdefault(setting, {}).setdefault(signal, {})[mode] = entry
    return out


def format_table(summary: Sequence[SettingAccuracy]) -> str:
    """A plain-text table: accuracy per setting and the difference to ``nothing`` (signed, in points)."""
    lines = [f"{'setting':<38} {'n':>4} {'err':>4} {'acc':>7} {'vs nothing':>11}"]
    for s in summary:
        acc = "-" if s.accuracy is None else f"{s.accuracy:.3f}"
        diff = "" if s.setting == "nothing" else ("-" if s.diff is None else f"{100 * s.diff:+.1f} pt")
        lines.append(f"{s.key:<38} {s.n_questions:>4} {s.n_errors:>4} {acc:>7} {diff:>11}")
    return "\n".join(lines)


def format_matrix(summary: Sequence[SettingAccuracy]) -> str:
    """The paper's benchmark table layout: accuracy difference to ``nothing`` (points), rows
    everything / positive × signal / negative × signal, columns the modes (``joint`` = all features)."""
    by = {(s.setting, s.signal, s.mode): s for s in summary}
    base = by.get(("nothing", None, None))
    head = "nothing: " + ("-" if base is None or base.accuracy is None else
                          f"accuracy {base.accuracy:.3f} over {base.n_questions} questions")
    lines = [head, f"{'Δ accuracy (pt)':<26}" + "".join(f"{m:>10}" for m in MODES)]
    row_keys = [("everything", None)] + [(k, sig) for k in ("positive", "negative") for sig in SIGNALS]
    for kind, sig in row_keys:
        cells = []
        for m in MODES:
            s = by.get((kind, sig, m))
            cells.append(f"{'':>10}" if s is None else f"{'-' if s.diff is None else f'{100 * s.diff:+.1f}':>10}")
        if any(c.strip() for c in cells):
            lines.append(f"{kind + ('/' + sig if sig else ''):<26}" + "".join(cells))
    return "\n".join(lines)

