"""Stored references for games without exact values: two independent high-budget halves.

Above F ≈ 20 no game can be enumerated, so a benchmark's truth is a high-budget estimate. It is
trusted only if its own error — estimated from two independent halves (different seeds), as
``‖h₁ − h₂‖ / 2`` relative to ‖φ‖ for the mean of the halves — is below a third of the smallest
error it is used to measure. A reference is computed once and stored as compact JSON under
``benchmarks/references/`` named by the game's key (model digest + question digest), so studies
and benchmarks stop recomputing it; the run grows each half step by step (a stopped run keeps its
finished steps: permutations are prefix-stable and the evaluations are memoised).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["Reference", "reference_path", "load_reference", "save_reference", "grow_reference"]

#: seeds of the two halves (far from the seeds 0..N-1 the benchmarks measure)
HALF_SEEDS = (1_000_001, 1_000_002)


@dataclass(frozen=True)
class Reference:
    """A stored high-budget reference of one game.

    Attributes:
        key: the game's key (model digest + question digest).
        description: what the game is.
        estimator: the spec of the (unbiased) estimator of both halves.
        budget: evaluations per half (as the estimator counts them).
        seeds: the two halves' seeds.
        halves: ``[2][F][K]`` the two estimates.
        target_output: the output column benchmarks score.
        n_video: video players (the first ``n_video``).
    """

    key: str
    description: str
    estimator: str
    budget: int
    seeds: tuple[int, int]
    halves: tuple
    target_output: int
    n_video: int

    @property
    def values(self) -> np.ndarray:
        """``float64[F, K]``: the mean of the two halves."""
        return np.mean(np.asarray(self.halves, dtype=np.float64), axis=0)

    @property
    def own_error(self) -> float:
        """Estimated relative L2 error of :attr:`values` (target output): ``‖h₁ − h₂‖ / 2 / ‖mean‖``."""
        h = np.asarray(self.halves, dtype=np.float64)[:, :, self.target_output]
        return float(np.linalg.norm(h[0] - h[1]) / 2 / np.linalg.norm(h.mean(axis=0)))


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
    path = reference_path(ref.key, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(ref)
    data["halves"] = np.round(np.asarray(ref.halves, dtype=np.float64), 7).tolist()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**data, "own_error": round(ref.own_error, 6)}, indent=None) + "\n")
    tmp.replace(path)
    return path


def grow_reference(memo, n_video: int, key: str, description: str, target_output: int | None,
                   permutations: list[int], estimator: str = "permutation",
                   folder: str | os.PathLike = "benchmarks/references", log=print) -> Reference:
    """Run both halves at each number of ``permutations`` in turn (budget ``p (2F+1)``), saving the
    memo and the reference after each step; return the last."""
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game

    n = memo.n_players
    ref = None
    for perms in permutations:
        budget = perms * (2 * n + 1)
        halves = []
        for seed in HALF_SEEDS:
            game = Game(memo, n, video_features=n_video)
            halves.append(get_estimator(estimator).estimate(game, budget, seed).values)
            memo.save()
        target = int(np.argmax(memo(np.ones((1, n), dtype=bool))[0])) if target_output is None else target_output
        ref = Reference(key, description, estimator, budget, HALF_SEEDS, tuple(h.tolist() for h in halves),
                        target, n_video)
        save_reference(ref, folder)
        log(f"{key}: {perms} permutations per half, own error {ref.own_error:.4f} (memo {len(memo)} coalitions)")
    return ref
