"""Frame-ranking agreement: Gemini's frame ranking vs the Shapley ranking (docs/analysis.md).

A *ranking* is the ordered tuple of video-player ids, most important first (ids are positions among
a question's video players, ``0 … n−1``; for frame-pair players one id per pair, for shot players
one id per shot). Rankers
(:data:`RANKERS`, one hot method :meth:`Ranker.rank_item`):

* ``shapley`` — |φ| of the ground-truth option, descending; ties keep chronological order (a
  stable sort; the paper used pandas' default quicksort, whose tie order is unspecified);
* ``gemini`` — asks a Gemini model (default the paper's ``gemini-2.5-pro``) with the paper's system
  instruction and contents, and repairs its answer as the paper does (:func:`parse_frame_ranking`).
  Raw answers are cached per question on disk as ``{qid: text | null}``; ``null`` is retried on the
  next run, so reruns never pay twice;
* ``uniform`` — chronological order (every frame equally important, ties kept in time order);
* ``random`` — a seeded random permutation per question.

Agreement between two rankings (:func:`rank_agreement`): the textbook Spearman ρ and Kendall τ
between the two per-frame ranks (scipy), and the paper's *position-wise* Spearman — pandas'
``Series.corr(method="spearman")`` applied to the two ordered id lists — for parity with its plots
(defined only when n > 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

# the pure ranking/agreement functions and the rankers live in their own modules; re-exported here
from vqa_shap.analysis.agreement import Agreement, RankingError, rank_agreement
from vqa_shap.analysis.rankers import GeminiRanker, Ranker, RankItem
from vqa_shap.errors import VqaShapError
from vqa_shap.schema.records import Attribution, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol.base import FramePlan, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankResult:
    """One question's two rankings and their agreement (``error`` set when either failed)."""

    qid: str
    benchmark: str
    task: str
    model: str
    ranker: str
    reference: str
    n: int
    ranking: tuple[int, ...] | None
    reference_ranking: tuple[int, ...] | None
    spearman: float | None = None
    kendall: float | None = None
    positionwise: float | None = None
    error: str | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "qid": self.qid, "benchmark": self.benchmark, "task": self.task, "model": self.model,
            "ranker": self.ranker, "reference": self.reference, "n": self.n,
            "ranking": None if self.ranking is None else list(self.ranking),
            "reference_ranking": None if self.reference_ranking is None else list(self.reference_ranking),
            "spearman": self.spearman, "kendall": self.kendall, "positionwise": self.positionwise,
            "error": self.error,
        }


