"""Games with analytically known Shapley values, shared by tests and benchmarks.

Every game is a sum of *components*; each component knows its value on a coalition matrix and its
Shapley values in closed form, so ground truth needs no enumeration and F = 250 players is cheap:

* :class:`Additive` — ``v(S) = Σ_{i∈S} w_i``; ``φ_i = w_i``.
* :class:`Monomials` — the Möbius (Harsanyi) representation ``v(S) = Σ_T a_T·[T ⊆ S]``;
  ``φ_i = Σ_{T∋i} a_T / |T|``.
* :class:`TwoBlock` — ``v(S) = g(|S∩A|, |S∩B|)`` for two disjoint blocks of interchangeable
  players (e.g. the frames of one shot and the question words that refer to it). By symmetry every
  member of a block gets the same value, given by the exact marginal-contribution sum over the
  (a, b) counts (O(|A|·|B|) terms, no enumeration).

Values are ``float64[B, K]`` (K outputs, e.g. option scores); Shapley values ``float64[F, K]``.
The factories (:func:`additive_game`, :func:`pairwise_game`, :func:`higher_order_game`,
:func:`video_like_game`) build seeded random instances; :data:`GAMES` names them for benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import lgamma
from typing import Callable

import numpy as np

__all__ = [
    "Additive",
    "Monomials",
    "TwoBlock",
    "TestGame",
    "TableGame",
    "additive_game",
    "pairwise_game",
    "higher_order_game",
    "video_like_game",
    "GAMES",
    "make_game",
    "brute_force_shapley",
]


def _log_binom(n: int, k: int) -> float:
    return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)


@dataclass(frozen=True)
class Additive:
    """``v(S) = Σ_{i∈S} weights[i]`` (weights ``[F, K]``)."""

    weights: np.ndarray

    def value(self, coalitions: np.ndarray) -> np.ndarray:
        return coalitions.astype(np.float64) @ self.weights

    def shapley(self, n_players: int) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64).copy()


@dataclass(frozen=True)
class Monomials:
    """Möbius terms ``v(S) = Σ_t coefs[t]·[sets[t] ⊆ S]`` (coefs ``[T, K]``)."""

    sets: tuple[tuple[int, ...], ...]
    coefs: np.ndarray

    def value(self, coalitions: np.ndarray) -> np.ndarray:
        if not self.sets:
            return np.zeros((len(coalitions), self.coefs.shape[1]))
        width = max(len(members) for members in self.sets)
        # pad each set with its own first member so one fancy-indexing pass checks them all
        index = np.array([list(m) + [m[0]] * (width - len(m)) for m in self.sets])
        present = coalitions[:, index].all(axis=2)              # [B, T]
        return present.astype(np.float64) @ self.coefs

    def shapley(self, n_players: int) -> np.ndarray:
        phi = np.zeros((n_players, self.coefs.shape[1]))
        for members, coef in zip(self.sets, self.coefs):
            phi[list(members)] += coef / len(members)
        return phi


@dataclass(frozen=True)
class TwoBlock:
    """``v(S) = table[|S∩A|, |S∩B|]`` (table ``[|A|+1, |B|+1, K]``; B may be empty).

    Shapley value of a member of A, over the n = |A|+|B| players of the component (the others are
    null players for it): ``Σ_{a<|A|, b≤|B|} C(|A|−1, a)·C(|B|, b) / (n·C(n−1, a+b))·(g(a+1, b) − g(a, b))``.
    """

    block_a: tuple[int, ...]
    block_b: tuple[int, ...]
    table: np.ndarray

    def value(self, coalitions: np.ndarray) -> np.ndarray:
        a = coalitions[:, list(self.block_a)].sum(axis=1)
        b = coalitions[:, list(self.block_b)].sum(axis=1) if self.block_b else np.zeros_like(a)
        return self.table[a, b]

    def _member_value(self, size_own: int, size_other: int, delta: Callable[[int, int], np.ndarray]) -> np.ndarray:
        n = size_own + size_other
        total = 0.0
        for a in range(size_own):
            for b in range(size_other + 1):
                log_w = (_log_binom(size_own - 1, a) + _log_binom(size_other, b)
                         - np.log(n) - _log_binom(n - 1, a + b))
                total = total + np.exp(log_w) * delta(a, b)
        return total

    def shapley(self, n_players: int) -> np.ndarray:
        g = np.asarray(self.table, dtype=np.float64)
        p, q = len(self.block_a), len(self.block_b)
        phi = np.zeros((n_players, g.shape[2]))
        phi[list(self.block_a)] = self._member_value(p, q, lambda a, b: g[a + 1, b] - g[a, b])
        if q:
            phi[list(self.block_b)] = self._member_value(q, p, lambda b, a: g[a, b + 1] - g[a, b])
        return phi


@dataclass
class TestGame:
    """A value function with known Shapley values.

    Call it with ``bool[B, F]`` to get ``float64[B, K]``; ``shapley_values`` is the exact ``[F, K]``.

    Attributes:
        name: which family the game belongs to.
        n_players: F.
        n_outputs: K.
        components: the summands.
        video_players: indices of the players that play the role of video frames (may be empty).
        target_output: the output column benchmarks score (the "ground-truth option").
    """

    __test__ = False  # not a pytest class

    name: str
    n_players: int
    n_outputs: int
    components: list = field(default_factory=list)
    video_players: tuple[int, ...] = ()
    target_output: int = 0
    offset: np.ndarray | None = None

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        if coalitions.ndim != 2 or coalitions.shape[1] != self.n_players:
            raise ValueError(f"expected bool[B, {self.n_players}], got shape {coalitions.shape}")
        out = np.zeros((len(coalitions), self.n_outputs))
        if self.offset is not None:
            out += self.offset[None, :]
        for component in self.components:
            out += component.value(coalitions)
        return out

    @property
    def shapley_values(self) -> np.ndarray:
        """Exact Shapley values ``float64[F, K]`` (analytic)."""
        phi = np.zeros((self.n_players, self.n_outputs))
        for component in self.components:
            phi += component.shapley(self.n_players)
        return phi


class TableGame:
    """A game given by all its values: row ``code`` of ``table`` is the coalition holding player i iff
    bit i of ``code`` is set (e.g. a real model's game enumerated once). Exact Shapley values by the
    weighted marginal-contribution sum over the table (F ≤ 24).

    Attributes: as :class:`TestGame` (``name``, ``n_players``, ``n_outputs``, ``video_players``,
    ``target_output``) plus ``table`` (``float64[2^F, K]``).
    """

    __test__ = False

    def __init__(self, name: str, n_players: int, table: np.ndarray, video_players: tuple[int, ...] = (),
                 target_output: int = 0):
        table = np.asarray(table, dtype=np.float64)
        if n_players > 24 or table.ndim != 2 or table.shape[0] != 2 ** n_players:
            raise ValueError(f"TableGame: table must have 2^{n_players} rows (F <= 24), got shape {table.shape}")
        self.name, self.n_players, self.table = name, int(n_players), table
        self.n_outputs = table.shape[1]
        self.video_players, self.target_output = tuple(video_players), int(target_output)
        self._weights = 1 << np.arange(self.n_players, dtype=np.int64)
        self._phi: np.ndarray | None = None

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        if coalitions.ndim != 2 or coalitions.shape[1] != self.n_players:
            raise ValueError(f"expected bool[B, {self.n_players}], got shape {coalitions.shape}")
        return self.table[coalitions.astype(np.int64) @ self._weights]

    @property
    def shapley_values(self) -> np.ndarray:
        """Exact Shapley values ``float64[F, K]``."""
        if self._phi is None:
            n = self.n_players
            codes = np.arange(2 ** n, dtype=np.int64)
            sizes = np.zeros(2 ** n, dtype=np.int64)
            for i in range(n):
                sizes += (codes >> i) & 1
            weights = np.exp([-np.log(n) - _log_binom(n - 1, s) for s in range(n)])
            phi = np.zeros((n, self.n_outputs))
            for i in range(n):
                without = codes[((codes >> i) & 1) == 0]
                phi[i] = weights[sizes[without]] @ (self.table[without | (1 << i)] - self.table[without])
            self._phi = phi
        return self._phi


def additive_game(n_players: int, n_outputs: int = 5, seed: int = 0) -> TestGame:
    """Independent players: ``v(S) = c + Σ w_i``."""
    rng = np.random.default_rng(seed)
    return TestGame("additive", n_players, n_outputs,
                    [Additive(rng.normal(size=(n_players, n_outputs)))],
                    offset=rng.normal(size=n_outputs))


def pairwise_game(n_players: int, n_outputs: int = 5, seed: int = 0, n_pairs: int | None = None) -> TestGame:
    """Main effects plus sparse pairwise interactions (``2F`` random pairs by default)."""
    rng = np.random.default_rng(seed)
    n_pairs = 2 * n_players if n_pairs is None else n_pairs
    pairs = tuple(tuple(int(i) for i in rng.choice(n_players, 2, replace=False)) for _ in range(n_pairs))
    return TestGame("pairwise", n_players, n_outputs, [
        Additive(rng.normal(size=(n_players, n_outputs))),
        Monomials(pairs, rng.normal(size=(n_pairs, n_outputs))),
    ], offset=rng.normal(size=n_outputs))


def higher_order_game(n_players: int, n_outputs: int = 5, seed: int = 0, n_terms: int | None = None,
                      max_order: int = 6) -> TestGame:
    """Main effects plus sparse interactions of order 2…``max_order`` (Möbius terms)."""
    rng = np.random.default_rng(seed)
    n_terms = 2 * n_players if n_terms is None else n_terms
    sets = []
    for _ in range(n_terms):
        order = int(rng.integers(2, min(max_order, n_players) + 1))
        sets.append(tuple(int(i) for i in rng.choice(n_players, order, replace=False)))
    return TestGame("higher_order", n_players, n_outputs, [
        Additive(rng.normal(size=(n_players, n_outputs))),
        Monomials(tuple(sets), 2.0 * rng.normal(size=(n_terms, n_outputs))),
    ], offset=rng.normal(size=n_outputs))


def _saturating(count: np.ndarray, scale: float) -> np.ndarray:
    return 1.0 - np.exp(-count / scale)


def video_like_game(n_players: int, n_outputs: int = 5, seed: int = 0, video_fraction: float = 0.8,
                    shot_length: int = 10) -> TestGame:
    """A game shaped like a video-QA model's option scores.

    The first ``round(video_fraction·F)`` players are frames, the rest text words (question, then
    the options' words). Frames are many and individually weak, and redundant within a shot (a
    saturating function of how many of the shot's frames are kept: strong higher-order
    interactions); a shot's evidence only counts fully when the question words that refer to it are
    present (a frame×text interaction). Text words are few and strong (large main effects; answer
    words mostly move their own option) with a few sparse text interactions. Output 0 is the
    ground-truth option.
    """
    rng = np.random.default_rng(seed)
    n_frames = int(round(video_fraction * n_players))
    n_text = n_players - n_frames
    if n_frames < 1 or n_text < 2:
        raise ValueError(f"video_like_game needs at least 1 frame and 2 words; F={n_players} is too small")
    frames = np.arange(n_frames)
    words = np.arange(n_frames, n_players)
    components: list = []
    # text main effects: strong; each word leans to one option (answer words to their own option)
    text_w = np.zeros((n_players, n_outputs))
    text_w[words] = rng.normal(scale=0.5, size=(n_text, n_outputs))
    lean = rng.integers(0, n_outputs, size=n_text)
    text_w[words, lean] += rng.normal(loc=1.0, scale=0.5, size=n_text)
    # frames: weak, mostly-shared direction (correlated evidence) plus noise
    frame_dir = rng.normal(size=n_outputs)
    text_w[frames] = 0.02 * (rng.normal(size=(n_frames, 1)) * frame_dir[None, :]
                             + 0.5 * rng.normal(size=(n_frames, n_outputs)))
    components.append(Additive(text_w))
    # shots: redundant frames, gated by 1-3 question words
    n_question = max(1, n_text // 3)
    question_words = words[:n_question]
    for start in range(0, n_frames, shot_length):
        shot = tuple(int(i) for i in frames[start:start + shot_length])
        gate = tuple(int(i) for i in rng.choice(question_words, size=min(len(question_words), int(rng.integers(1, 4))),
                                                 replace=False))
        a = np.arange(len(shot) + 1)
        b = np.arange(len(gate) + 1)
        coef_alone = 0.3 * rng.normal(size=n_outputs) + 0.2 * frame_dir
        coef_gated = rng.normal(size=n_outputs)
        sat = _saturating(a, scale=float(rng.uniform(1.0, 3.0)))
        table = (sat[:, None, None] * coef_alone[None, None, :]
                 + sat[:, None, None] * (b[None, :, None] / len(gate)) ** 2 * coef_gated[None, None, :])
        components.append(TwoBlock(shot, gate, table))
    # sparse text interactions (order 2-3)
    n_terms = n_text
    sets = tuple(tuple(int(i) for i in rng.choice(words, size=min(n_text, int(rng.integers(2, 4))), replace=False))
                 for _ in range(n_terms))
    components.append(Monomials(sets, 0.5 * rng.normal(size=(n_terms, n_outputs))))
    return TestGame("video_like", n_players, n_outputs, components,
                    video_players=tuple(int(i) for i in frames), offset=rng.normal(size=n_outputs))


GAMES: dict[str, Callable[..., TestGame]] = {
    "additive": additive_game,
    "pairwise": pairwise_game,
    "higher_order": higher_order_game,
    "video_like": video_like_game,
}


def make_game(name: str, n_players: int, n_outputs: int = 5, seed: int = 0) -> TestGame:
    """Build the test game ``name`` (one of :data:`GAMES`)."""
    if name not in GAMES:
        raise KeyError(f"unknown test game {name!r}; valid: {', '.join(GAMES)}")
    return GAMES[name](n_players, n_outputs=n_outputs, seed=seed)


def brute_force_shapley(value_fn: Callable[[np.ndarray], np.ndarray], n_players: int) -> np.ndarray:
    """Shapley values by enumerating all 2^F coalitions (for checking the closed forms; F ≤ 14)."""
    if n_players > 14:
        raise ValueError("brute_force_shapley is for F <= 14")
    codes = np.arange(2 ** n_players)
    coalitions = ((codes[:, None] >> np.arange(n_players)[None, :]) & 1).astype(bool)
    values = value_fn(coalitions)
    sizes = coalitions.sum(axis=1)
    weights = np.array([np.exp(-np.log(n_players) - _log_binom(n_players - 1, s)) for s in range(n_players)])
    phi = np.zeros((n_players, values.shape[1]))
    for i in range(n_players):
        without = codes[~coalitions[:, i]]
        phi[i] = (weights[sizes[without]][:, None] * (values[without | (1 << i)] - values[without])).sum(axis=0)
    return phi
