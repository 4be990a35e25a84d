"""Frame-ranking agreement: Gemini's frame ranking vs the Shapley ranking (docs/analysis.md).

A *ranking* is the ordered tuple of video-player ids, most important first (ids are positions among
a question's video players, ``0 … n−1``; for frame-pair players one id per pair). Rankers
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

import json
import logging
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from vqa_shap.errors import VqaShapError
from vqa_shap.io import atomic_write_json
from vqa_shap.registry import Registry
from vqa_shap.schema import Attribution, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol import FramePlan, Protocol

log = logging.getLogger(__name__)

#: The paper's Gemini model.
DEFAULT_GEMINI_MODEL = "gemini-2.5-pro"
#: Environment variables the Gemini API key is read from (first set wins).
API_KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

#: The paper's system instruction. The braces are literal text except ``{n}``.
SYSTEM_INSTRUCTION = (
    "You will be given frames from a video and a question with multiple-choice answer options.\n"
    "frame_0: {{frame 0}} ,... ,frame_n-1:{{frame n-1}}\n"
    "Question: {{question}}\n"
    "Options: {{answer choices}}\n"
    "You do not need to answer the question; return a comma separated list of frame ids in the order "
    "of their importance for answering the above question. Order the frame ids by importance, do not "
    "leave them in chronological order. Respond with exactly {n} frame ids, returning only this comma "
    "separated list and excluding all other textual output."
)
#: The last text part of the contents.
CONTENTS_TAIL = "The ordered list of frames for answering this multiple choice question is: "


class RankingError(VqaShapError):
    """A ranking could not be produced or parsed (the message says which question and why)."""


# --------------------------------------------------------------------------------------------
# parsing and agreement (pure)


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
    """Video players by |φ| of the ground-truth column, descending; ties in chronological order."""
    video = np.flatnonzero(attribution.modality_mask("video"))
    if attribution.error is not None:
        raise RankingError(f"{attribution.qid}: the attribution has an error: {attribution.error}")
    values = np.abs(np.asarray(attribution.shapley, dtype=np.float64)[video, attribution.answer])
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


# --------------------------------------------------------------------------------------------
# rankers


@dataclass(frozen=True)
class RankItem:
    """What a ranker may look at for one question.

    Attributes:
        qid: the question id.
        n: number of video players (frames) to rank.
        attribution: the question's attribution (``shapley`` needs it).
        question: the question (``gemini`` needs it).
        frames: one RGB uint8 ``[H, W, 3]`` image per video player (``gemini`` needs them).
        plan: the frame plan (HD-EPIC tags in the Gemini prompt use its stride).
    """

    qid: str
    n: int
    attribution: Attribution | None = None
    question: Question | None = None
    frames: Sequence[np.ndarray] | None = None
    plan: "FramePlan | None" = None


class Ranker:
    """Base class of frame rankers: checks the result is a ranking and converts it to ints.

    Subclasses implement :meth:`rank_item` (one question -> ordered ids, or ``None`` when the
    ranker has no answer, e.g. Gemini returned nothing).
    """

    name: str = ""
    #: Whether :meth:`rank_item` needs decoded frames.
    needs_frames: bool = False

    def rank(self, item: RankItem) -> tuple[int, ...] | None:
        """The ranking of ``item``'s frames (most important first), or ``None``."""
        ranking = self.rank_item(item)
        if ranking is None:
            return None
        ranking = tuple(int(i) for i in ranking)
        if not set(range(item.n)) <= set(ranking):
            raise RankingError(f"{item.qid}: ranker {self.name!r} did not rank every frame 0…{item.n - 1}")
        return ranking

    def rank_item(self, item: RankItem) -> Sequence[int] | None:
        raise NotImplementedError


class ShapleyRanker(Ranker):
    """|φ| of the ground-truth option, descending (stable ties)."""

    name = "shapley"

    def rank_item(self, item: RankItem) -> Sequence[int]:
        if item.attribution is None:
            raise RankingError(f"{item.qid}: the shapley ranker needs the attribution")
        return shapley_frame_ranking(item.attribution)


class UniformRanker(Ranker):
    """Chronological order: every frame equally important, ties kept in time order."""

    name = "uniform"

    def rank_item(self, item: RankItem) -> Sequence[int]:
        return range(item.n)


