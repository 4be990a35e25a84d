"""The builder base: turns a benchmark's source files into typed :class:`~vqa_shap.schema.records.Question` s.

A concrete builder implements one method, :meth:`Builder.records`, which walks its source folder and
yields one :class:`SourceRecord` per question (the raw record as the benchmark stores it, its qid and
the :class:`RecordFormat` that parses it), or a :class:`~vqa_shap.errors.RecordError` for a record it
could not even identify. Everything else lives here, once:

* the error policy (``on_error="raise"`` stops at the first bad record, ``"skip"`` lists it in
  :attr:`BuildResult.skipped`);
* duplicate-qid detection (identical repeats collapse, as the paper's ``{q_uid: record}`` dicts do;
  different records under one qid are an error);
* subset filtering by a CSV of ``q_uid`` s (kept in CSV order);
* validation of every built question: text is valid UTF-8, ≥ 2 options, no empty option, answer in
  range, and whatever the format's field accessors check (present, typed).

A file that cannot be parsed at all (missing, invalid JSON, wrong top-level type) raises
:class:`~builders.source.SourceFileError` under either policy: nobody can tell which records it
would have held, so skipping it would lose them silently.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping

from vqa_shap.builders.source import (
    FieldError, SourceFileError, check_qid, find_invalid_text, read_subset_csv,
)
from vqa_shap.errors import RecordError, VqaShapError
from vqa_shap.schema.records import Question, config_name

logger = logging.getLogger(__name__)

#: The error policies :meth:`Builder.build` accepts.
ON_ERROR = ("raise", "skip")


class ExcludedRecord(RecordError):
    """A well-formed record that is no multiple-choice question (a single option): always skipped
    and reported, never an error (MVBench's official ``counterfactual_inference.json`` has five)."""


@dataclass(frozen=True)
class SkippedRecord:
    """One record left out with ``on_error="skip"``, and why.

    Attributes:
        file: the source file the record came from.
        record: its id (qid), or its position when it has no readable id.
        field: the offending field.
        reason: what is wrong with it.
        config: the config it would have gone to (``""`` when unknown).
        kind: ``"invalid"`` (a bad record, skipped with ``on_error="skip"``) or ``"excluded"`` (a
            well-formed record that is not a multiple-choice question — a single option — skipped
            under either policy).
    """

    file: str
    record: str
    field: str
    reason: str
    config: str = ""
    kind: str = "invalid"

    @classmethod
    def from_error(cls, error: RecordError, config: str = "") -> "SkippedRecord":
        kind = "excluded" if isinstance(error, ExcludedRecord) else "invalid"
        return cls(error.file, error.record, error.field, error.reason, config, kind)

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced.

    Attributes:
        configs: config name (:func:`vqa_shap.schema.records.config_name`) -> its questions, in source order
            (or subset-CSV order).
        skipped: the records left out with ``on_error="skip"``, in the order they were met.
    """

    configs: dict[str, list[Question]]
    skipped: tuple[SkippedRecord, ...] = ()

    @property
    def n_questions(self) -> int:
        """Questions over all configs."""
        return sum(len(qs) for qs in self.configs.values())

    @property
    def n_unknown_answer(self) -> int:
        """Questions built without a known answer (the source publishes none)."""
        return sum(q.answer is None for qs in self.configs.values() for q in qs)

    def repeated_options(self) -> list[Question]:
        """The questions that repeat an option (``extra["repeated_options"]``), in build order."""
        return [q for qs in self.configs.values() for q in qs if REPEATED_OPTIONS in q.extra]

    def repeat_summary(self) -> list[str]:
        """One line per question repeating an option (``qid: options 1 = 3 (the correct one)``), after a
        count line; ``[]`` when none does."""
        flagged = self.repeated_options()
        if not flagged:
            return []
        correct = [q for q in flagged if any(q.answer in g for g in q.extra[REPEATED_OPTIONS])]
        lines = [f"{len(flagged)} questions repeat an option ({len(correct)} of them the correct one); "
                 "kept as the source has them, flagged in extra['repeated_options']:"]
        for q in flagged:
            groups = "; ".join(" = ".join(str(i) for i in g) + (" (the correct one)" if q.answer in g else "")
                               for g in q.extra[REPEATED_OPTIONS])
            lines.append(f"  {config_name(q.benchmark, q.variant)}: {q.qid}: options {groups}")
        return lines

    def answer_summary(self) -> str:
        """``"N with answers, M without"``, or ``""`` when every question has its answer."""
        unknown = self.n_unknown_answer
        return f"{self.n_questions - unknown} with answers, {unknown} without" if unknown else ""

    def skip_summary(self) -> str:
        """One line: how many records were skipped, those with a single option counted apart."""
        excluded = sum(s.kind == "excluded" for s in self.skipped)
        detail = f" ({excluded} with a single option: not multiple-choice questions)" if excluded else ""
        return f"skipped {len(self.skipped)} records{detail}"

    def write_skip_report(self, path: str | os.PathLike) -> None:
        """Write :attr:`skipped` as JSON lines ``{file, record, field, reason, config}`` (atomically).

        An empty report (no line) means nothing was skipped.
        """
        from vqa_shap.atomic_files import atomic_write_text

        text = "".join(json.dumps(item.to_dict(), ensure_ascii=True) + "\n" for item in self.skipped)
        atomic_write_text(path, text, errors="backslashreplace", mkdir=True)


@dataclass(frozen=True)
class SourceRecord:
    """One question as its source stores it, before parsing.

    Attributes:
        file: the file it came from (for error messages).
        qid: its id, exactly as the paper's code forms it.
        raw: the record (the paper's stored form for that benchmark).
        format: the :class:`RecordFormat` that turns it into a :class:`Question`.
        variant: ``"original"``, ``"easy"``, ``"hard_5"``, …
        answer: an answer index given outside the record (EgoSchema's ``subset_answers.json``), else None.
        answer_file: where :attr:`answer` came from (for error messages).
        video: the video's path relative to the video root when the source layout names it apart
            from the record (LVBench's video2dataset downloads), else ``""``.
    """

    file: str
    qid: str
    raw: Any
    format: "RecordFormat"
    variant: str = "original"
    answer: Any = None
    answer_file: str = ""
    video: str = ""

    @property
    def config(self) -> str:
        return config_name(self.format.benchmark, self.variant)


@dataclass(frozen=True)
class RecordFormat:
    """How one benchmark's stored record becomes a :class:`Question` (shared by raw and dump builders).

    Attributes:
        benchmark: the ``benchmark`` column value.
        to_question: the parser; reads fields with the ``builders.source.require_*`` helpers (which
            raise :class:`~builders.source.FieldError`); need not check option count, emptiness or
            answer range (the base does).
        option_field: how the source names option ``i`` in messages (``"{i}"`` is substituted).
        answer_field: how the source names the answer.
    """

    benchmark: str
    to_question: Callable[[SourceRecord], Question]
    option_field: str = "options[{i}]"
    answer_field: str = "answer"


class Builder:
    """Base of the benchmark builders. Subclasses set :attr:`name` and implement :meth:`records`."""

    #: registry name, e.g. ``"hd-epic"``.
    name: ClassVar[str] = ""

    def records(self, source: Path) -> Iterable[SourceRecord | RecordError]:
        """Yield every question of ``source`` as a :class:`SourceRecord`, in source order.

        Yield (do not raise) a :class:`RecordError` for a record that cannot be identified, so the
        error policy applies; raise :class:`~builders.source.SourceFileError` for an unusable file.
        """
        raise NotImplementedError

    def build(self, source: str | os.PathLike, *, subset: str | os.PathLike | None = None,
              on_error: str = "raise") -> BuildResult:
        """Build every config found in ``source``.

        Args:
            source: the benchmark folder, in its official layout.
            subset: optional CSV with a ``q_uid`` column: keep only those questions, in CSV order.
            on_error: ``"raise"`` (stop at the first bad record with a
                :class:`~vqa_shap.errors.RecordError` naming file, record and field) or ``"skip"``
                (build the good records; the bad ones are listed in :attr:`BuildResult.skipped`).
                Under either policy a record with a single option is skipped and listed with
                ``kind="excluded"`` (:class:`ExcludedRecord`).

        Raises:
            RecordError: a bad record, with ``on_error="raise"``.
            SourceFileError: an unusable source file, or subset ids that are not in the source.
        """
        if on_error not in ON_ERROR:
            raise VqaShapError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        source = Path(source)
        if not source.is_dir():
            raise SourceFileError(f"{source}: not a folder (expected the {self.name} source folder)")
        wanted = read_subset_csv(Path(subset)) if subset is not None else None
        skipped: list[SkippedRecord] = []

        def fail(error: RecordError, config: str = "") -> None:
            excluded = isinstance(error, ExcludedRecord)
            if on_error == "raise" and not excluded:
                raise error
            # excluded records are summed up in one line by the caller (BuildResult.skip_summary)
            logger.log(logging.DEBUG if excluded else logging.WARNING, "skipping %s", error)
            skipped.append(SkippedRecord.from_error(error, config))

        candidates = self._collect(source, fail)
        if wanted is not None:
            candidates = self._select(candidates, wanted, Path(subset), skipped, source)
        configs: dict[str, list[Question]] = {}
        for config, records in candidates.items():
            questions = []
            for record in records:
                try:
                    questions.append(self._parse(record))
                except RecordError as error:
                    fail(error, config)
            if questions:
                configs[config] = questions
        return BuildResult(configs, tuple(skipped))

    def _collect(self, source: Path, fail) -> dict[str, list[SourceRecord]]:
        from tqdm.auto import tqdm

        seen: dict[tuple[str, str], SourceRecord] = {}
        by_config: dict[str, list[SourceRecord]] = {}
        for item in tqdm(self.records(source), desc=f"reading {self.name}", unit=" records",
                         disable=None, leave=False):
            if isinstance(item, RecordError):
                fail(item)
                continue
            key = (item.config, item.qid)
            first = seen.get(key)
            if first is None:
                seen[key] = item
                by_config.setdefault(item.config, []).append(item)
            elif first.raw == item.raw and first.answer == item.answer:
                # An identical repeat is the same question (the paper's dicts keep one of them).
                logger.info("%s: %r repeats an identical record; kept once", item.file, item.qid)
            else:
                fail(RecordError(item.file, item.qid, "q_uid",
                                 f"duplicate q_uid: a different record with this id is in {first.file}"),
                     item.config)
        return by_config

    @staticmethod
    def _select(candidates: dict[str, list[SourceRecord]], wanted: list[str], csv_path: Path,
                skipped: list[SkippedRecord], source: Path) -> dict[str, list[SourceRecord]]:
        index = {config: {r.qid: r for r in records} for config, records in candidates.items()}
        known = {qid for records in index.values() for qid in records}
        known.update(s.record for s in skipped)
        unknown = [qid for qid in wanted if qid not in known]
        if unknown:
            shown = ", ".join(repr(q) for q in unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise SourceFileError(f"{csv_path}: {len(unknown)} q_uid(s) not found in {source}: {shown}")
        return {config: [records[q] for q in wanted if q in records] for config, records in index.items()}

    @staticmethod
    def _parse(record: SourceRecord) -> Question:
        fmt = record.format

        def error(field: str, reason: str) -> RecordError:
            return RecordError(record.file, record.qid, field, reason)

        if not isinstance(record.raw, Mapping):
            raise error("(record)", f"expected a JSON object, got {type(record.raw).__name__}")
        invalid = find_invalid_text(record.qid, "q_uid") or find_invalid_text(record.raw)
        if invalid:
            raise error(*invalid)
        bad_qid = check_qid(record.qid)
        if bad_qid:
            raise error("q_uid", bad_qid)
        try:
            question = fmt.to_question(record)
        except FieldError as err:
            raise error(err.field, err.reason) from None
        if not isinstance(question.question, str) or not question.question.strip():
            raise error("question", f"empty question text {question.question!r}")
        if question.variant != record.variant:
            question = dataclasses.replace(question, variant=record.variant)
        if len(question.options) == 1:
            raise ExcludedRecord(record.file, record.qid, fmt.option_field.format(i="*"),
                                 "a single option: not a multiple-choice question (excluded)")
        if len(question.options) < 2:
            raise error(fmt.option_field.format(i="*"),
                        f"a question needs at least 2 options, got {len(question.options)}")
        for i, option in enumerate(question.options):
            if not isinstance(option, str) or not option.strip():
                raise error(fmt.option_field.format(i=i), f"empty option {option!r}")
        question = flag_repeated_options(question)
        answer = question.answer
        if answer is None:  # unknown (the format decided it may be)
            return question
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise error(fmt.answer_field, f"expected an integer answer index, got {answer!r}")
        if not 0 <= answer < len(question.options):
            where = f" (from {record.answer_file})" if record.answer_file else ""
            raise error(fmt.answer_field,
                        f"answer index {answer}{where} is out of range for {len(question.options)} options")
        return question


#: The ``extra`` key listing a question's repeated options (added by the builder, not from the source).
REPEATED_OPTIONS = "repeated_options"


def repeated_option_groups(options) -> list[list[int]]:
    """Index groups of options with the same text (compared as the variants compare them:
    :func:`~vqa_shap.builders.variant_pools.normalise`), in order; ``[]`` when all differ."""
    from vqa_shap.builders.variant_pools import normalise

    groups: dict[str, list[int]] = {}
    for i, option in enumerate(options):
        groups.setdefault(normalise(option), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def flag_repeated_options(question: Question) -> Question:
    """``question`` with ``extra["repeated_options"]`` set to its groups of repeated options when it has
    any. The options stay as the source has them: a repeat of the correct option is scored wrong when
    a model picks the copy, and the flag lets an analysis find or leave out those questions."""
    groups = repeated_option_groups(question.options)
    if not groups:
        return question
    return dataclasses.replace(question, extra={**question.extra, REPEATED_OPTIONS: groups})


def extra_fields(raw: Mapping[str, Any], used: Iterable[str]) -> dict[str, Any]:
    """The fields of ``raw`` not in ``used``, for the lossless ``extra`` column."""
    used = set(used)
    return {k: v for k, v in raw.items() if k not in used}
