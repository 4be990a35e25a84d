"""The Arrow schemas of vqa-shap, declared once, and the typed records that cross modules.

Two datasets flow through the toolkit (documented in docs/schemas.md):

* the **questions** dataset — one row per multiple-choice question, the same schema for every
  benchmark and variant (:data:`QUESTION_FEATURES`, :class:`Question`);
* the **attributions** dataset — one row per explained question (:data:`ATTRIBUTION_FEATURES`,
  :class:`Attribution`).

The ``datasets.Features`` objects are built lazily (``datasets`` is a heavy import); use
:func:`question_features` / :func:`attribution_features`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

#: Column order of the questions dataset.
QUESTION_COLUMNS = (
    "qid", "benchmark", "task", "question", "options", "answer", "inputs", "variant",
    "option_origin", "extra",
)

#: The kinds a visual input can have.
INPUT_KINDS = ("video", "image", "frames")

#: Feature modalities, in the paper's player order.
MODALITIES = ("video", "question", "answer")

#: Column order of the attributions dataset.
ATTRIBUTION_COLUMNS = (
    "qid", "benchmark", "task", "variant", "model", "loader", "protocol", "features", "shapley",
    "stderr", "relative_error", "value_full", "value_empty", "answer", "prediction", "estimator", "budget",
    "evaluations", "seed", "runtime_s", "version", "error",
)




@dataclass(frozen=True)
class VisualInput:
    """One visual input of a question (a video window, a single image, or a frame folder).

    Attributes:
        kind: ``"video"``, ``"image"`` or ``"frames"`` (a folder of numbered frames).
        path: path relative to the video root given at run time.
        start: window start in seconds, or ``None`` for the start of the file.
        end: window end in seconds, or ``None`` for the end of the file.
        time: for images, the time (s) in the source video the image was taken at.
        fps: frame rate of a frame folder (or a known source rate), else ``None``.
        label: how prompts name the input, e.g. ``"video 1"``, ``"image 1"``.
    """

    kind: str
    path: str
    start: float | None = None
    end: float | None = None
    time: float | None = None
    fps: float | None = None
    label: str = "video 1"

    def __post_init__(self):
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"VisualInput.kind must be one of {INPUT_KINDS}, got {self.kind!r}")

    def to_row(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "path": self.path, "start": self.start, "end": self.end,
            "time": self.time, "fps": self.fps, "label": self.label,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "VisualInput":
        return cls(**{k: row.get(k) for k in ("kind", "path", "start", "end", "time", "fps")},
                   label=row.get("label") or "video 1")


@dataclass(frozen=True)
class OptionOrigin:
    """Where an option came from: question ``qid``'s option ``index`` (its own for originals)."""

    qid: str
    index: int


