"""The cooperative game an estimator explains: a cached value function over coalitions.

A *value function* maps a coalition matrix ``bool[B, F]`` (True = feature kept) to scores
``float[B, K]`` (K outputs, e.g. the option scores). :class:`Game` wraps one and adds what every
estimator needs: de-duplication, a cache, player groups, evaluation counting and a compute cost model.

One owner for batching: the Game hands all new coalitions of an estimator's request to the value
function in one call (a loader orders and batches them itself, computing each shared prompt prefix
once per call), sorted as a depth-first walk of their prefix tree in feature order (see
:func:`prefix_tree_order`), which is also what :class:`CostModel` charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from vqa_shap.errors import VqaShapError

__all__ = ["CostModel", "Game", "GameError", "prefix_tree_order"]


class EvaluationLimitReached(VqaShapError):
    """A call would score more coalitions than :attr:`Game.evaluation_limit` allows (nothing was scored)."""


class GameError(VqaShapError, ValueError):
    """The value function or a coalition matrix is not what the Game expects."""


def prefix_tree_order(sequences: Sequence[np.ndarray]) -> tuple[list[int], list[int]]:
    """Order sequences as a depth-first walk of their prefix tree.

    Lexicographic order puts every group of sequences that share a prefix next to each other, so
    walking them in this order and keeping only the previous sequence's state (e.g. a key/value
    cache cropped to the shared length) computes each distinct prefix exactly once.

    Args:
        sequences: 1-D arrays of unsigned integers (or booleans), possibly of different lengths.

    Returns:
        ``(order, shared)``: the indices in walk order, and for each position of ``order`` the length
        of the prefix its sequence shares with the previous one (0 for the first).
    """
    def key(s: np.ndarray) -> bytes:
        s = np.asarray(s)
        if s.dtype == bool:
            return s.view(np.uint8).tobytes()
        if s.dtype.kind != "u":
            raise TypeError(f"prefix_tree_order needs unsigned integer sequences, got {s.dtype}")
        return s.astype(s.dtype.newbyteorder(">"), copy=False).tobytes()  # big-endian: bytes order = values order

    order = sorted(range(len(sequences)), key=lambda i: key(sequences[i]))
    shared = [0] * len(order)
    for n in range(1, len(order)):
        a, b = np.asarray(sequences[order[n - 1]]), np.asarray(sequences[order[n]])
        m = min(len(a), len(b))
        diff = np.flatnonzero(a[:m] != b[:m])
        shared[n] = int(diff[0]) if diff.size else m
    return order, shared


@dataclass(frozen=True)
class CostModel:
    """Compute cost (ms) of scoring coalitions the way the chat loaders do it.

    A loader walks each call's coalitions in prefix-tree order and re-runs a prompt only from the
    first token where it differs from the previous coalition's (the key/value cache of the common
    prefix is reused). The model charges the same walk in feature order: the prompt is the video
    features (system prompt + video tokens, ``prefix_cost`` from scratch) then the text features
    (``suffix_cost`` on a cached prefix), each part's cost spread evenly over its features. A
    coalition whose first difference from the previous one is the video feature of rank ``r`` of
    ``V`` costs ``step_cost + prefix_cost * (V - r) / V + suffix_cost``; at the text feature of rank
    ``t`` of ``T`` it costs ``step_cost + suffix_cost * (T - t) / T``; the first coalition of a call
    costs ``full_cost``. A game with no video features has nothing to share: ``full_cost`` per
    coalition. Defaults: measured on the realistic-proportion tiny LLaVA-OneVision, 1 CPU thread
    (docs/performance-loader.md).

    Attributes:
        prefix_cost: the prompt up to its last video token, from scratch.
        suffix_cost: the text after the video, on a cached prefix.
        full_cost: the whole prompt from scratch.
        step_cost: fixed cost of one forward pass (the shortest suffix still pays it).
    """

    prefix_cost: float = 40.0
    suffix_cost: float = 14.0
    full_cost: float = 46.0
    step_cost: float = 2.0

    def tail_costs(self, video: np.ndarray) -> np.ndarray:
        """``[F]``: the cost of re-running the prompt from each feature on (``video``: bool ``[F]``)."""
        video = np.asarray(video, dtype=bool)
        tail = np.empty(len(video))
        n_video, n_text = int(video.sum()), int((~video).sum())
        tail[video] = self.prefix_cost * (n_video - np.arange(n_video)) / max(n_video, 1) + self.suffix_cost
        tail[~video] = self.suffix_cost * (n_text - np.arange(n_text)) / max(n_text, 1)
        return tail

    def step_costs(self, video: np.ndarray) -> np.ndarray:
        """``[F]``: the cost of a coalition (not a call's first) whose first difference from the previous
        coalition of the walk is at each feature: ``step_cost`` plus its tail with video features,
        ``full_cost`` without (nothing is shared)."""
        video = np.asarray(video, dtype=bool)
        if not video.any():
            return np.full(len(video), self.full_cost)
        return self.step_cost + self.tail_costs(video)

    def call_cost(self, masks: np.ndarray, video: np.ndarray) -> float:
        """Cost of one call on ``bool[B, F]`` distinct feature masks (any order)."""
        if len(masks) == 0:
            return 0.0
        if not np.asarray(video).any():
            return len(masks) * self.full_cost
        order, _ = prefix_tree_order(list(masks))
        walk = masks[order]
        first = np.argmax(walk[1:] != walk[:-1], axis=1)  # first differing feature of each step
        return self.full_cost + float(self.step_costs(video)[first].sum())


def expand_coalitions(coalitions: np.ndarray, groups: Sequence[Sequence[int]] | None, n_features: int) -> np.ndarray:
    """Feature masks ``bool[B, n_features]`` of player coalitions ``bool[B, len(groups)]``: each player
    keeps or masks the features of its group; features in no group are kept. ``groups=None``: every
    feature is a player and the coalitions are returned as they are."""
    if groups is None:
        return coalitions
    masks = np.ones((len(coalitions), n_features), dtype=bool)
    for p, members in enumerate(groups):
        masks[:, np.asarray(members, dtype=np.int64)] = coalitions[:, p : p + 1]
    return masks


class Game:
    """A value function over coalitions of players, with caching, batching and cost accounting.

    Args:
        value_fn: maps ``bool[B, n_features]`` to ``float[B, K]`` (or ``float[B]`` for K = 1).
        n_features: F, the number of features the value function takes.
        batch_size: most rows sent to ``value_fn`` in one call; ``None`` (default): every new
            coalition of a request in one call (a loader batches inside, memory-bounded, and
            shares prompt prefixes across the whole call).
        groups: optional disjoint lists of feature indices; each list is one *player* (e.g. the
            frames of a shot, or a whole modality). Features in no group are always kept. Without
            groups every feature is a player.
        video_features: which features are video (indices, or an int n meaning the first n
            features). With video features, coalitions are sent in prefix-tree order (feature order,
            :func:`prefix_tree_order`) and the cost model charges what each one re-runs.
        cost_model: costs used for :attr:`cost` (default :class:`CostModel`).
        progress: show a tqdm bar over coalitions.

    Attributes:
        n_players: number of players (``len(groups)`` or ``n_features``).
        evaluations: distinct coalitions actually sent to ``value_fn`` (model rows scored).
        calls: number of ``value_fn`` calls.
        distinct_prefixes: distinct video parts summed over calls.
        n_outputs: K, known after the first evaluation.
        evaluation_limit: when set, a call that would take :attr:`evaluations` above it raises
            :class:`EvaluationLimitReached` before scoring (an adaptive estimate's hard budget cap).
    """

    def __init__(
        self,
        value_fn: Callable[[np.ndarray], np.ndarray],
        n_features: int,
        *,
        batch_size: int | None = None,
        groups: Sequence[Sequence[int]] | None = None,
        video_features: Sequence[int] | int | None = None,
        cost_model: CostModel | None = None,
        progress: bool = False,
    ):
        if not callable(value_fn):
            raise GameError(f"value_fn must be callable, got {type(value_fn).__name__}")
        if int(n_features) != n_features or n_features < 1:
            raise GameError(f"n_features must be a positive integer, got {n_features!r}")
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise GameError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        self.value_fn = value_fn
        self.n_features = int(n_features)
        self.batch_size = None if batch_size is None else int(batch_size)
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
        self.evaluation_limit: int | None = None
        self.calls = 0
        self.distinct_prefixes = 0
        self._cost = 0.0

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
        return expand_coalitions(coalitions, self._groups, self.n_features)

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
            if self.evaluation_limit is not None and self.evaluations + len(new_rows) > self.evaluation_limit:
                raise EvaluationLimitReached(f"{len(new_rows)} new coalitions would exceed the limit of "
                                             f"{self.evaluation_limit} evaluations ({self.evaluations} made)")
            self._evaluate(coalitions[list(new_rows.values())], list(new_rows))
        if not keys:
            return np.zeros((0, self.n_outputs or 0))
        return np.stack([self._values[self._index[k]] for k in keys])

    def _evaluate(self, coalitions: np.ndarray, keys: list[bytes]) -> None:
        features = self.features_of(coalitions)
        if self._has_video:  # prefix-tree order: coalitions sharing a prompt prefix are neighbours
            order, _ = prefix_tree_order(list(features))
        else:
            order = list(range(len(keys)))
        size = self.batch_size or max(len(order), 1)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(order), desc="coalitions", unit="coalition")
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            out = self._score(features[rows])
            for r, value in zip(rows, out):
                self._index[keys[r]] = len(self._values)
                self._values.append(value)
            self.evaluations += len(rows)
            self.calls += 1
            self._cost += self.cost_model.call_cost(features[rows], self.video_feature_mask)
            if self._has_video:
                self.distinct_prefixes += len({features[r, self.video_feature_mask].tobytes() for r in rows})
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()

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
        """Modelled compute (ms) of the evaluations so far (:class:`CostModel`: the prompt tokens each
        call re-runs in prefix-tree order, or full forwards when the game has no video features)."""
        return self._cost

    def counters(self) -> tuple[int, int, float]:
        """``(evaluations, distinct_prefixes, cost)`` now (for bookkeeping deltas)."""
        return self.evaluations, self.distinct_prefixes, self.cost