class RandomRanker(Ranker):
    """A random permutation per question, seeded by ``seed`` and the qid (reproducible, order-free)."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def rank_item(self, item: RankItem) -> Sequence[int]:
        rng = np.random.default_rng([self.seed, zlib.crc32(item.qid.encode("utf-8"))])
        return rng.permutation(item.n)


class GeminiRanker(Ranker):
    """Gemini's frame ranking with the paper's prompt.

    Args:
        client: an object with ``client.models.generate_content(model=, contents=, config=)``
            returning a response with ``.text`` — a ``google.genai.Client`` (built from the API key in
            ``GEMINI_API_KEY``/``GOOGLE_API_KEY`` when omitted) or any stand-in (tests use a fake).
        model: the Gemini model name.
        cache_dir: folder of ``<qid>.json`` files ``{qid: text | null}``; cached texts are reused,
            ``null`` is asked again. ``None`` disables the cache.
        protocol: the protocol whose text normalisation the prompt uses (default ``pollard2025``).
        thinking_budget: passed as the thinking config when set (the paper's flash variant used 0).
    """

    name = "gemini"
    needs_frames = True

    def __init__(self, client: Any = None, model: str = DEFAULT_GEMINI_MODEL,
                 cache_dir: Path | str | None = None, protocol: "Protocol | None" = None,
                 thinking_budget: int | None = None):
        self._client = client
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._protocol = protocol
        self.thinking_budget = thinking_budget
        self.requests = 0  # API calls made (cache hits excluded)

    # -- pieces of the request ---------------------------------------------------------------
    @property
    def protocol(self) -> "Protocol":
        if self._protocol is None:
            from vqa_shap.protocol import get_protocol

            self._protocol = get_protocol("pollard2025")
        return self._protocol

    def client(self) -> Any:
        """The client (built lazily from the environment's API key; the key is never logged)."""
        if self._client is None:
            key = next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)
            if key is None:
                raise RankingError(f"the gemini ranker needs an API key in {' or '.join(API_KEY_VARIABLES)}")
            try:
                from google import genai
            except ImportError:
                raise RankingError("the gemini ranker needs google-genai: pip install 'vqa-shap[gemini]'") from None
            self._client = genai.Client(api_key=key)
        return self._client

    def question_block(self, question: Question, plan: "FramePlan | None") -> str:
        """``Question:\\n…\\nOptions:\\n(A) …\\n`` with the protocol's normalised, unmasked text
        (HD-EPIC tags rewritten with the plan's stride)."""
        from vqa_shap.protocol import _letter

        proto = self.protocol
        text = proto.normalise_question(question)
        options = "".join(f"({_letter(k)}) {proto.normalise_option(question, o)}\n"
                          for k, o in enumerate(question.options))
        return proto.rewrite(question, plan, f"Question:\n{text}\nOptions:\n{options}")

    def contents(self, question: Question, frames: Sequence[np.ndarray], plan: "FramePlan | None") -> list:
        """``frame_<i>: `` labels interleaved with the frames (PIL images), the question block, the tail."""
        from PIL import Image

        parts: list = []
        for i, frame in enumerate(frames):
            parts += [f"frame_{i}: ", Image.fromarray(np.asarray(frame, dtype=np.uint8))]
        parts += [self.question_block(question, plan), CONTENTS_TAIL]
        return parts

    def config(self, n: int) -> Any:
        """The request config: ``google.genai.types.GenerateContentConfig`` when google-genai is
        installed, else the equivalent plain dict (which the SDK accepts as well)."""
        system = SYSTEM_INSTRUCTION.format(n=n)
        thinking = None if self.thinking_budget is None else {"thinking_budget": int(self.thinking_budget)}
        try:
            from google.genai import types
        except ImportError:
            types = None
        if getattr(types, "GenerateContentConfig", None) is None:
            config: dict[str, Any] = {"system_instruction": system}
            if thinking is not None:
                config["thinking_config"] = thinking
            return config
        kwargs: dict[str, Any] = {"system_instruction": system}
        if thinking is not None:
            kwargs["thinking_config"] = types.ThinkingConfig(**thinking)
        return types.GenerateContentConfig(**kwargs)

    # -- cache -------------------------------------------------------------------------------
    def _cache_path(self, qid: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', qid)}.json"

    def cached_text(self, qid: str) -> str | None:
        """The cached raw answer of ``qid`` (``None`` if absent or null)."""
        path = self._cache_path(qid)
        if path is None or not path.exists():
            return None
        return json.loads(path.read_text()).get(qid)

    def _store(self, qid: str, text: str | None) -> None:
        path = self._cache_path(qid)
        if path is None:
            return
        atomic_write_json(path, {qid: text}, mkdir=True, ensure_ascii=False)

    def check_ready(self, qids: Sequence[str]) -> None:
        """Fail early (no API key, google-genai missing) when any of ``qids`` has no cached answer."""
        if any(self.cached_text(q) is None for q in qids):
            self.client()

    # -- the hot method ----------------------------------------------------------------------
    def ask(self, item: RankItem) -> str | None:
        """The raw answer for ``item`` (from the cache, else one API call, then cached)."""
        text = self.cached_text(item.qid)
        if text is not None:
            return text
        if item.question is None or item.frames is None:
            raise RankingError(f"{item.qid}: the gemini ranker needs the question and its frames")
        if len(item.frames) != item.n:
            raise RankingError(f"{item.qid}: {len(item.frames)} frames for {item.n} players")
        response = self.client().models.generate_content(
            model=self.model, contents=self.contents(item.question, item.frames, item.plan),
            config=self.config(item.n))
        self.requests += 1
        text = getattr(response, "text", None)
        self._store(item.qid, text)
        return text

    def rank_item(self, item: RankItem) -> Sequence[int] | None:
        return parse_frame_ranking(self.ask(item), item.n)


#: The frame rankers.
RANKERS: Registry[Ranker] = Registry("ranker", {
    "gemini": "vqa_shap.analysis.ranking:GeminiRanker",
    "shapley": "vqa_shap.analysis.ranking:ShapleyRanker",
    "uniform": "vqa_shap.analysis.ranking:UniformRanker",
    "random": "vqa_shap.analysis.ranking:RandomRanker",
}, base="vqa_shap.analysis.ranking:Ranker")


def get_ranker(name: str, **options: Any) -> Ranker:
    """Instantiate the ranker registered as ``name`` with ``options``."""
    return RANKERS.get(name)(**options)


# --------------------------------------------------------------------------------------------
# running over a dataset


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
                  temporal_unit: int = 1) -> list[np.ndarray]:
    """One image per video player: the first frame of each player's group (all frames for unit 1)."""
    flat = [f for per_input in frames for f in per_input]
    return [flat[g[0]] for g in protocol.frame_groups(plan, temporal_unit)]


def rank_questions(attributions: Sequence[Attribution], ranker: Ranker, reference: Ranker, *,
                   questions: Mapping[str, Question] | None = None, protocol: "Protocol | None" = None,
                   video_root: Path | str | None = None, n_frames: int | None = None,
                   sampler: str | None = None, temporal_unit: int = 1, progress: bool = True) -> list[RankResult]:
    """Rank every explained question's frames with two rankers and measure their agreement.

    Frames are decoded (with the protocol, re-planned as the attribution was: ``n_frames``,
    ``sampler`` and the attribution's loader family) only when a ranker needs them. A question that
    fails is recorded with its ``error``; the run goes on.
    """
    from tqdm.auto import tqdm

    from vqa_shap.analysis.maskbench import frame_count, plan_for_attribution

    needs_frames = ranker.needs_frames or reference.needs_frames
    if needs_frames and (questions is None or video_root is None):
        raise RankingError(f"ranker {ranker.name if ranker.needs_frames else reference.name!r} needs "
                           "frames: give the questions and a video root")
    if needs_frames and protocol is None:
        from vqa_shap.protocol import get_protocol

        protocol = get_protocol("pollard2025")
    if n_frames is None:
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
                plan, _ = plan_for_attribution(protocol, question, attr, video_root, n_frames,
                                               loader_family=attr.loader or None, temporal_unit=temporal_unit,
                                               sampler=sampler)
                frames = player_frames(protocol.load_frames(question, Path(video_root), plan), protocol, plan,
                                       temporal_unit)
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
