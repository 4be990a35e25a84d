"""LVBench (``THUDM/LVBench`` layout).

Source folder: a clone of the GitHub repository (``THUDM/LVBench``, the file put in ``data/``) or of
the Hugging Face dataset (``THUDM/LVBench``, the file at the root)::

    [data/]video_info.meta.jsonl   one video per line: {key, type, video_info, qa: [{uid, question,
                                   answer, question_type, time_reference}, …]}
    [scripts/]videos/00000/00000000.mp4 + .json   optional: the repository's download script
                                   (video2dataset) output, found and mapped (below)

Each ``qa`` item is one question. Its ``question`` text holds the question on the first line and one
``(A) …`` line per option; the options are those lines without their ``(X) `` prefix (the letters must
run A, B, C, …; anything else is an error on field ``question``). The answer letter becomes an index.

* ``qid`` = ``'_'.join(t.replace(' ', '_') for t in question_type) + '_' + str(uid)`` (the paper's).
* ``task`` = the *first* question type, underscored (a question can have several types; the paper
  stratifies its subset by the first one; all types stay in ``extra["question_type"]``).
* ``inputs``: ``<key>.mp4`` relative to the video root (the paper renames downloads to the YouTube id).
  When the source folder holds the output of the repository's ``scripts/download.sh`` (video2dataset
  writes ``videos/<shard>/<shard><n>.mp4`` next to a ``.json`` whose ``url`` is the YouTube link), the
  input of a downloaded video is that file instead, relative to the ``videos`` folder (the video root
  to give at run time); :func:`video2dataset_paths` reads the mapping.
* ``extra``: every other field (``key``, ``type``, ``video_info``, ``uid``, ``question_type``,
  ``time_reference``).

The paper's subset dumps store the parsed form (question = first line, ``options`` list, ``answer``
index, video fields merged in); :data:`FORMAT` reads that form and :data:`RAW_FORMAT` parses a raw
``qa`` item into it first.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from vqa_shap.builders.base import Builder, RecordFormat, SourceRecord, extra_fields
from vqa_shap.builders.source import (
    FieldError, SourceFileError, read_jsonl_lines, require, require_int, require_list, require_str,
)
from vqa_shap.errors import RecordError
from vqa_shap.schema.records import Question, VisualInput

logger = logging.getLogger(__name__)

BENCHMARK = "lvbench"
META_NAME = "video_info.meta.jsonl"
#: Where the annotation file is in a GitHub clone (``data/``) and a Hugging Face clone (the root).
META_FILES = (Path("data") / META_NAME, Path(META_NAME))
#: Where video2dataset output is looked for (``scripts/download.sh`` runs in ``scripts/``).
VIDEO2DATASET_FOLDERS = (Path("scripts") / "videos", Path("videos"))
_YOUTUBE_ID = re.compile(r"(?:[?&]v=|youtu\.be/)([A-Za-z0-9_-]{11})")
_OPTION_LINE = re.compile(r"^\(([A-Z])\) (.*)$", re.DOTALL)


def make_qid(question_type: list[str], uid: Any) -> str:
    """The paper's LVBench qid."""
    return "_".join(t.replace(" ", "_") for t in question_type) + "_" + str(uid)


def _types(raw: Mapping[str, Any]) -> list[str]:
    types = require_list(raw, "question_type")
    if not types or not all(isinstance(t, str) and t for t in types):
        raise FieldError("question_type", f"expected a non-empty list of strings, got {types!r}")
    return types


def meta_file(source: Path) -> Path:
    """The annotation file of a GitHub (``data/``) or Hugging Face (root) clone.

    Raises:
        SourceFileError: neither exists, or both exist with different contents.
    """
    found = [source / f for f in META_FILES if (source / f).is_file()]
    if not found:
        raise SourceFileError(f"{source}: no {META_NAME} in it or in its data/ folder "
                              "(put the file from the Hugging Face dataset THUDM/LVBench there)")
    if len(found) == 2 and found[0].read_bytes() != found[1].read_bytes():
        raise SourceFileError(f"{found[0]} and {found[1]} differ: keep one LVBench annotation file")
    return found[0]


def video2dataset_paths(folder: Path) -> dict[str, str]:
    """``{YouTube id: path of its video relative to folder}`` from video2dataset ``files`` output
    (``<shard>/<key>.mp4`` and its ``<key>.json`` holding the ``url``); videos whose download failed
    (no video file) are left out. An unreadable ``.json`` is a :class:`SourceFileError` naming it."""
    paths = {}
    for meta in sorted(folder.glob("*/*.json")):
        try:
            url = json.loads(meta.read_text(encoding="utf-8")).get("url") or ""
        except (OSError, ValueError, AttributeError) as exc:
            raise SourceFileError(f"{meta}: not a video2dataset sample record ({exc})") from None
        match = _YOUTUBE_ID.search(str(url))
        video = next((v for v in sorted(meta.parent.glob(meta.stem + ".*")) if v.suffix not in (".json", ".txt")), None)
        if match and video is not None:
            paths.setdefault(match.group(1), video.relative_to(folder).as_posix())
    return paths


