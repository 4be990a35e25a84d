"""The cooperative game an estimator explains: a cached, batched value function over coalitions.

A *value function* maps a coalition matrix ``bool[B, F]`` (True = feature kept) to scores
``float[B, K]`` (K outputs, e.g. the option scores). :class:`Game` wraps one and adds what every
estimator needs: de-duplication, a cache, batching, player groups, evaluation counting and a compute
cost model that knows which features are video (coalitions with the same video part share one
prefix computation in the loader, so they are sent next to each other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from vqa_shap.errors import VqaShapError

__all__ = ["CostModel", "Game", "GameError"]


class GameError(VqaShapError, ValueError):
    """The value function or a coalition matrix is not what the Game expects."""


@dataclass(frozen=True)
class CostModel:
    """Compute cost of scoring coalitions, in milliseconds (defaults measured on a tiny
    realistic-proportion LLaVA-OneVision on CPU, see DESIGN.md "Performance design").

    Attributes:
        prefix_cost: one prefix forward (system prompt + video tokens), paid once per distinct video
            part in a batch.
        suffix_cost: one text suffix on a cached prefix, paid per coalition.
        full_cost: one full forward without prefix sharing; the per-coalition cost of a game with no
            video players.
    """

    prefix_cost: float = 24.0
    suffix_cost: float = 7.0
    full_cost: float = 30.0


class Game:
    """A value function over coalitions of players, with caching, batching and cost accounting.

    Args:
        value_fn: maps ``bool[B, n_features]`` to ``float[B, K]`` (or ``float[B]`` for K = 1).
        n_features: F, the number of features the value function takes.
        batch_size: most rows sent to ``value_fn`` in one call.
        groups: optional disjoint lists of feature indices; each list is one *player* (e.g. the
            frames of a shot, or a whole modality). Features in no group are always kept. Without
            groups every feature is a player.
        video_features: which features are video (indices, or an int n meaning the first n
            features). Coalitions are sorted so those with equal video parts are contiguous within a
            batch, and the cost model counts distinct video parts per batch.
        cost_model: costs used for :attr:`cost` (default :class:`CostModel`).
        progress: show a tqdm bar over batches.

    Attributes:
        n_players: number of players (``len(groups)`` or ``n_features``).
        evaluations: distinct coalitions actually sent to ``value_fn`` (model rows scored).
        calls: number of ``value_fn`` calls (batches).
        distinct_prefixes: prefix computations: distinct video parts summed over batches.
        n_outputs: K, known after the first evaluation.
    """

    def __init__(
        self,
        value_fn: Callable[[np.ndarray], np.ndarray],
        n_features: int,
        *,
        batch_size: int = 64,
        groups: Sequence[Sequence[int]] | None = None,
        video_features: Sequence[int] | int | None = None,
        cost_model: CostModel | None = None,
        progress: bool = False,
    ):
        if not callable(value_fn):
            raise GameError(f"value_fn must be callable, got {type(value_fn).__name__}")
        if int(n_features) != n_features or n_features < 1:
            raise GameError(f"n_features must be a positive integer, got {n_features!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise GameError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.value_fn = value_fn
        self.n_features = int(n_features)
        self.batch_size = int(batch_size)
        self.cost_model = cost_model or CostModel()
        self.progress = progress

        self._groups = self._check_groups(groups)
        self.n_players = len(self._groups) if self._groups is not None else self.n_features
        self.video_feature_mask = self._check_video(video_features)
        if self._groups is None:
            self.video_player_mask = self.video_feature_mask.copy()
        else:
            self.video_player_mask = np.array([self.video_feature_mask[g].any() for g in self._groups], dtype=bool)
        self._has_video = bool(self.video_feature_mask.any())

        self._index: dict[bytes, int] = {}
        self._values: list[np.ndarray] = []
        self.n_outputs: int | None = None
        self.evaluations = 0
        self.calls = 0
        self.distinct_prefixes = 0

    # ------------------------------------------------------------------ validation
    def _check_groups(self, groups):
        if groups is None:
            return None
        out, seen = [], set()
        for g, members in enumerate(groups):
            members = np.asarray(list(members), dtype=np.int64)
            if members.size == 0:
                raise GameError(f"groups[{g}] is empty")
            if members.min() < 0 or members.max() >= self.n_features:
                raise GameError(f"groups[{g}] has a feature index outside 0..{self.n_features - 1}")
            overlap = seen.intersection(members.tolist())
            if overlap or len(set(members.tolist())) != members.size:
                raise GameError(f"groups[{g}] repeats feature(s) {sorted(overlap) or members.tolist()}; groups must be disjoint")
            seen.update(members.tolist())
            out.append(members)
        if not out:
            raise GameError("groups is empty")
        return out

    def _check_video(self, video_features) -> np.ndarray:
        mask = np.zeros(self.n_features, dtype=bool)
        if video_features is None:
            return mask
        if isinstance(video_features, (int, np.integer)):
            if not 0 <= video_features <= self.n_features:
                raise GameError(f"video_features={video_features} is outside 0..{self.n_features}")
            mask[: int(video_features)] = True
            return mask
        idx = np.asarray(list(video_features), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_features):
            raise GameError(f"video_features has an index outside 0..{self.n_features - 1}")
        mask[idx] = True
        return mask

    # ------------------------------------------------------------------ evaluation
    def features_of(self, coalitions: np.ndarray) -> np.ndarray:
        """Expand player coalitions ``bool[B, n_players]`` to feature masks ``bool[B, n_features]``."""
        if self._groups is None:
            return coalitions
        masks = np.ones((len(coalitions), self.n_features), dtype=bool)
        for p, members in enumerate(self._groups):
            masks[:, members] = coalitions[:, p : p + 1]
        return masks

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        """Values of player coalitions.

        Args:
            coalitions: ``bool[B, n_players]`` (True = player present).

        Returns:
            ``float64[B, K]``; cached coalitions are not evaluated again.
        """
        coalitions = np.asarray(coalitions)
        if coalitions.ndim != 2 or coalitions.shape[1] != self.n_players:
            raise GameError(f"coalitions must have shape (B, {self.n_players}), got {coalitions.shape}")
        coalitions = coalitions.astype(bool, copy=False)
        keys = [row.tobytes() for row in np.packbits(coalitions, axis=1)]
        new_rows: dict[bytes, int] = {}
        for r, key in enumerate(keys):
            if key not in self._index and key not in new_rows:
                new_rows[key] = r
        if new_rows:
            self._evaluate(coalitions[list(new_rows.values())], list(new_rows))
        if not keys:
            return np.zeros((0, self.n_outputs or 0))
        return np.stack([self._values[self._index[k]] for k in keys])

    def _evaluate(self, coalitions: np.ndarray, keys: list[bytes]) -> None:
        features = self.features_of(coalitions)
        if self._has_video:
            # sort by video part so coalitions sharing a prefix are contiguous (stable: keeps order otherwise)
            video_keys = [row.tobytes() for row in np.packbits(features[:, self.video_feature_mask], axis=1)]
            order = sorted(range(len(keys)), key=video_keys.__getitem__)
        else:
            video_keys = None
            order = list(range(len(keys)))
        starts = range(0, len(order), self.batch_size)
        if self.progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="coalitions", unit="batch", total=len(starts))
        for start in starts:
            rows = order[start : start + self.batch_size]
            out = self._score(features[rows])
            for r, value in zip(rows, out):
                self._index[keys[r]] = len(self._values)
                self._values.append(value)
            self.evaluations += len(rows)
            self.calls += 1
            if video_keys is not None:
                self.distinct_prefixes += len({video_keys[r] for r in rows})

    def _score(self, masks: np.ndarray) -> np.ndarray:
        out = np.asarray(self.value_fn(masks.copy()), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != len(masks):
            raise GameError(f"value_fn returned shape {out.shape} for {len(masks)} coalitions; expected ({len(masks)}, K)")
        if self.n_outputs is None:
            self.n_outputs = out.shape[1]
        elif out.shape[1] != self.n_outputs:
            raise GameError(f"value_fn returned {out.shape[1]} outputs, earlier {self.n_outputs}")
        if not np.all(np.isfinite(out)):
            bad = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
            raise GameError(f"value_fn returned a non-finite score for coalition {masks[bad].astype(int).tolist()}")
        return out

    # ------------------------------------------------------------------ conveniences
    def value_full(self) -> np.ndarray:
        """K scores with every player present (cached)."""
        return self(np.ones((1, self.n_players), dtype=bool))[0]

    def value_empty(self) -> np.ndarray:
        """K scores with every player absent (cached)."""
        return self(np.zeros((1, self.n_players), dtype=bool))[0]

    @property
    def cost(self) -> float:
        """Modelled compute (ms) of the evaluations so far: prefixes + suffixes, or full forwards
        when the game has no video features."""
        if self._has_video:
            return self.distinct_prefixes * self.cost_model.prefix_cost + self.evaluations * self.cost_model.suffix_cost
        return self.evaluations * self.cost_model.full_cost

    def counters(self) -> tuple[int, int, float]:
        """``(evaluations, distinct_prefixes, cost)`` now (for bookkeeping deltas)."""
        return self.evaluations, self.distinct_prefixes, self.cost