def player_frames(frames: Sequence[np.ndarray], protocol: "Protocol", plan: "FramePlan",
                  temporal_unit: int = 1, groups: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
    """One image per video player.

    A frame player shows the first frame of its group (every frame for unit 1; the first of a
    frame pair), as the paper's Gemini prompt did. A shot player (``groups``: the Game's player
    groups of :func:`~vqa_shap.analysis.masking.experiment.plan_for_attribution`, video features first)
    shows the *middle* of the shot's sampled frames (the earlier of the two middle ones for an even
    count): every frame of a shot shows the same scene, and the middle one is the farthest from the
    cuts, where a detector's boundary can be a frame off or a gradual transition blends two shots.
    """
    flat = [f for per_input in frames for f in per_input]
    frame_groups = protocol.frame_groups(plan, temporal_unit)
    if groups is None:
        return [flat[g[0]] for g in frame_groups]
    out = []
    for members in groups:
        if members[0] >= len(frame_groups):  # a word: the video players come first
            break
        positions = [pos for m in members for pos in frame_groups[m]]
        out.append(flat[positions[(len(positions) - 1) // 2]])
    return out


def rank_questions(attributions: Sequence[Attribution], ranker: Ranker, reference: Ranker, *,
                   questions: Mapping[str, Question] | None = None, protocol: "Protocol | None" = None,
                   video_root: Path | str | None = None, n_frames: int | None = None,
                   sampler: str | None = None, temporal_unit: int = 1, shot_detector: str | None = None,
                   progress: bool = True) -> list[RankResult]:
    """Rank every explained question's video players with two rankers and measure their agreement.

    Frames are decoded (with the protocol, re-planned as the attribution was: ``n_frames``,
    ``sampler``, the attribution's loader family and ``temporal_unit``) only when a ranker needs
    them. Shot players (``explain --players shots``) are ranked like frames, one image per shot
    (:func:`player_frames`); their shots are re-detected with ``shot_detector`` and checked against
    the attribution's. A question that fails is recorded with its ``error``; the run goes on.
    """
    from tqdm.auto import tqdm

    from vqa_shap.analysis.masking.players import frame_count, plan_for_attribution

    needs_frames = ranker.needs_frames or reference.needs_frames
    if needs_frames and (questions is None or video_root is None):
        raise RankingError(f"ranker {ranker.name if ranker.needs_frames else reference.name!r} needs "
                           "frames: give the questions and a video root")
    if needs_frames and protocol is None:
        from vqa_shap.protocol import get_protocol

        protocol = get_protocol("pollard2025")
    if n_frames is None and needs_frames:
        n_frames = frame_count(attributions, temporal_unit)
    for r in (ranker, reference):
        if isinstance(r, GeminiRanker):
            r.check_ready([a.qid for a in attributions if a.error is None])
    results = []
    for attr in tqdm(attributions, desc=f"rank {ranker.name} vs {reference.name}", unit="q", disable=not progress):
        n = int(attr.modality_mask("video").sum()) if attr.features else 0
        rankings: list = [None, None]
        error = None
        try:
            if attr.error is not None:
                raise RankingError(f"the attribution has an error: {attr.error}")
            question = plan = frames = None
            if questions is not None:
                question = questions.get(attr.qid)
            if needs_frames:
                if question is None:
                    raise RankingError(f"question {attr.qid!r} is not in the questions dataset")
                layout = plan_for_attribution(protocol, question, attr, video_root, n_frames,
                                              loader_family=attr.loader or None, temporal_unit=temporal_unit,
                                              sampler=sampler, shot_detector=shot_detector)
                plan = layout.plan
                frames = player_frames(protocol.load_frames(question, Path(video_root), plan), protocol, plan,
                                       temporal_unit, layout.groups)
            item = RankItem(attr.qid, n, attr, question, frames, plan)
            rankings = [ranker.rank(item), reference.rank(item)]
            if rankings[0] is None or rankings[1] is None:
                missing = ranker.name if rankings[0] is None else reference.name
                raise RankingError(f"{missing} gave no ranking (null answer; retried on the next run)")
        except Exception as exc:  # noqa: BLE001 - recorded per question, the run goes on
            error = str(exc) if isinstance(exc, VqaShapError) else f"{type(exc).__name__}: {exc}"
            log.warning("rank: %s: %s", attr.qid, error)
        agreement = (rank_agreement(rankings[0], rankings[1], n) if error is None
                     else Agreement(n, None, None, None))
        results.append(RankResult(
            qid=attr.qid, benchmark=attr.benchmark, task=attr.task, model=attr.model, ranker=ranker.name,
            reference=reference.name, n=n, ranking=rankings[0], reference_ranking=rankings[1],
            spearman=agreement.spearman, kendall=agreement.kendall, positionwise=agreement.positionwise,
            error=error))
    return results


@dataclass(frozen=True)
class AgreementSummary:
    """Mean/median of each agreement statistic over the questions where it is defined."""

    n_questions: int
    n_errors: int
    stats: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)


def summarize_agreement(results: Sequence[RankResult]) -> AgreementSummary:
    """Mean, median and count of ``spearman``, ``kendall`` and ``positionwise`` over the results."""
    stats = {}
    for name in ("spearman", "kendall", "positionwise"):
        vals = np.array([getattr(r, name) for r in results if getattr(r, name) is not None], dtype=np.float64)
        stats[name] = {
            "n": int(vals.size),
            "mean": float(vals.mean()) if vals.size else None,
            "median": float(np.median(vals)) if vals.size else None,
        }
    return AgreementSummary(len(results), sum(r.error is not None for r in results), stats)


__all__ = ["RankResult", "player_frames", "rank_questions", "AgreementSummary", "summarize_agreement"]
