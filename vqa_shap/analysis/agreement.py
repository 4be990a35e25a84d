"""Frame rankings and their agreement (pure): parsing Gemini's answer, the Shapley ranking, Spearman/Kendall.

Part of the frame-ranking analysis (:mod:`vqa_shap.analysis.ranking`, which re-exports these names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vqa_shap.errors import VqaShapError
from vqa_shap.schema.records import Attribution, require_answer


class RankingError(VqaShapError):
    """A ranking could not be produced or parsed (the message says which question and why)."""


def parse_frame_ranking(text: str | None, n: int) -> tuple[int, ...] | None:
    """Parse and repair a raw Gemini answer as the paper does.

    * ``None`` (no answer) -> ``None``;
    * split on commas; if the text contains ``frame_``, each piece's id is the integer after
      ``frame_``, else ``int(piece)``; empty pieces (a trailing comma) are skipped;
    * repeated ids keep their first occurrence only; ids out of ``0…n−1`` are kept (as the paper);
    * ids of ``0…n−1`` that are missing are appended in ascending order.

    Raises:
        RankingError: a piece is not an id.
    """
    if text is None:
        return None
    prefixed = "frame_" in text
    ids: list[int] = []
    for piece in text.split(","):
        if not piece.strip():
            continue
        try:
            if prefixed:
                match = re.search(r"frame_(-?\d+)", piece)
                if match is None:
                    raise ValueError(piece)
                ids.append(int(match.group(1)))
            else:
                ids.append(int(piece))
        except ValueError:
            raise RankingError(f"cannot parse frame id {piece.strip()!r} in the answer {text[:200]!r}") from None
    ranking = list(dict.fromkeys(ids))  # first occurrence of each id, order kept
    seen = set(ranking)
    ranking += [i for i in range(n) if i not in seen]
    return tuple(ranking)


def shapley_frame_ranking(attribution: Attribution) -> tuple[int, ...]:
    """Video players by |φ| of the ground-truth column, descending; ties in chronological order.

    Raises:
        RankingError: an error row, or every frame has the same |φ| (e.g. all zero): the values rank no
            frame above another, and frame order would pass for a ranking (perfect agreement by ties).
    """
    video = np.flatnonzero(attribution.modality_mask("video"))
    if attribution.error is not None:
        raise RankingError(f"{attribution.qid}: the attribution has an error: {attribution.error}")
    answer = require_answer(attribution, "the Shapley frame ranking")
    values = np.abs(np.asarray(attribution.shapley, dtype=np.float64)[video, answer])
    if len(values) > 1 and np.all(values == values[0]):
        raise RankingError(f"{attribution.qid}: no information: all {len(values)} frames have |phi| = "
                           f"{values[0]:g} for the answer, so the Shapley values rank no frame above another")
    return tuple(int(i) for i in np.argsort(-values, kind="stable"))


def per_frame_ranks(ranking: Sequence[int], n: int) -> np.ndarray:
    """Rank position (0 = most important) of each frame ``0…n−1`` in ``ranking``.

    Ids outside ``0…n−1`` are ignored; frames the ranking lacks share the positions after it
    (as the paper's repair appends them in ascending order).
    """
    pos = np.full(n, -1, dtype=np.int64)
    k = 0
    for i in ranking:
        if 0 <= i < n and pos[i] < 0:
            pos[i] = k
            k += 1
    missing = np.flatnonzero(pos < 0)
    pos[missing] = k + np.arange(missing.size)
    return pos


@dataclass(frozen=True)
class Agreement:
    """Agreement of two frame rankings of one question (``None`` where undefined, e.g. n ≤ 1).

    Attributes:
        n: number of frames.
        spearman: textbook Spearman ρ between the per-frame ranks.
        kendall: Kendall τ (τ-b) between the per-frame ranks.
        positionwise: the paper's statistic: Spearman between the two ordered id lists, position by
            position (``pd.Series(a).corr(pd.Series(b), method="spearman")``).
    """

    n: int
    spearman: float | None
    kendall: float | None
    positionwise: float | None


def _finite(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def positionwise_spearman(a: Sequence[int], b: Sequence[int]) -> float | None:
    """The paper's correlation: pandas' Spearman of the two ordered id lists, index-aligned.

    Entries beyond the shorter list are dropped (pandas aligns on the index); ``None`` if undefined.
    """
    import pandas as pd

    return _finite(pd.Series(list(a), dtype="float64").corr(pd.Series(list(b), dtype="float64"),
                                                            method="spearman"))


def rank_agreement(a: Sequence[int], b: Sequence[int], n: int) -> Agreement:
    """Textbook Spearman/Kendall between per-frame ranks, and the paper's position-wise Spearman.

    Args:
        a, b: two rankings (ordered frame ids, most important first).
        n: the number of frames (ids ``0…n−1``).
    """
    if n <= 1:
        return Agreement(n, None, None, None)
    from scipy import stats

    ra, rb = per_frame_ranks(a, n), per_frame_ranks(b, n)
    return Agreement(
        n=n,
        spearman=_finite(stats.spearmanr(ra, rb).statistic),
        kendall=_finite(stats.kendalltau(ra, rb).statistic),
        positionwise=positionwise_spearman(a, b),
    )
