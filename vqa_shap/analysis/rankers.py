"""The frame rankers (:data:`RANKERS`): ``shapley``, ``uniform``, ``random`` and ``gemini`` (the paper's prompt).

Part of the frame-ranking analysis (:mod:`vqa_shap.analysis.ranking`, which re-exports these names and
documents each ranker).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from vqa_shap.analysis.agreement import RankingError, parse_frame_ranking, shapley_frame_ranking
from vqa_shap.atomic_files import atomic_write_json
from vqa_shap.registry import Registry
from vqa_shap.schema.records import Attribution, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol.base import FramePlan, Protocol

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
        from vqa_shap.protocol.words import option_letter as _letter

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
    "gemini": "vqa_shap.analysis.rankers:GeminiRanker",
    "shapley": "vqa_shap.analysis.rankers:ShapleyRanker",
    "uniform": "vqa_shap.analysis.rankers:UniformRanker",
    "random": "vqa_shap.analysis.rankers:RandomRanker",
}, base="vqa_shap.analysis.rankers:Ranker")


def get_ranker(name: str, **options: Any) -> Ranker:
    """Instantiate the ranker registered as ``name`` with ``options``."""
    return RANKERS.get(name)(**options)
