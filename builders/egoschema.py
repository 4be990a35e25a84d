"""EgoSchema (Kaggle release layout).

Source folder::

    questions.json         [{q_uid, google_drive_id, question, "option 0", …, "option 4"}, …]
    subset_answers.json    {q_uid: correct option index}   (the public answered subset)

Every question of ``questions.json`` is built (5,031 in the release); those with an answer in
``subset_answers.json`` (500) get it, the others have an unknown answer (``None``; the answers of
the full set are hidden on Kaggle). Whatever needs the ground truth (metrics, variants, the paper's
CSV, the masking benchmark) skips or refuses the unanswered ones and says how many. A ``--subset``
CSV (the paper's) keeps only its questions. An answers file that does not meet the questions file
(none of its q_uids is a question, e.g. an early 20-question ``questions.json`` with the 500
answers) is one error naming both files; answered q_uids missing from a questions file that does
meet it are one record error listing them. EgoSchema has no question types, so ``task``
is the constant ``"egoschema"``. The single visual input is ``<q_uid>.mp4`` relative to the video root
(the release's ``videos/`` folder), labelled ``"video 1"``. Fields other than the question and the
options (``google_drive_id``) go to ``extra``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vqa_shap.builders.base import Builder, RecordFormat, SourceRecord, extra_fields
from vqa_shap.builders.source import (
    FieldError, SourceFileError, read_json, require_str,
)
from vqa_shap.errors import RecordError
from vqa_shap.schema.records import Question, VisualInput

BENCHMARK = "egoschema"
TASK = "egoschema"


def option_keys(record) -> list[str]:
    """``option 0 … option n-1`` where n = number of keys containing ``option`` (the paper's count)."""
    return [f"option {i}" for i in range(sum("option" in key for key in record))]


def to_question(record: SourceRecord) -> Question:
    """Parse one EgoSchema record (the answer comes from ``record.answer``, which must be given)."""
    if record.answer is None:
        raise FieldError("answer", f"no answer for this q_uid in {record.answer_file or 'the answers file'}")
    return _question(record)


def _question(record: SourceRecord) -> Question:
    """Parse one EgoSchema record; ``record.answer`` ``None`` is an unknown answer."""
    raw = record.raw
    keys = option_keys(raw)
    options = tuple(require_str(raw, key) for key in keys)
    return Question(
        qid=record.qid,
        benchmark=BENCHMARK,
        task=TASK,
        question=require_str(raw, "question"),
        options=options,
        answer=record.answer,
        inputs=(VisualInput("video", f"{record.qid}.mp4", label="video 1"),),
        extra=extra_fields(raw, ["q_uid", "question", *keys]),
    )


#: A record whose answer must be known (the paper's dumps, with their answers files).
FORMAT = RecordFormat(BENCHMARK, to_question, option_field="option {i}", answer_field="answer")
#: A record of the release, whose answer may be unknown (not in ``subset_answers.json``).
RELEASE_FORMAT = RecordFormat(BENCHMARK, _question, option_field="option {i}", answer_field="answer")


def record_qid(raw, file: Path, position: int) -> str | RecordError:
    """The ``q_uid`` of a flat EgoSchema record, or the error naming its position."""
    if not isinstance(raw, dict):
        return RecordError(str(file), f"#{position}", "(record)", f"expected a JSON object, got {type(raw).__name__}")
    qid = raw.get("q_uid")
    if not isinstance(qid, str) or not qid:
        return RecordError(str(file), f"#{position} (no q_uid)", "q_uid", f"missing or not a string: {qid!r}")
    return qid


def read_answers(path: Path) -> dict:
    """``{q_uid: answer}`` from an answers file (values are validated when each record is built)."""
    answers = read_json(path)
    if not isinstance(answers, dict):
        raise SourceFileError(f"{path}: expected a JSON object {{q_uid: answer index}}, got {type(answers).__name__}")
    return answers


class EgoSchemaBuilder(Builder):
    """EgoSchema from ``questions.json`` + ``subset_answers.json``."""

    name = "egoschema"

    def records(self, source: Path) -> Iterator[SourceRecord | RecordError]:
        questions_file, answers_file = source / "questions.json", source / "subset_answers.json"
        questions = read_json(questions_file)
        if not isinstance(questions, list):
            raise SourceFileError(f"{questions_file}: expected a JSON list of question records")
        answers = read_answers(answers_file)
        qids = {raw.get("q_uid") for raw in questions if isinstance(raw, dict)}
        missing = [qid for qid in answers if qid not in qids]
        if answers and len(missing) == len(answers):
            raise SourceFileError(
                f"{answers_file} and {questions_file} do not meet: none of the {len(answers)} answered q_uids "
                f"is among the {len(questions)} questions (a partial or early questions.json?)")
        for position, raw in enumerate(questions):
            qid = record_qid(raw, questions_file, position)
            if isinstance(qid, RecordError):
                yield qid
            elif qid in answers:
                yield SourceRecord(str(questions_file), qid, raw, RELEASE_FORMAT,
                                   answer=answers[qid], answer_file=str(answers_file))
            else:  # no public answer: built with an unknown answer
                yield SourceRecord(str(questions_file), qid, raw, RELEASE_FORMAT)
        if missing:
            shown = ", ".join(missing[:3]) + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
            record = missing[0] if len(missing) == 1 else f"{len(missing)} answered q_uids"
            yield RecordError(str(answers_file), record, "q_uid",
                              f"has an answer but no question in {questions_file.name}"
                              + ("" if len(missing) == 1 else f": {shown}"))
