"""The Arrow schemas of vqa-shap, declared once, and the typed records that cross modules.

Two datasets flow through the toolkit (see DESIGN.md):

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
from functools import lru_cache
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
    "stderr", "value_full", "value_empty", "answer", "prediction", "estimator", "budget",
    "evaluations", "seed", "runtime_s", "version", "error",
)


@lru_cache(maxsize=None)
def question_features():
    """The ``datasets.Features`` of the questions dataset."""
    from datasets import Features, List, Value

    return Features(
        {
            "qid": Value("string"),
            "benchmark": Value("string"),
            "task": Value("string"),
            "question": Value("string"),
            "options": List(Value("string")),
            "answer": Value("int32"),
            "inputs": List(
                {
                    "kind": Value("string"),
                    "path": Value("string"),
                    "start": Value("float64"),
                    "end": Value("float64"),
                    "time": Value("float64"),
                    "fps": Value("float64"),
                    "label": Value("string"),
                }
            ),
            "variant": Value("string"),
            "option_origin": List({"qid": Value("string"), "index": Value("int32")}),
            "extra": Value("string"),
        }
    )


@lru_cache(maxsize=None)
def attribution_features():
    """The ``datasets.Features`` of the attributions dataset."""
    from datasets import Features, List, Value

    return Features(
        {
            "qid": Value("string"),
            "benchmark": Value("string"),
            "task": Value("string"),
            "variant": Value("string"),
            "model": Value("string"),
            "loader": Value("string"),
            "protocol": Value("string"),
            "features": List(
                {
                    "name": Value("string"),
                    "modality": Value("string"),
                    "option": Value("int32"),
                    "input": Value("int32"),
                    "time": Value("float64"),
                }
            ),
            "shapley": List(List(Value("float32"))),
            "stderr": List(List(Value("float32"))),
            "value_full": List(Value("float32")),
            "value_empty": List(Value("float32")),
            "answer": Value("int32"),
            "prediction": Value("int32"),
            "estimator": Value("string"),
            "budget": Value("int64"),
            "evaluations": Value("int64"),
            "seed": Value("int64"),
            "runtime_s": Value("float64"),
            "version": Value("string"),
            "error": Value("string"),
        }
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
    """

    qid: str
    benchmark: str
    task: str
    question: str
    options: tuple[str, ...]
    answer: int
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

    def to_row(self) -> dict[str, Any]:
        """The row as stored in the questions dataset."""
        return {
            "qid": self.qid,
            "benchmark": self.benchmark,
            "task": self.task,
            "question": self.question,
            "options": list(self.options),
            "answer": int(self.answer),
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
            answer=int(row["answer"]),
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
