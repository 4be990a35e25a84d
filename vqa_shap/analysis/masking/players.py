"""The players of an attribution, rebuilt: re-plan its frames, re-detect its shots, check they match.

``mask-bench``, ``rank`` and the per-question report work on the frames an attribution was computed
on. :func:`plan_for_attribution` re-plans them as explain did (same frame count, sampler and loader
family) and, for ``explain --players shots`` attributions, re-detects the shots with the detector
the attribution was computed with and rebuilds the shot players and the Game's player groups through
the code explain uses (:func:`vqa_shap.long_video.shots.shot_layout`). The rebuilt players must equal the
attribution's (names, modalities, times), so a changed video, frame count, sampler or detector is a
clear per-question error naming the first player that differs. Every name here is importable from
:mod:`vqa_shap.analysis.masking.experiment` too.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from vqa_shap.analysis.masking.masks import MaskBenchError
from vqa_shap.schema.records import Attribution, Feature, Question
from vqa_shap.long_video.shots import has_shot_players

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol.base import FramePlan, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttributionPlayers:
    """The re-planned frames of an attribution and its players.

    Attributes:
        plan: the frame plan.
        features: ``protocol.features(question, plan, temporal_unit)``: what the loader masks
            (one entry per video feature, then the words).
        players: the attribution's players, rebuilt (``features`` for frame players; shot players
            then the words for ``--players shots``).
        groups: for each player the indices of the ``features`` it masks together (the Game's
            player groups); ``None`` when every feature is a player.
    """

    plan: "FramePlan"
    features: tuple[Feature, ...]
    players: tuple[Feature, ...]
    groups: tuple[tuple[int, ...], ...] | None = None


def frame_count(attributions: Iterable[Attribution], temporal_unit: int = 1) -> int:
    """The frame count to plan with: the largest number of video players × temporal unit.

    Questions with short windows get fewer frames than requested, so the maximum over the rows
    recovers the ``--frames`` the attributions were computed with (checked per question by
    :func:`plan_for_attribution`).

    Raises:
        MaskBenchError: the attributions have shot players, whose number does not tell the frames.
    """
    attributions = [a for a in attributions if a.error is None]
    shots = next((a for a in attributions if has_shot_players(a.features)), None)
    if shots is not None:
        raise MaskBenchError(f"question {shots.qid!r} has shot players, whose count does not tell how many frames "
                             "were sampled; pass --frames (the explain run's)")
    counts = [sum(f.modality == "video" for f in a.features) for a in attributions]
    return max(counts, default=0) * int(temporal_unit)


def temporal_unit_of(features: Sequence[Feature]) -> int:
    """Frames per video player, read from the player names (``frame_<i>-<j>`` groups; 1 otherwise)."""
    unit = 1
    for f in features:
        match = re.fullmatch(r"frame_(\d+)-(\d+)", f.name) if f.modality == "video" else None
        if match:
            unit = max(unit, int(match.group(2)) - int(match.group(1)) + 1)
    return unit


def shot_detector_of(attributions: Sequence[Attribution], recorded: Mapping[str, Any],
                     override: str | None = None) -> str | None:
    """The shot detector to rebuild shot players with: ``override``, else the one the attributions
    card records (``explain --players shots`` records it), else the default detector (logged, since
    another detector may cut elsewhere); ``None`` when no attribution has shot players.

    Returns:
        The detector's spec (its name, or ``transnetv2:PATH``), as :func:`vqa_shap.long_video.shots.get_detector` takes it.

    Raises:
        vqa_shap.long_video.shots.ShotError: an unknown detector name (the message lists the valid ones), or a
            recorded detector that needs a weights file this machine does not have at that name.
    """
    from vqa_shap.long_video.shot_detector import ShotError
    from vqa_shap.long_video.shots import default_detector, get_detector

    if not any(has_shot_players(a.features) for a in attributions if a.error is None):
        return None
    if override is not None:
        return get_detector(override).spec  # the spec, not the name: transnetv2 keeps its weights file
    if recorded.get("shot_detector"):
        try:
            return get_detector(recorded["shot_detector"]).spec
        except ShotError as exc:  # the card names a weights file, not its path (transnetv2:<file>)
            raise ShotError(f"{exc} (the attributions card records shot detector "
                            f"{recorded['shot_detector']!r}; pass --shot-detector)") from exc
    name = default_detector()
    log.warning("the attributions have shot players but their card records no shot detector; re-detecting the "
                "shots with %r (pass --shot-detector to choose)", name)
    return name


def plan_for_attribution(protocol: "Protocol", question: Question, attribution: Attribution,
                         video_root: Path | str, n_frames: int, *, loader_family: str | None,
                         temporal_unit: int = 1, sampler: str | None = None, shot_detector: str | None = None,
                         shot_cache: str | os.PathLike | None = None) -> AttributionPlayers:
    """Re-plan the frames an attribution was computed on, rebuild its players and check they match.

    ``n_frames``, ``sampler``, ``loader_family`` and ``temporal_unit`` must be those the attribution
    was computed with; for shot players also ``shot_detector`` (``None``: the default detector).

    Args:
        shot_cache: folder caching shot boundaries (as explain's), or ``None``.

    Raises:
        MaskBenchError: ``--sampler aks`` (its frames cannot be re-planned without its scorer), or
            the rebuilt players differ from the attribution's (names, modalities or times), e.g.
            another frame count, sampler or shot detector was used or the video changed.
    """
    if sampler == "aks":
        raise MaskBenchError(f"question {question.qid!r}: --sampler aks frames cannot be re-planned "
                             "(AKS picks them with its relevance scorer)")
    plan = protocol.plan_frames(question, Path(video_root), n_frames, sampler=sampler, loader_family=loader_family)
    features = tuple(protocol.features(question, plan, temporal_unit))
    if not has_shot_players(attribution.features):
        check_features(features, attribution.features, what=f"question {question.qid!r}")
        return AttributionPlayers(plan, features, features)
    from vqa_shap.long_video.shots import shot_layout

    players, groups = shot_layout(protocol, question, plan, features, temporal_unit, video_root,
                                  detector=shot_detector, cache_dir=shot_cache)
    check_features(players, attribution.features, what=f"question {question.qid!r}",
                   hint="the video changed, or another --frames, --sampler or --shot-detector?")
    return AttributionPlayers(plan, features, tuple(players), tuple(tuple(g) for g in groups))


def _describe(f: Feature) -> str:
    return f"{f.name!r} ({f.modality}, option {f.option}, t={f.time})"


def check_features(ours: Sequence[Feature], theirs: Sequence[Feature], *, what: str,
                   same_options: bool = True, hint: str = "another --frames or loader?") -> None:
    """Raise :class:`MaskBenchError` unless two player lists agree (name, modality, time, and the
    option index of answer words unless ``same_options`` is false); the message names the first
    player that differs."""
    def same(a: Feature, b: Feature) -> bool:
        same_time = (a.time is None or b.time is None) or abs(float(a.time) - float(b.time)) < 1e-6
        return (a.name, a.modality) == (b.name, b.modality) and same_time and (a.option == b.option or not same_options)

    first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if not same(a, b)), None)
    if len(ours) != len(theirs):
        i = min(len(ours), len(theirs)) if first is None else first
        pair = (f"protocol {_describe(ours[i]) if i < len(ours) else 'none'} vs attribution "
                f"{_describe(theirs[i]) if i < len(theirs) else 'none'}")
        raise MaskBenchError(f"{what}: the protocol gives {len(ours)} features but the attribution has "
                             f"{len(theirs)} ({hint}); the first that differs is {i}: {pair}")
    if first is not None:
        raise MaskBenchError(f"{what}: feature {first} differs: protocol {_describe(ours[first])} vs attribution "
                             f"{_describe(theirs[first])} ({hint})")
