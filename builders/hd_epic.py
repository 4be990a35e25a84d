"""HD-EPIC VQA (``hd-epic-annotations`` layout).

Source folder: one ``<question type>.json`` per type, each ``{q_uid: record}`` with
``record = {inputs, question, choices, correct_idx}``. Every ``*.json`` whose *name* contains neither
``question`` nor ``subset_answers`` is read, in sorted path order (the paper uses glob order, which
is file-system dependent; sorting makes builds reproducible and does not change any question).

* ``task`` = the question type = ``'_'.join(q_uid.split('_')[:-1])``.
* ``options`` = ``choices``; a list-valued choice (``ingredient_ingredients_order``) is joined with
  ``", "``, as the paper does.
* ``inputs``: one :class:`VisualInput` per input key, in the record's order, labelled by the key
  (``"video 1"``, ``"image 1"``). Videos are ``<participant>/<id>.mp4`` (participant =
  ``id.split('-')[0]``) with ``start``/``end`` in exact seconds from ``start_time``/``end_time``
  (``None`` when absent); images point at the same video file with ``time`` in seconds.
* ``<TIME …>`` / ``<BBOX …>`` tags stay verbatim in the question; the raw ``inputs`` object is kept in
  ``extra`` so nothing is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vqa_shap.builders.base import Builder, RecordFormat, SourceRecord, extra_fields
from vqa_shap.builders.source import (
    FieldError, SourceFileError, parse_hms, read_json, require_int, require_list, require_mapping,
    require_path, require_str,
)
from vqa_shap.errors import RecordError
from vqa_shap.schema.records import Question, VisualInput

BENCHMARK = "hd-epic"


def question_type(qid: str) -> str:
    """The paper's question type of an HD-EPIC ``q_uid`` (everything before the last ``_``)."""
    return "_".join(qid.split("_")[:-1])


def _choice(value, i: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    raise FieldError(f"choices[{i}]", f"expected a string or a list of strings, got {value!r}")


def _input(key: str, spec) -> VisualInput:
    name = f"inputs.{key}"
    if not isinstance(spec, dict):
        raise FieldError(name, f"expected an object {{id, …}}, got {spec!r}")
    try:
        video_id = require_path(spec, "id")
    except FieldError as err:
        raise FieldError(f"{name}.{err.field}", err.reason) from None
    path = f"{video_id.split('-')[0]}/{video_id}.mp4"
    if key.startswith("video"):
        start = parse_hms(spec["start_time"], f"{name}.start_time") if "start_time" in spec else None
        end = parse_hms(spec["end_time"], f"{name}.end_time") if "end_time" in spec else None
        return VisualInput("video", path, start=start, end=end, label=key)
    if key.startswith("image"):
        if "time" not in spec:
            raise FieldError(f"{name}.time", "missing (an image input needs its time)")
        return VisualInput("image", path, time=parse_hms(spec["time"], f"{name}.time"), label=key)
    raise FieldError(name, "input keys must start with 'video' or 'image'")


def to_question(record: SourceRecord) -> Question:
    """Parse one HD-EPIC record."""
    raw = record.raw
    inputs = require_mapping(raw, "inputs")
    if not inputs:
        raise FieldError("inputs", "no visual input")
    choices = require_list(raw, "choices")
    return Question(
        qid=record.qid,
        benchmark=BENCHMARK,
        task=question_type(record.qid),
        question=require_str(raw, "question"),
        options=tuple(_choice(c, i) for i, c in enumerate(choices)),
        answer=require_int(raw, "correct_idx"),
        inputs=tuple(_input(key, spec) for key, spec in inputs.items()),
        extra=extra_fields(raw, ["question", "choices", "correct_idx"]),
    )


FORMAT = RecordFormat(BENCHMARK, to_question, option_field="choices[{i}]", answer_field="correct_idx")


def keyed_records(data, file: Path) -> Iterator[tuple[str, object]]:
    """``(q_uid, record)`` pairs of a ``{q_uid: record}`` object."""
    if not isinstance(data, dict):
        raise SourceFileError(f"{file}: expected a JSON object {{q_uid: record}}, got {type(data).__name__}")
    yield from data.items()


def annotation_files(source: Path) -> list[Path]:
    """The annotation files the paper reads, in sorted path order."""
    return sorted(p for p in source.glob("*.json")
                  if "question" not in p.name and "subset_answers" not in p.name)


class HdEpicBuilder(Builder):
    """HD-EPIC from its per-type ``{q_uid: record}`` JSON files."""

    name = "hd-epic"

    def records(self, source: Path) -> Iterator[SourceRecord | RecordError]:
        files = annotation_files(source)
        if not files:
            raise SourceFileError(f"{source}: no HD-EPIC annotation files (*.json)")
        for file in files:
            for qid, raw in keyed_records(read_json(file), file):
                if not qid:
                    yield RecordError(str(file), repr(qid), "q_uid", "empty q_uid")
                    continue
                yield SourceRecord(str(file), qid, raw, FORMAT)
