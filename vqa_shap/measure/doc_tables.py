"""Generated tables in documentation pages: the text between two HTML-comment markers is replaced by a
table rendered from committed benchmark JSON, so docs and JSON cannot drift apart (tests regenerate and
compare). Every writer of such a block goes through :func:`update_file` (or :func:`replace_between`
for text it holds)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["markers", "replace_between", "update_file"]


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the generated block ``name``: ``<!-- name:start -->``, ``<!-- name:end -->``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_between(text: str, start: str, end: str, body: str) -> str:
    """``text`` with everything between the markers ``start`` and ``end`` replaced by ``body``.

    Args:
        text: the document.
        start, end: the marker lines (kept).
        body: the new content; it should end with a newline so ``end`` stays on its own line.

    Raises:
        ValueError: a marker is missing or they are out of order.
    """
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"the document lacks the markers {start} ... {end} (in this order)")
    return f"{text[:i]}{start}\n{body}{text[j:]}"


def update_file(path: str | os.PathLike, start: str, end: str, body: str) -> bool:
    """Replace the block between ``start`` and ``end`` in the file ``path`` by ``body``; written (UTF-8)
    only if it changed. Returns whether it changed.

    Raises:
        ValueError: the markers are missing or out of order (the message names the file).
    """
    page = Path(path)
    text = page.read_text(encoding="utf-8")
    try:
        new = replace_between(text, start, end, body)
    except ValueError as exc:
        raise ValueError(f"{page}: {exc}") from None
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text
