"""Adaptive Keyframe Sampling (AKS; Tang et al., CVPR 2025) for ``--sampler aks``: keep the candidate
frames that maximise relevance to the prompt plus coverage of the video.

:func:`aks_select` is the paper's judge-and-split recursion (exactly ``k`` frames for any ``k``);
relevance comes from a :class:`RelevanceScorer` (one hot method, ``score``): the explained model
(:class:`ModelScorer`) or a local CLIP/SigLIP folder (:class:`ClipScorer`, ``--aks-scorer clip:PATH``).
:func:`plan_aks` turns a protocol's candidates into the kept frames. Parameters and how this departs
from the official code: docs/shots.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vqa_shap.errors import VqaShapError

__all__ = ["AksError", "aks_select", "RelevanceScorer", "ModelScorer", "ClipScorer", "parse_scorer", "make_scorer",
           "plan_aks", "CANDIDATES_PER_FRAME", "SCORERS"]

#: Candidates scored per kept frame (``--sampler aks`` with ``--frames 8`` scores 32 candidates).
CANDIDATES_PER_FRAME = 4
DEFAULT_THRESHOLD = 0.8
DEFAULT_DEPTH = 5


class AksError(VqaShapError, ValueError):
    """Scores or settings AKS cannot work with."""


def _top(scores: np.ndarray, m: int) -> np.ndarray:
    """Positions of the ``m`` largest scores (ties: the earlier frame), ascending."""
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[:m])


def aks_select(scores: Sequence[float], k: int, *, threshold: float = DEFAULT_THRESHOLD,
               depth: int = DEFAULT_DEPTH) -> list[int]:
    """The AKS selection: positions of the ``k`` kept candidates (ascending).

    Args:
        scores: relevance of each candidate frame to the prompt, in time order.
        k: frames to keep (the paper's ``M``); all candidates when there are no more than ``k``.
        threshold: ``s_thr``: a segment whose ``s_top - s_all`` exceeds it keeps its top frames.
        depth: ``L``: the most times a segment is split.

    Raises:
        AksError: empty or non-finite scores, ``k < 1`` or ``depth < 0``.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise AksError(f"AKS needs finite relevance scores for at least one frame, got {s.tolist()}")
    if int(k) != k or k < 1 or int(depth) != depth or depth < 0:
        raise AksError(f"AKS needs k >= 1 and depth >= 0, got k={k!r}, depth={depth!r}")
    if s.size <= k:
        return list(range(s.size))
    span = s.max() - s.min()
    s = (s - s.min()) / span if span > 0 else np.zeros_like(s)
    kept: list[int] = []
    stack = [(0, s.size, int(k), 0)]  # (start, end, budget, level); invariant: end - start >= budget
    while stack:
        a, b, m, level = stack.pop()
        seg = s[a:b]
        peaked = np.sort(seg)[::-1][:m].mean() - seg.mean() > threshold
        if m == 1 or level >= depth or peaked:
            kept += (a + _top(seg, m)).tolist()
            continue
        mid = a + (b - a) // 2
        stack += [(mid, b, m - m // 2, level + 1), (a, mid, m // 2, level + 1)]
    return sorted(kept)


class RelevanceScorer:
    """Base class: relevance of candidate frames to a question (higher = more relevant)."""

    name: str = ""

    def score(self, question, frames: Sequence[np.ndarray], plan) -> np.ndarray:
        """``float[len(plan)]``: one relevance per frame of ``plan``.

        Args:
            question: the :class:`~vqa_shap.schema.records.Question`.
            frames: decoded frames, one uint8 ``[T, H, W, 3]`` array per kept input (as
                :meth:`~vqa_shap.protocol.Protocol.load_frames` returns).
            plan: the candidates' :class:`~vqa_shap.protocol.FramePlan`.
        """
        raise NotImplementedError


@dataclass
class ModelScorer(RelevanceScorer):
    """Relevance from the explained model itself: its confidence when shown one candidate alone.

    A candidate's relevance is the largest option probability (softmax of the loader's option
    scores) with the whole question and only that frame kept, so frames that let the model commit
    to an answer rank first. Works with every loader (it only calls ``prepare`` and ``score``);
    costs one model row per candidate.

    Attributes:
        loader: a loaded :class:`vqa_shap.loaders.bases.loader.Loader`.
        protocol: the protocol that renders the prompt.
    """

    loader: object
    protocol: object
    name = "model"

    def score(self, question, frames, plan) -> np.ndarray:
        prepared = self.loader.prepare(question, frames, plan, self.protocol)
        n_video = self.protocol.n_video_players(plan, self.loader.temporal_unit)
        if n_video != len(plan):
            raise AksError(f"the model scorer needs one video player per frame; {self.loader.family} "
                           f"groups {self.loader.temporal_unit} frames per player")
        masks = np.ones((n_video, prepared.n_features), dtype=bool)
        masks[:, :n_video] = np.eye(n_video, dtype=bool)
        logits = np.asarray(self.loader.score(prepared, masks), dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return probs.max(axis=1)


def _pooled(output):
    """Projected embeddings from ``get_*_features`` (a tensor in transformers 4, an output whose
    ``pooler_output`` holds them in transformers 5)."""
    return getattr(output, "pooler_output", output)


@dataclass
class ClipScorer(RelevanceScorer):
    """Relevance = cosine similarity between a frame's and the question's embeddings in an
    image-text model (CLIP, SigLIP: any transformers model with ``get_image_features`` and
    ``get_text_features``), the paper's setting.

    The text is the question, or with ``with_options`` the question followed by its options.
    Load one with :meth:`load` from a local ``save_pretrained`` folder (model + processor).

    Attributes:
        model: the image-text model (eval mode).
        processor: its processor (tokenizer + image processor).
        with_options: append the options to the question text.
        batch_size: frames per forward of the vision tower.
    """

    model: object
    processor: object
    with_options: bool = False
    batch_size: int = 16
    name = "clip"

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None, **kw) -> "ClipScorer":
        """Load the model and processor saved in folder ``path`` (float32, on ``device``; default CPU).

        Raises:
            AksError: ``path`` is not a folder, or its model has no image and text embeddings.
        """
        from transformers import AutoModel, AutoProcessor

        folder = Path(path)
        if not folder.is_dir():
            raise AksError(f"{folder}: CLIP scorer folder not found (give a save_pretrained folder)")
        try:
            model = AutoModel.from_pretrained(folder).eval()
        except (OSError, ValueError, KeyError) as exc:  # no weights, unknown architecture, ...
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AksError(f"{folder}: cannot load the CLIP scorer: {reason}") from None
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise AksError(f"{folder}: {type(model).__name__} has no image and text embeddings "
                           "(the CLIP scorer needs a CLIP- or SigLIP-like model)")
        return cls(model.to(device or "cpu"), AutoProcessor.from_pretrained(folder), **kw)

    def text(self, question) -> str:
        """The text the frames are compared with."""
        return " ".join([question.question, *question.options]) if self.with_options else question.question

    def score(self, question, frames, plan) -> np.ndarray:
        import torch

        images = [frame for video in frames for frame in np.asarray(video)]
        if len(images) != len(plan):
            raise AksError(f"the CLIP scorer got {len(images)} frames for {len(plan)} candidates")
        # SigLIP was trained on max_length padding; CLIP pools at the end-of-text token either way
        padding = "max_length" if "siglip" in getattr(self.model.config, "model_type", "") else True
        device = self.model.device
        with torch.no_grad():
            text = self.processor(text=[self.text(question)], padding=padding, truncation=True, return_tensors="pt")
            t = _pooled(self.model.get_text_features(**{k: v.to(device) for k, v in text.items()}))
            t = torch.nn.functional.normalize(t.float(), dim=-1)
            cosines = []
            for i in range(0, len(images), self.batch_size):
                pixels = self.processor(images=images[i:i + self.batch_size], return_tensors="pt")["pixel_values"]
                v = _pooled(self.model.get_image_features(pixel_values=pixels.to(device, self.model.dtype)))
                cosines.append(torch.nn.functional.normalize(v.float(), dim=-1) @ t[0])
        return torch.cat(cosines).cpu().numpy().astype(np.float64)


#: Scorer kinds of ``--aks-scorer``: ``model`` (no argument) and ``clip:PATH``.
SCORERS = ("model", "clip")


def parse_scorer(spec: str | None) -> tuple[str, str | None]:
    """``(kind, path)`` from an ``--aks-scorer`` value: ``model`` (or ``None``) or ``clip:PATH``.

    Raises:
        AksError: an unknown kind, a missing path, or a path that is not a folder.
    """
    if spec is None or spec == "model":
        return "model", None
    kind, _, path = str(spec).partition(":")
    if kind not in SCORERS or kind == "model":
        raise AksError(f"unknown AKS scorer {spec!r}; valid: model, clip:PATH")
    if not path:
        raise AksError(f"AKS scorer {spec!r} needs a folder: clip:PATH")
    if not Path(path).is_dir():
        raise AksError(f"AKS scorer {spec!r}: {path} is not a folder (give a save_pretrained CLIP/SigLIP folder)")
    config = Path(path) / "config.json"
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        model_type = None
    if not model_type:
        raise AksError(f"AKS scorer {spec!r}: {config} is missing or not a model config (no 'model_type'); "
                       "give a save_pretrained CLIP/SigLIP folder")
    return kind, path


def make_scorer(spec: str | None, loader, protocol) -> RelevanceScorer:
    """The scorer an ``--aks-scorer`` value names (the CLIP model on the explained model's device)."""
    kind, path = parse_scorer(spec)
    if kind == "model":
        return ModelScorer(loader, protocol)
    return ClipScorer.load(path, device=str(loader.device))


def plan_aks(protocol, question, video_root: str | Path, n_frames: int, scorer: RelevanceScorer, *,
             loader_family: str | None = None, candidates: int | None = None,
             threshold: float = DEFAULT_THRESHOLD, depth: int = DEFAULT_DEPTH):
    """``(plan, scores)``: the AKS frame plan of ``question`` and its candidates' relevance.

    Candidates are ``candidates`` (default ``CANDIDATES_PER_FRAME * n_frames``) frames per input
    taken uniformly (the ``aks`` entry of the sampler table); :func:`aks_select` keeps ``n_frames``
    of them over the question's candidate sequence.
    """
    from vqa_shap.protocol.base import FramePlan

    n_candidates = int(candidates or CANDIDATES_PER_FRAME * n_frames)
    pool = protocol.plan_frames(question, Path(video_root), n_candidates, sampler="aks",
                                loader_family=loader_family)
    if len(pool) == 0:
        return pool, np.zeros(0)
    scores = np.asarray(scorer.score(question, protocol.load_frames(question, Path(video_root), pool), pool),
                        dtype=np.float64)
    if scores.shape != (len(pool),):
        raise AksError(f"{scorer.name} scorer returned {scores.shape} scores for {len(pool)} candidates")
    kept = aks_select(scores, n_frames, threshold=threshold, depth=depth)
    return FramePlan(tuple(pool.frames[i] for i in kept), stride=pool.stride), scores
