"""Words: the text players of a question, how masked words are re-joined, and HD-EPIC tags.

The split and the re-join reproduce the public code of Pollard & Wray (2025); docs/protocol.md
shows worked examples.
"""

from __future__ import annotations

import re
import time as _time
from typing import Sequence

import numpy as np

#: The paper's token pattern: runs of word characters and apostrophes, whole angle-bracket tags,
#: and single punctuation characters. Anything else is dropped.
WORD_PATTERN = re.compile(r"[\w']+|<[^<>]*>|[.,!?;:\"\/()_-]")


def split_words(text: str) -> list[str]:
    """Split text into the paper's word players.

    Args:
        text: normalised text (a question or one option).

    Returns:
        The tokens in order; characters outside the pattern (``& % + $ …``, curly quotes) vanish.
    """
    return WORD_PATTERN.findall(text)


def join_words(words: Sequence[str], keep: Sequence[bool] | np.ndarray | None = None) -> str:
    """Re-join words as the paper does: a masked word becomes one space, then ``' '.join``.

    So even unmasked text is the re-joined token string ("sacks." -> "sacks ."), and a masked
    word leaves three spaces between its neighbours.
    """
    if keep is None:
        return " ".join(words)
    return " ".join(w if k else " " for w, k in zip(words, keep))


def option_letter(k: int) -> str:
    """The letter of option ``k`` in prompts: 0 -> ``A``, 1 -> ``B``, …"""
    return chr(ord("A") + k)


# ---------------------------------------------------------------------------------------------
# HD-EPIC tags
# ---------------------------------------------------------------------------------------------

_TIME_TAG = re.compile(r"<TIME\s+([\d:.]+)\s+(.+?)>")
_BBOX_TAG = re.compile(r"<BBOX\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*>")
#: HD-EPIC bounding boxes are given in pixels of 1408-pixel frames; prompts use a 1000 grid.
HD_EPIC_IMAGE_SIZE = 1408.0


def clock_seconds(text: str) -> int:
    """``HH:MM:SS.fff`` (or ``MM:SS``/``SS``) -> whole seconds, truncated as the paper does."""
    parts = [float(p) for p in text.split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return int(seconds)


def _format_clock(seconds: float) -> str:
    # time.gmtime as the paper: floors, and wraps negative times (-12 s -> "59:48")
    fmt = "%H:%M:%S" if seconds >= 3600 else "%M:%S"
    return _time.strftime(fmt, _time.gmtime(seconds))


def parse_tags(text: str, stride: float, window_starts: dict[str, float] | None = None) -> str:
    """Rewrite HD-EPIC ``<TIME …>`` and ``<BBOX …>`` tags as the paper's ``parse_tags``.

    Args:
        text: the (masked) prompt text.
        stride: seconds per sampled frame (:attr:`~vqa_shap.protocol.FramePlan.stride`).
        window_starts: input label -> window start (s) for inputs that have one; a tag's time is
            taken relative to its input's start (both truncated to whole seconds).

    Returns:
        The text with ``<TIME t key>`` -> ``MM:SS`` of ``(int(t) - int(start)) / stride`` and
        ``<BBOX a b c d>`` -> ``(a', b', c', d')`` with ``v' = int(v / 1408 * 1000)``.
    """
    window_starts = window_starts or {}

    def time_tag(match: re.Match) -> str:
        seconds = clock_seconds(match.group(1))
        start = window_starts.get(match.group(2))
        if start is not None:
            seconds -= int(start)
        return _format_clock(seconds / stride)

    def bbox_tag(match: re.Match) -> str:
        coords = [int(float(v) / HD_EPIC_IMAGE_SIZE * 1000) for v in match.groups()]
        return "(" + ", ".join(str(c) for c in coords) + ")"

    return _BBOX_TAG.sub(bbox_tag, _TIME_TAG.sub(time_tag, text))
