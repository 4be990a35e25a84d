"""Generated tables in documentation pages: the text between two HTML-comment markers is replaced by a
table rendered from committed benchmark JSON, so docs and JSON cannot drift apart (tests regenerate and
compare)."""

from __future__ import annotations

__all__ = ["replace_between"]


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