@dataclass(frozen=True)
class Question:
    """One row of the questions dataset, typed.

    Text is verbatim from the source; normalisation belongs to the protocol.
    ``extra`` holds benchmark-specific fields losslessly (stored as a JSON string).
    ``answer`` is ``None`` when the source publishes no answer (EgoSchema's questions outside its
    500-question answered subset): such a question can be explained (φ covers every option), and
    whatever needs the ground truth skips it and says how many it skipped (:func:`known_answers`).
    """

    qid: str
    benchmark: str
    task: str
    question: str
    options: tuple[str, ...]
    answer: int | None
    inputs: tuple[VisualInput, ...] = ()
    variant: str = "original"
    option_origin: tuple[OptionOrigin, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not self.option_origin:
            origin = tuple(OptionOrigin(self.qid, i) for i in range(len(self.options)))
            object.__setattr__(self, "option_origin", origin)
        else:
            object.__setattr__(self, "option_origin", tuple(self.option_origin))

    @property
    def n_options(self) -> int:
        return len(self.options)

    def problem(self) -> tuple[str, str] | None:
        """Why this question cannot be explained, as ``(field, reason)``, or ``None`` when it can.

        A question needs text, at least 2 non-empty options and an answer index among them, or an
        unknown (``None``) answer (checked when a questions config is loaded, so a hand-made dataset
        fails with the row named).
        """
        if not isinstance(self.question, str) or not self.question.strip():
            return "question", "empty question text"
        if len(self.options) < 2:
            return "options", f"a question needs at least 2 options, got {len(self.options)}"
        empty = next((i for i, o in enumerate(self.options) if not isinstance(o, str) or not o.strip()), None)
        if empty is not None:
            return "options", f"option {empty} is empty"
        if self.answer is not None and not 0 <= self.answer < len(self.options):
            return "answer", f"answer index {self.answer} is out of range for {len(self.options)} options"
        return None

    def to_row(self) -> dict[str, Any]:
        """The row as stored in the questions dataset."""
        return {
            "qid": self.qid,
            "benchmark": self.benchmark,
            "task": self.task,
            "question": self.question,
            "options": list(self.options),
            "answer": _opt_int(self.answer),
            "inputs": [i.to_row() for i in self.inputs],
            "variant": self.variant,
            "option_origin": [{"qid": o.qid, "index": int(o.index)} for o in self.option_origin],
            "extra": json.dumps(dict(self.extra), ensure_ascii=False, sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Question":
        """Build a :class:`Question` from a questions-dataset row (dict)."""
        extra = row.get("extra") or "{}"
        return cls(
            qid=row["qid"],
            benchmark=row["benchmark"],
            task=row["task"],
            question=row["question"],
            options=tuple(row["options"]),
            answer=_opt_int(row["answer"]),
            inputs=tuple(VisualInput.from_row(i) for i in row.get("inputs") or ()),
            variant=row.get("variant") or "original",
            option_origin=tuple(OptionOrigin(o["qid"], int(o["index"]))
                                for o in row.get("option_origin") or ()),
            extra=json.loads(extra) if isinstance(extra, str) else dict(extra),
        )


@dataclass(frozen=True)
class Feature:
    """One player of a question's Shapley game.

    Attributes:
        name: the paper's element name (``frame_3``, a word, a tag).
        modality: ``"video"``, ``"question"`` or ``"answer"``.
        option: option index for answer words, else -1.
        input: visual input index for frames, else -1.
        time: frame timestamp in seconds (frames only), else ``None``.
    """

    name: str
    modality: str
    option: int = -1
    input: int = -1
    time: float | None = None

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"Feature.modality must be one of {MODALITIES}, got {self.modality!r}")

    def to_row(self) -> dict[str, Any]:
        return {"name": self.name, "modality": self.modality, "option": int(self.option),
                "input": int(self.input), "time": self.time}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Feature":
        return cls(row["name"], row["modality"], int(row["option"]), int(row["input"]), row.get("time"))


def config_name(benchmark: str, variant: str = "original") -> str:
    """The Hub config name of a questions config: ``<benchmark>`` or ``<benchmark>_<variant>``."""
    return benchmark if variant in ("original", "", None) else f"{benchmark}_{variant}"


def questions_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[Question]:
    """Typed questions from dataset rows."""
    return [Question.from_row(r) for r in rows]


def known_answers(records: Sequence[Any], what: str = "") -> tuple[list[Any], int]:
    """``(records with a known answer, how many have none)`` for a consumer that needs the ground
    truth (metrics, variants, the paper's CSV, …); with ``what`` it logs one line saying how many
    it skipped (``"<n> question(s) without a known answer skipped: <what>"``)."""
    known = [r for r in records if r.answer is not None]
    unknown = len(records) - len(known)
    if unknown and what:
        import logging

        logging.getLogger("vqa_shap").warning("%d question(s) without a known answer skipped: %s", unknown, what)
    return known, unknown


class UnknownAnswerError(ValueError):
    """A step that needs the ground truth met a question whose answer the source does not publish."""


def require_answer(record: Any, purpose: str) -> int:
    """``record.answer`` (a :class:`Question` or :class:`Attribution`), or :class:`UnknownAnswerError`
    naming the question and what needed the answer (a per-question error, never a silent skip)."""
    if record.answer is None:
        raise UnknownAnswerError(f"question {record.qid!r} has no known answer: {purpose} needs the ground truth")
    return int(record.answer)


def _matrix(value: Any, name: str) -> "Any":
    """A read-only float64 F×K array from nested sequences (or ``None``)."""
    import numpy as np

    if value is None:
        return None
    arr = np.array(value, dtype=np.float64)
    if arr.size == 0:
        arr = arr.reshape(0, 0)
    if arr.ndim != 2:
        raise ValueError(f"Attribution.{name} must be a 2-D F×K matrix, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


def _floats(value: Any) -> tuple[float, ...] | None:
    return None if value is None else tuple(float(v) for v in value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, eq=False)
class Attribution:
    """One row of the attributions dataset (one explained question), typed.

    ``shapley`` and ``stderr`` are read-only ``numpy.float64`` arrays of shape F×K (features ×
    option scores); the constructor accepts nested sequences too. Rows with ``error`` set may
    have no features and an empty (0×0) ``shapley``. Equality compares every field (arrays by
    value); records are not hashable.

    Attributes:
        qid, benchmark, task, variant: copied from the question.
        model: checkpoint id (or the paper's model tag for imported tables).
        loader: loader family that produced the scores.
        protocol: protocol name (``"pollard2025"``).
        features: the F players in order.
        shapley: φ[F][K].
        stderr: estimator standard error per value, or ``None`` when the estimator has none.
        value_full, value_empty: the K scores with every feature kept / masked, or ``None``
            when unknown (e.g. imported tables).
        answer: index of the correct option, or ``None`` when the source publishes none (see
            :class:`Question`; :func:`known_answers`).
        prediction: the model's choice on the unmasked input, or ``None`` when unknown.
        estimator, budget, evaluations, seed: how φ was estimated (``estimator``: the member run, e.g.
            ``"auto/kernel"`` for the default).
        runtime_s: wall time of the question, or ``None``.
        version: vqa-shap version that wrote the row.
        error: ``None``, or why the question could not be explained.
        relative_error: the estimator's estimated relative L2 error of the chosen option's values
            (:func:`vqa_shap.estimators.base.relative_error`; 0 for exact values), or ``None`` when
            it has no standard errors (or the row predates the column).
    """

    qid: str
    benchmark: str
    task: str
    variant: str
    model: str
    loader: str
    protocol: str
    features: tuple[Feature, ...]
    shapley: Any
    stderr: Any = None
    value_full: tuple[float, ...] | None = None
    value_empty: tuple[float, ...] | None = None
    answer: int | None = None
    prediction: int | None = None
    estimator: str = ""
    budget: int = 0
    evaluations: int = 0
    seed: int | None = None
    runtime_s: float | None = None
    version: str = ""
    error: str | None = None
    relative_error: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        shapley = _matrix(self.shapley, "shapley")
        if shapley is None:
            shapley = _matrix([], "shapley")
        object.__setattr__(self, "shapley", shapley)
        stderr = _matrix(self.stderr, "stderr")
        if stderr is not None and stderr.size == 0 and shapley.size:
            stderr = None
        object.__setattr__(self, "stderr", stderr)
        object.__setattr__(self, "value_full", _floats(self.value_full))
        object.__setattr__(self, "value_empty", _floats(self.value_empty))
        if self.error is None:
            if shapley.shape[0] != len(self.features):
                raise ValueError(f"Attribution {self.qid!r}: shapley has {shapley.shape[0]} rows "
                                 f"but there are {len(self.features)} features")
            if stderr is not None and stderr.shape != shapley.shape:
                raise ValueError(f"Attribution {self.qid!r}: stderr shape {stderr.shape} != "
                                 f"shapley shape {shapley.shape}")
            if shapley.size and self.answer is not None and not 0 <= self.answer < shapley.shape[1]:
                raise ValueError(f"Attribution {self.qid!r}: answer {self.answer} is not one of the "
                                 f"{shapley.shape[1]} options")

    @property
    def n_features(self) -> int:
        """F, the number of players."""
        return len(self.features)

    @property
    def n_options(self) -> int:
        """K, the number of option scores (columns of ``shapley``)."""
        return int(self.shapley.shape[1])

    def modality_mask(self, modality: str) -> Any:
        """Boolean mask over the features of one modality (``video``/``question``/``answer``)."""
        import numpy as np

        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        return np.array([f.modality == modality for f in self.features], dtype=bool)

    def to_row(self) -> dict[str, Any]:
        """The row as stored in the attributions dataset."""
        return {
            "qid": self.qid,
            "benchmark": self.benchmark,
            "task": self.task,
            "variant": self.variant,
            "model": self.model,
            "loader": self.loader,
            "protocol": self.protocol,
            "features": [f.to_row() for f in self.features],
            "shapley": self.shapley.tolist() if self.shapley.size else [],
            "stderr": None if self.stderr is None else self.stderr.tolist(),
            "relative_error": None if self.relative_error is None else float(self.relative_error),
            "value_full": None if self.value_full is None else list(self.value_full),
            "value_empty": None if self.value_empty is None else list(self.value_empty),
            "answer": _opt_int(self.answer),
            "prediction": _opt_int(self.prediction),
            "estimator": self.estimator,
            "budget": int(self.budget),
            "evaluations": int(self.evaluations),
            "seed": _opt_int(self.seed),
            "runtime_s": None if self.runtime_s is None else float(self.runtime_s),
            "version": self.version,
            "error": self.error,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Attribution":
        """Build an :class:`Attribution` from an attributions-dataset row (dict)."""
        return cls(
            qid=row["qid"],
            benchmark=row["benchmark"],
            task=row["task"],
            variant=row.get("variant") or "original",
            model=row["model"],
            loader=row.get("loader") or "",
            protocol=row.get("protocol") or "",
            features=tuple(Feature.from_row(f) for f in row.get("features") or ()),
            shapley=[] if row.get("shapley") is None else row["shapley"],
            stderr=row.get("stderr"),
            relative_error=row.get("relative_error"),
            value_full=row.get("value_full"),
            value_empty=row.get("value_empty"),
            answer=_opt_int(row["answer"]),
            prediction=_opt_int(row.get("prediction")),
            estimator=row.get("estimator") or "",
            budget=int(row.get("budget") or 0),
            evaluations=int(row.get("evaluations") or 0),
            seed=_opt_int(row.get("seed")),
            runtime_s=row.get("runtime_s"),
            version=row.get("version") or "",
            error=row.get("error"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attribution):
            return NotImplemented
        return self.to_row() == other.to_row()

    __hash__ = None  # type: ignore[assignment]
