"""The subset dumps of "A Video Is Not Worth a Thousand Words" (Pollard & Wray, 2025).

Source folder (the paper's ``subsets/`` plus the EgoSchema answers, as in
``fixtures/pollard2025``)::

    subsets/<bench>.csv                   q_uid column: the subset, in the paper's order
    subsets/<bench>.json                  the raw records of those questions
    subsets/<bench>_<variant>.json        the same questions in the extra-answer variant
    answers/egoschema[_<variant>].json    {q_uid: answer index} (the EgoSchema dumps carry none)

with ``<bench>`` one of ``egoschema``, ``hd-epic``, ``mvbench``, ``lvbench`` and ``<variant>`` ``easy``
or ``hard_<N>``. Every dump found becomes a config (:func:`vqa_shap.schema.records.config_name`), keeping the
paper's qids in CSV order, options and answers. Records are parsed by the benchmarks' own
:class:`~builders.base.RecordFormat` s (the dumps hold the records in the paper's stored form).

The dumps do not say where a variant's options came from: the correct option and (for ``hard_<N>``)
the question's own options are traced back to the original config; the rest get the unknown origin
``("", -1)`` (see :func:`vqa_shap.builders.variants.recover_origins`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Iterator

from vqa_shap.builders import egoschema, hd_epic, lvbench, mvbench
from vqa_shap.builders.base import Builder, BuildResult, RecordFormat, SourceRecord
from vqa_shap.builders.source import SourceFileError, read_json, read_subset_csv
from vqa_shap.errors import RecordError
from vqa_shap.schema.records import config_name

logger = logging.getLogger(__name__)

#: benchmark -> the format of its dumped records, in the order configs are built.
FORMATS: dict[str, RecordFormat] = {
    "egoschema": egoschema.FORMAT,
    "hd-epic": hd_epic.FORMAT,
    "mvbench": mvbench.FORMAT,
    "lvbench": lvbench.FORMAT,
}
_DUMP = re.compile(r"^(?P<bench>" + "|".join(map(re.escape, FORMATS)) + r")(?:_(?P<variant>easy|hard_[1-9][0-9]*))?$")


def _variant_order(variant: str) -> tuple[int, int]:
    if variant == "original":
        return (0, 0)
    if variant == "easy":
        return (1, 0)
    return (2, int(variant.split("_")[1]))


def find_dumps(source: Path) -> list[tuple[str, str, Path]]:
    """``(benchmark, variant, path)`` of every dump in ``source/subsets``, benchmarks then variants in order."""
    folder = source / "subsets"
    if not folder.is_dir():
        raise SourceFileError(f"{folder}: not a folder (expected the paper's subsets/ folder)")
    dumps = []
    for path in sorted(folder.glob("*.json")):
        match = _DUMP.match(path.stem)
        if not match:
            logger.warning("%s: not a subset dump name (<bench>[_easy|_hard_N].json); ignored", path)
            continue
        dumps.append((match.group("bench"), match.group("variant") or "original", path))
    if not dumps:
        raise SourceFileError(f"{folder}: no subset dumps (<bench>.json)")
    bench_order = list(FORMATS)
    return sorted(dumps, key=lambda d: (bench_order.index(d[0]), _variant_order(d[1])))


def _dump_items(bench: str, data, path: Path) -> Iterator[tuple[str, object] | RecordError]:
    """``(qid, record)`` of a dump: flat records for EgoSchema, ``{q_uid: record}`` objects otherwise."""
    if not isinstance(data, list):
        raise SourceFileError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for position, item in enumerate(data):
        if bench == "egoschema":
            qid = egoschema.record_qid(item, path, position)
            yield qid if isinstance(qid, RecordError) else (qid, item)
        elif isinstance(item, dict) and len(item) == 1:
            yield next(iter(item.items()))
        else:
            yield RecordError(str(path), f"#{position}", "(record)", "expected a single-key object {q_uid: record}")


class Pollard2025Builder(Builder):
    """Every benchmark × variant of the paper's subset dumps."""

    name = "pollard2025"

    def records(self, source: Path) -> Iterator[SourceRecord | RecordError]:
        for bench, variant, path in find_dumps(source):
            csv_path = source / "subsets" / f"{bench}.csv"
            order = read_subset_csv(csv_path)
            answers, answers_path = {}, ""
            if bench == "egoschema":
                answers_file = source / "answers" / f"{config_name(bench, variant)}.json"
                answers, answers_path = egoschema.read_answers(answers_file), str(answers_file)
            by_qid: dict[str, list] = {}
            for item in _dump_items(bench, read_json(path), path):
                if isinstance(item, RecordError):
                    yield item
                else:
                    by_qid.setdefault(item[0], []).append(item[1])
            listed = set(order)
            for qid in order:
                if qid not in by_qid:
                    yield RecordError(str(path), qid, "q_uid", f"listed in {csv_path.name} but not in this dump")
                for raw in by_qid.get(qid, ()):
                    yield SourceRecord(str(path), qid, raw, FORMATS[bench], variant,
                                       answer=answers.get(qid), answer_file=answers_path)
            for qid in by_qid:
                if qid not in listed:
                    yield RecordError(str(path), qid, "q_uid", f"not listed in {csv_path.name}")

    def build(self, source, *, subset=None, on_error: str = "raise") -> BuildResult:
        """Build every dump (see :meth:`Builder.build`); variants get their recoverable option origins."""
        from vqa_shap.builders.variant_pools import UNKNOWN_ORIGIN
        from vqa_shap.builders.variants import recover_origins

        result = super().build(source, subset=subset, on_error=on_error)
        configs = {}
        for config, questions in result.configs.items():
            if questions[0].variant != "original":
                originals = {q.qid: q for q in result.configs.get(config_name(questions[0].benchmark), ())}
                questions = [
                    dataclasses.replace(q, option_origin=recover_origins(originals[q.qid], q))
                    if q.qid in originals else
                    dataclasses.replace(q, option_origin=(UNKNOWN_ORIGIN,) * q.n_options)
                    for q in questions
                ]
            configs[config] = questions
        return BuildResult(configs, result.skipped)
