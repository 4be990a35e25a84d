"""Reading benchmark source files, and typed access to record fields with named errors.

Every builder reads its annotation files through :func:`read_json` / :func:`read_jsonl_lines` and
reads record fields through the ``require_*`` helpers, so every failure names what is wrong in the
same words:

* a file that is not valid JSON raises :class:`SourceFileError` naming the file, line and column;
* bytes that are not valid UTF-8 are kept (decoded with ``surrogateescape``) so the file still
  parses, and :func:`find_invalid_text` later names the record and field that hold them;
* a missing or mistyped field raises :class:`FieldError`, which the builder base turns into a
  :class:`vqa_shap.errors.RecordError` with the file and record id.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator, Mapping

from vqa_shap.errors import VqaShapError

#: A lone surrogate: what ``surrogateescape`` turns an undecodable byte into (U+DC80..U+DCFF), or a
#: JSON ``\\udXXX`` escape that is not half of a pair. Neither is valid text.
_SURROGATE = re.compile("[\ud800-\udfff]")
_HMS = re.compile(r"^(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)$")


class SourceFileError(VqaShapError):
    """A whole source file is unusable (missing, not JSON, wrong top-level structure).

    Unlike a bad record, it cannot be skipped: nobody can tell which records it would have held.
    """


class FieldError(Exception):
    """A field of one record is missing or invalid. The builder base adds the file and record id.

    Args:
        field: the source field name (e.g. ``"correct_idx"``, ``"option 3"``, ``"inputs.video 1.id"``).
        reason: what is wrong with it.
    """

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"field {field!r}: {reason}")


def _decode(path: Path) -> str:
    # surrogateescape keeps undecodable bytes as U+DC80..U+DCFF, so the file still parses and the
    # record holding them can be named (find_invalid_text) instead of failing the whole file.
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SourceFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SourceFileError(f"{path}: is a directory, expected a file") from None
    text = data.decode("utf-8", errors="surrogateescape")
    return text[1:] if text.startswith("\ufeff") else text


def read_json(path: Path) -> Any:
    """Parse a JSON file.

    Raises:
        SourceFileError: the file is missing or is not valid JSON (names file, line and column).
    """
    text = _decode(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SourceFileError(
            f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None


def read_jsonl_lines(path: Path) -> Iterator[tuple[int, Any | json.JSONDecodeError]]:
    """Yield ``(line number, parsed value or the JSONDecodeError)`` for each non-blank line.

    A bad line is a bad record, not a bad file, so it is returned for the caller to report.
    """
    for lineno, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            yield lineno, err


def read_subset_csv(path: Path) -> list[str]:
    """The ``q_uid`` column of a subset CSV (the paper's format), in file order.

    Raises:
        SourceFileError: missing file, no ``q_uid`` column, invalid UTF-8, or an id listed twice.
    """
    text = _decode(Path(path))
    bad = _SURROGATE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise SourceFileError(f"{path}: line {line}: not valid UTF-8 ({_describe_bad(bad.group())})")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "q_uid" not in reader.fieldnames:
        raise SourceFileError(f"{path}: no 'q_uid' column (header: {reader.fieldnames})")
    ids: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        qid = (row.get("q_uid") or "").strip()
        if not qid:
            continue
        if qid in seen:
            raise SourceFileError(f"{path}: line {reader.line_num}: q_uid {qid!r} listed twice")
        seen[qid] = reader.line_num
        ids.append(qid)
    return ids


def _describe_bad(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"undecodable byte 0x{code - 0xDC00:02x}"
    return f"lone surrogate U+{code:04X}"


def check_qid(qid: str) -> str | None:
    """Why ``qid`` cannot name a question, or ``None``.

    A qid becomes a file name of explain's work files and a path component, so it must be non-empty,
    must not start with ``.`` (``.``, ``..``, hidden files) and must hold no path separator
    (``/``, ``\\``) and no control character.
    """
    if not qid or not qid.strip():
        return "empty q_uid"
    if qid.startswith("."):
        return f"q_uid {qid!r} starts with '.' (it names files; '.', '..' and hidden names are not allowed)"
    bad = next((c for c in qid if c in "/\\" or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        return f"q_uid {qid!r} holds {bad!r} (no path separators or control characters: it names files)"
    return None


def find_invalid_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (key or value) in a JSON value that is not valid UTF-8 text.

    Returns:
        ``(field path, description)`` such as ``("choices[2]", "undecodable byte 0xff at character 4")``,
        or ``None`` when all text is valid.
    """
    if isinstance(value, str):
        bad = _SURROGATE.search(value)
        if bad:
            return path or "(value)", f"not valid UTF-8: {_describe_bad(bad.group())} at character {bad.start()}"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            found = find_invalid_text(key, sub) or find_invalid_text(item, sub)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = find_invalid_text(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def require(record: Mapping[str, Any], name: str) -> Any:
    """``record[name]``; :class:`FieldError` if absent."""
    if name not in record:
        raise FieldError(name, "missing")
    return record[name]


def require_str(record: Mapping[str, Any], name: str) -> str:
    """A string field (may not be missing or of another type)."""
    value = require(record, name)
    if not isinstance(value, str):
        raise FieldError(name, f"expected a string, got {_type_name(value)} {value!r}")
    return value


def require_path(record: Mapping[str, Any], name: str) -> str:
    """A string field naming a video or frame folder: not blank, no control characters."""
    value = require_str(record, name)
    if not value.strip():
        raise FieldError(name, "empty video path")
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise FieldError(name, f"video path {value[:80]!r} holds the control character {bad!r}")
    return value


def require_int(record: Mapping[str, Any], name: str) -> int:
    """An integer field (booleans and floats are rejected)."""
    value = require(record, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"expected an integer, got {_type_name(value)} {value!r}")
    return value


def require_number(record: Mapping[str, Any], name: str) -> float:
    """A numeric field, as float."""
    value = require(record, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(name, f"expected a number, got {_type_name(value)} {value!r}")
    return float(value)


def require_list(record: Mapping[str, Any], name: str) -> list:
    """A list field."""
    value = require(record, name)
    if not isinstance(value, list):
        raise FieldError(name, f"expected a list, got {_type_name(value)}")
    return value


def require_mapping(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """An object field."""
    value = require(record, name)
    if not isinstance(value, Mapping):
        raise FieldError(name, f"expected an object, got {_type_name(value)}")
    return value


def parse_hms(value: Any, name: str) -> float:
    """Seconds of an ``HH:MM:SS[.fff]`` time, as the double nearest the exact decimal value.

    (The paper truncates to whole seconds at run time; the dataset keeps the exact time.)
    """
    if not isinstance(value, str):
        raise FieldError(name, f"expected an 'HH:MM:SS.fff' string, got {_type_name(value)} {value!r}")
    match = _HMS.match(value.strip())
    if not match:
        raise FieldError(name, f"{value!r} is not an 'HH:MM:SS.fff' time")
    hours, minutes, seconds = match.groups()
    try:
        return float(Decimal(hours) * 3600 + Decimal(minutes) * 60 + Decimal(seconds))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise FieldError(name, f"{value!r} is not an 'HH:MM:SS.fff' time") from None
