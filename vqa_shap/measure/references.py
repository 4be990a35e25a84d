"""Stored references for games without exact values: two independent high-budget halves.

Above F ≈ 20 no game can be enumerated, so a benchmark's truth is a high-budget estimate. It is
trusted only if its own error — estimated from two independent halves (different seeds), as
``‖h₁ − h₂‖ / 2`` relative to the mean of the halves — is below a third of the smallest error it is
used to measure. Each half is the mean of equal-budget *chunks* with their own seeds, so a reference
grows by adding chunks (any unbiased estimator, no prefix stability needed) until it is trusted. It is
stored as compact JSON named by the game's key (model digest + question digest), so benchmarks and
studies stop recomputing it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vqa_shap.atomic_files import atomic_write_text

__all__ = ["Reference", "reference_path", "load_reference", "save_reference", "start_reference", "extend_reference",
           "trust_reference", "grow_reference", "HALF_SEEDS"]

#: seeds of the two halves (far from the seeds 0..N-1 the benchmarks measure)
HALF_SEEDS = (1_000_001, 1_000_002)
#: seed step between a half's chunks (chunk 0 has the half's own seed)
CHUNK_SEED_STEP = 7919


@dataclass(frozen=True)
class Reference:
    """A stored high-budget reference of one game.

    Attributes:
        key: the game's key (model digest + question digest).
        description: what the game is.
        estimator: the spec of the (unbiased) estimator of both halves.
        budget: evaluations per half (``chunks`` chunks of ``budget // chunks``).
        seeds: the two halves' seeds (of their first chunk; chunk ``c`` adds ``c × 7919``).
        halves: ``[2][F][K]`` the two estimates.
        target_output: the output column benchmarks score.
        n_video: video players (the first ``n_video``).
        chunks: equal-budget chunks averaged in each half.
    """

    key: str
    description: str
    estimator: str
    budget: int
    seeds: tuple[int, int]
    halves: tuple
    target_output: int
    n_video: int
    chunks: int = 1

    @property
    def values(self) -> np.ndarray:
        """``float64[F, K]``: the mean of the two halves."""
        return np.mean(np.asarray(self.halves, dtype=np.float64), axis=0)

    @property
    def own_error(self) -> float:
        """Estimated relative L2 error of :attr:`values` (target output): ``‖h₁ − h₂‖ / 2 / ‖mean‖``."""
        return _half_gap(np.asarray(self.halves, dtype=np.float64)[:, :, self.target_output])

    @property
    def own_error_all(self) -> float:
        """As :attr:`own_error`, over every output column (Frobenius), as the pipeline benchmark's errors."""
        return _half_gap(np.asarray(self.halves, dtype=np.float64))


def _half_gap(halves: np.ndarray) -> float:
    """``‖h₁ − h₂‖ / 2 / ‖(h₁ + h₂) / 2‖``: the estimated relative error of the mean of two independent halves."""
    return float(np.linalg.norm(halves[0] - halves[1]) / 2 / max(float(np.linalg.norm(halves.mean(axis=0))), 1e-300))


def reference_path(key: str, folder: str | os.PathLike = "benchmarks/references") -> Path:
    return Path(folder) / f"{key}.json"


def load_reference(key: str, folder: str | os.PathLike = "benchmarks/references") -> Reference | None:
    path = reference_path(key, folder)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["seeds"] = tuple(data["seeds"])
    data["halves"] = tuple(data["halves"])
    data.pop("own_error", None)          # stored for readers of the file; recomputed from the halves
    return Reference(**data)


def save_reference(ref: Reference, folder: str | os.PathLike = "benchmarks/references") -> Path:
    data = asdict(ref)
    data["halves"] = np.round(np.asarray(ref.halves, dtype=np.float64), 7).tolist()
    return atomic_write_text(reference_path(ref.key, folder),
                             json.dumps({**data, "own_error": round(ref.own_error, 6)}, indent=None) + "\n", mkdir=True)


def _chunk_seed(base: int, chunk: int) -> int:
    return int(base) + CHUNK_SEED_STEP * chunk


def start_reference(estimate, key: str, description: str, estimator: str, chunk_budget: int, target_output: int,
                    n_video: int, seeds: tuple[int, int] = HALF_SEEDS) -> Reference:
    """A reference of one chunk per half; ``estimate(seed, budget)`` returns ``[F, K]`` values of an
    unbiased estimator (the same one for every chunk)."""
    halves = tuple(np.asarray(estimate(_chunk_seed(s, 0), chunk_budget), dtype=np.float64).tolist() for s in seeds)
    return Reference(key, description, estimator, int(chunk_budget), tuple(int(s) for s in seeds), halves,
                     int(target_output), int(n_video), 1)


def extend_reference(ref: Reference, estimate, chunks: int) -> Reference:
    """``ref`` with each half grown to ``chunks`` chunks (the mean of equal-budget unbiased estimates)."""
    if chunks <= ref.chunks:
        return ref
    chunk_budget = ref.budget // ref.chunks
    halves = []
    for base, half in zip(ref.seeds, ref.halves):
        total = np.asarray(half, dtype=np.float64) * ref.chunks
        for c in range(ref.chunks, chunks):
            total = total + np.asarray(estimate(_chunk_seed(base, c), chunk_budget), dtype=np.float64)
        halves.append((total / chunks).tolist())
    return Reference(ref.key, ref.description, ref.estimator, chunk_budget * chunks, ref.seeds, tuple(halves),
                     ref.target_output, ref.n_video, chunks)


def trust_reference(ref: Reference, estimate, smallest_error, *, trust: float = 3.0, max_chunks: int = 8,
                    own_error=lambda r: r.own_error, save=None, log=print) -> Reference:
    """Double ``ref``'s chunks until its own error is below ``smallest_error(ref) / trust`` (the errors it
    measures shrink as it improves, so the target is re-read) or it has ``max_chunks``; ``save(ref)``
    after each step, so a stopped run keeps what it computed."""
    while own_error(ref) >= smallest_error(ref) / trust and ref.chunks < max_chunks:
        ref = extend_reference(ref, estimate, min(2 * ref.chunks, max_chunks))
        if save is not None:
            save(ref)
        log(f"{ref.key}: {ref.chunks} chunks per half ({ref.budget} evaluations), own error {own_error(ref):.4f}, "
            f"smallest error measured {smallest_error(ref):.4f}")
    return ref


def grow_reference(memo, n_video: int, key: str, description: str, target_output: int | None,
                   permutations: list[int], estimator: str = "permutation",
                   folder: str | os.PathLike = "benchmarks/references", log=print) -> Reference:
    """A reference of a memoised game grown to each number of ``permutations`` per half in turn (chunks
    of the first step's budget), saving the memo and the reference after each step; return the last."""
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game

    n = memo.n_players

    def estimate(seed: int, budget: int) -> np.ndarray:
        values = get_estimator(estimator).estimate(Game(memo, n, video_features=n_video), budget, seed).values
        memo.save()
        return values

    chunk = permutations[0] * (2 * n + 1)
    target = int(np.argmax(memo(np.ones((1, n), dtype=bool))[0])) if target_output is None else target_output
    ref = start_reference(estimate, key, description, estimator, chunk, target, n_video)
    save_reference(ref, folder)
    for perms in permutations:
        ref = extend_reference(ref, estimate, max(1, round(perms / permutations[0])))
        save_reference(ref, folder)
        log(f"{key}: {perms} permutations per half, own error {ref.own_error:.4f} (memo {len(memo)} coalitions)")
    return ref