def to_question(record: SourceRecord) -> Question:
    """Parse one LVBench record in the paper's stored form (``question``, ``options``, int ``answer``)."""
    raw = record.raw
    types = _types(raw)
    if "uid" not in raw:
        raise FieldError("uid", "missing")
    expected = make_qid(types, raw["uid"])
    if record.qid != expected:
        raise FieldError("q_uid", f"does not match question_type and uid (expected {expected!r})")
    options = require_list(raw, "options")
    for i, option in enumerate(options):
        if not isinstance(option, str):
            raise FieldError(f"options[{i}]", f"expected a string, got {option!r}")
    key = require_str(raw, "key")
    video = record.video or f"{key}.mp4"
    return Question(
        qid=record.qid,
        benchmark=BENCHMARK,
        task=types[0].replace(" ", "_"),
        question=require_str(raw, "question"),
        options=tuple(options),
        answer=require_int(raw, "answer"),
        inputs=(VisualInput("video", video, label="video 1"),),
        extra=extra_fields(raw, ["question", "options", "answer"]),
    )


def stored_form(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A raw record (video fields + one ``qa`` item) in the paper's stored form.

    Raises:
        FieldError: the question text has no option lines or a line is not ``(X) text`` with the
            letters running A, B, C, …; or the answer is not one of those letters.
    """
    text = require_str(raw, "question")
    lines = text.rstrip("\n").split("\n")
    options = []
    for i, line in enumerate(lines[1:]):
        match = _OPTION_LINE.match(line)
        expected = chr(ord("A") + i)
        if not match or match.group(1) != expected:
            raise FieldError("question", f"option line {i + 1} {line!r} is not '({expected}) …'")
        options.append(match.group(2))
    if not options:
        raise FieldError("question", "no '(A) …' option lines after the question line")
    letter = require_str(raw, "answer")
    if len(letter) != 1 or not "A" <= letter < chr(ord("A") + len(options)):
        raise FieldError("answer", f"{letter!r} is not one of the option letters A–{chr(ord('A') + len(options) - 1)}")
    return {**raw, "question": lines[0], "answer": ord(letter) - ord("A"), "options": options}


def _raw_to_question(record: SourceRecord) -> Question:
    return to_question(replace(record, raw=stored_form(record.raw)))


#: The paper's stored (dump) form.
FORMAT = RecordFormat(BENCHMARK, to_question, option_field="options[{i}]", answer_field="answer")
#: The official raw form (options inside the question text, answer letter).
RAW_FORMAT = RecordFormat(BENCHMARK, _raw_to_question, option_field="question", answer_field="answer")


class LvBenchBuilder(Builder):
    """LVBench from ``video_info.meta.jsonl`` (at the root or in ``data/``), with video2dataset names."""

    name = "lvbench"

    def records(self, source: Path) -> Iterator[SourceRecord | RecordError]:
        file = meta_file(source)
        downloads = next((source / f for f in VIDEO2DATASET_FOLDERS if (source / f).is_dir()), None)
        videos = video2dataset_paths(downloads) if downloads is not None else {}
        keys: set[str] = set()
        for lineno, video in read_jsonl_lines(file):
            where = f"line {lineno}"
            if isinstance(video, Exception):
                yield RecordError(str(file), where, "(json)", f"invalid JSON at column {video.colno}: {video.msg}")
                continue
            if not isinstance(video, dict) or not isinstance(video.get("qa"), list):
                yield RecordError(str(file), where, "qa", "expected a video object with a 'qa' list")
                continue
            fields = {k: v for k, v in video.items() if k != "qa"}
            keys.add(str(fields.get("key")))
            for j, qa in enumerate(video["qa"]):
                item = f"{where} qa[{j}]"
                if not isinstance(qa, dict):
                    yield RecordError(str(file), item, "(record)", f"expected an object, got {qa!r}")
                    continue
                try:
                    qid = make_qid(_types(qa), require(qa, "uid"))
                except FieldError as err:
                    yield RecordError(str(file), item, err.field, err.reason)
                    continue
                yield SourceRecord(str(file), qid, {**fields, **qa}, RAW_FORMAT,
                                   video=videos.get(str(fields.get("key")), ""))
        if downloads is not None:
            found = len(keys & set(videos))
            logger.info("%s: %d of the %d videos were downloaded there by video2dataset; their questions name "
                        "them relative to it (give --video-root %s), the others <key>.mp4", downloads, found,
                        len(keys), downloads)
