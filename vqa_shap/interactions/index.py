"""Pairwise Shapley interactions of a :class:`~vqa_shap.game.Game`: exact enumeration or shapiq.

The index is the **2-Shapley interaction index (k-SII, order 2)**: its pair values are the Shapley
interaction index (SII) of each pair,

    I_ij = Σ_{S ⊆ P∖{i,j}} (|P|−|S|−2)! |S|! / (|P|−1)! · [v(S∪ij) − v(S∪i) − v(S∪j) + v(S)],

and its main effects ``Φ_i = φ_i − ½ Σ_j I_ij`` (φ the Shapley value) make it efficient:
``Σ_i Φ_i + Σ_{i<j} I_ij = v(P) − v(∅)``. A negative ``I_ij`` means i and j are redundant (either
one does what both do), a positive one that they are complementary (each needs the other).

Players are groups of features (:class:`~vqa_shap.game.Game` ``groups``); features in no player are
always **kept** (the explained input as context), so the values are the exact k-SII of the
*restricted game* ``v_P(S) = v(S ∪ (features outside P))`` — a proper cooperative game on P.

Exact: all ``2^P`` coalitions, Möbius transform ``m``, then ``I_ij = Σ_{T ⊇ ij} m(T) / (|T| − 1)``
and ``φ_i = Σ_{T ∋ i} m(T) / |T|``. Approximate: a shapiq approximator (``KernelSHAPIQ``,
``SVARMIQ``, ``PermutationSamplingSII``, ...) with ``index="k-SII"``, called with the Game as its
value function (one run per output column with one seed, so the Game's cache scores every coalition
once for all K outputs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from vqa_shap.errors import VqaShapError
from vqa_shap.game import Game

logger = logging.getLogger(__name__)

__all__ = [
    "APPROXIMATORS", "INDEX", "InteractionError", "Interactions", "exact_interactions", "interaction_budget",
    "interactions", "min_approximation_budget", "mobius", "pair_list", "shapiq_interactions",
]

#: The index every function here computes.
INDEX = "k-SII"
#: shapiq approximators of pairwise k-SII, with their constructor options.
APPROXIMATORS = {
    "KernelSHAPIQ": {"pairing_trick": True},
    "InconsistentKernelSHAPIQ": {"pairing_trick": True},
    "SVARMIQ": {"pairing_trick": True},
    "SHAPIQ": {"pairing_trick": True},
    "PermutationSamplingSII": {},
}
#: Most players enumerated exactly (2^20 coalitions).
MAX_EXACT_PLAYERS = 20


class InteractionError(VqaShapError, ValueError):
    """Bad arguments to an interaction computation (unknown approximator, too small a budget, ...)."""


@dataclass(frozen=True)
class Interactions:
    """Pairwise k-SII of one game.

    Attributes:
        pairs: ``(i, j)`` player pairs, ``i < j``, in lexicographic order.
        values: ``float64[n_pairs, K]``: the interaction of each pair for each output.
        main: ``float64[P, K]``: the order-1 k-SII values (``φ_i − ½ Σ_j I_ij``).
        shapley: ``float64[P, K]``: the Shapley values of the restricted game, or None (shapiq).
        value_full: K scores with every player present.
        value_empty: K scores with every player absent.
        estimator: ``"exact"`` or the shapiq approximator's name.
        budget: the evaluation budget allowed.
        evaluations: coalitions newly scored for this result (cache hits are free).
        seed: the approximator's seed (None for exact).
        index: the index (:data:`INDEX`).
    """

    pairs: tuple[tuple[int, int], ...]
    values: np.ndarray
    main: np.ndarray
    shapley: np.ndarray | None
    value_full: np.ndarray
    value_empty: np.ndarray
    estimator: str
    budget: int
    evaluations: int
    seed: int | None = None
    index: str = INDEX

    def matrix(self, column: int) -> np.ndarray:
        """Symmetric ``float64[P, P]`` of output ``column`` (zero diagonal)."""
        n = len(self.main)
        out = np.zeros((n, n))
        for (i, j), v in zip(self.pairs, self.values[:, column]):
            out[i, j] = out[j, i] = v
        return out

    def efficiency_residual(self) -> float:
        """``max_k |Σ_i Φ_ik + Σ_pairs I_k − (v_k(P) − v_k(∅))|`` (0 up to rounding when exact)."""
        total = self.main.sum(axis=0) + self.values.sum(axis=0)
        return float(np.max(np.abs(total - (self.value_full - self.value_empty))))


def pair_list(n_players: int) -> tuple[tuple[int, int], ...]:
    """All pairs ``(i, j)``, ``i < j``, lexicographic."""
    return tuple(combinations(range(n_players), 2))


def all_coalitions(n_players: int) -> np.ndarray:
    """``bool[2^P, P]``: row ``code`` has player i present iff bit i of ``code`` is set."""
    codes = np.arange(2 ** n_players, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n_players)[None, :]) & 1).astype(bool)


def mobius(table: np.ndarray) -> np.ndarray:
    """Möbius transform (Harsanyi dividends) of a value table ``[2^P, K]`` indexed by coalition code."""
    m = np.array(table, dtype=np.float64, copy=True)
    n = int(np.log2(len(m)))
    if 2 ** n != len(m):
        raise InteractionError(f"a value table needs 2^P rows, got {len(m)}")
    codes = np.arange(len(m))
    for i in range(n):
        with_i = codes[(codes >> i) & 1 == 1]
        m[with_i] -= m[with_i ^ (1 << i)]
    return m


def from_table(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[tuple[int, int], ...]]:
    """``(pair values [n_pairs, K], Shapley values [P, K], pairs)`` of a full value table."""
    table = np.asarray(table, dtype=np.float64)
    if table.ndim == 1:
        table = table[:, None]
    m = mobius(table)
    n = int(np.log2(len(m)))
    members = all_coalitions(n)
    size = members.sum(axis=1)
    shapley = np.stack([(m[members[:, i]] / size[members[:, i], None]).sum(axis=0) for i in range(n)]) \
        if n else np.zeros((0, m.shape[1]))
    pairs = pair_list(n)
    values = np.zeros((len(pairs), m.shape[1]))
    for p, (i, j) in enumerate(pairs):
        both = members[:, i] & members[:, j]
        values[p] = (m[both] / (size[both, None] - 1)).sum(axis=0)
    return values, shapley, pairs


def _main_effects(shapley: np.ndarray, values: np.ndarray, pairs) -> np.ndarray:
    main = np.array(shapley, dtype=np.float64, copy=True)
    for (i, j), v in zip(pairs, values):
        main[i] -= v / 2
        main[j] -= v / 2
    return main


def exact_interactions(game: Game, *, max_players: int = MAX_EXACT_PLAYERS) -> Interactions:
    """Exact pairwise k-SII by scoring all ``2^P`` coalitions of ``game`` (in one Game request).

    Raises:
        InteractionError: more than ``max_players`` players.
    """
    n = game.n_players
    if n > max_players:
        raise InteractionError(f"exact interactions of {n} players need 2^{n} coalitions; the limit is {max_players}")
    before = game.evaluations
    table = game(all_coalitions(n))
    values, shapley, pairs = from_table(table)
    return Interactions(pairs, values, _main_effects(shapley, values, pairs), shapley, table[-1].copy(),
                        table[0].copy(), "exact", 2 ** n, game.evaluations - before)


def shapiq_interactions(game: Game, budget: int, *, approximator: str = "KernelSHAPIQ", seed: int = 0) -> Interactions:
    """Pairwise k-SII approximated by a shapiq approximator over ``game``.

    Args:
        game: the Game (its cache and batching apply to every coalition shapiq asks for).
        budget: coalitions shapiq may evaluate (per output column; the columns share them).
        approximator: a key of :data:`APPROXIMATORS`.
        seed: the approximator's ``random_state``.
    """
    import shapiq

    if approximator not in APPROXIMATORS:
        raise InteractionError(f"unknown approximator {approximator!r}; valid: {', '.join(APPROXIMATORS)}")
    n = game.n_players
    if n < 2:
        raise InteractionError(f"pairwise interactions need at least 2 players, got {n}")
    if budget < 4:
        raise InteractionError(f"budget {budget} is too small; need at least 4")
    before = game.evaluations
    v_full, v_empty = game.value_full(), game.value_empty()
    pairs = pair_list(n)
    values, main = np.zeros((len(pairs), len(v_full))), np.zeros((n, len(v_full)))
    for col in range(len(v_full)):
        approx = getattr(shapiq, approximator)(n=n, max_order=2, index=INDEX, random_state=seed,
                                               **APPROXIMATORS[approximator])

        def column(coalitions, col=col):
            coalitions = np.asarray(coalitions, dtype=bool)
            return game(coalitions.reshape(-1, n))[:, col]

        result = approx.approximate(int(budget), column)
        second = result.get_n_order_values(2)
        values[:, col] = [second[i, j] for i, j in pairs]
        main[:, col] = result.get_n_order_values(1)
    return Interactions(pairs, values, main, None, v_full, v_empty, approximator, int(budget),
                        game.evaluations - before, seed=int(seed))


#: (players, budget, approximator) whose raised budget was already reported.
_RAISED: set[tuple[int, int, str]] = set()


def min_approximation_budget(n_players: int) -> int:
    """Fewest evaluations an approximator gets: twice the number of values it estimates (the empty
    value, ``P`` main effects and ``P(P-1)/2`` pairs). Below it the pair values are off by several
    times their size or all zero (measured against exact values, docs/interactions.md)."""
    return 2 * (1 + n_players + n_players * (n_players - 1) // 2)


def interaction_budget(n_players: int, budget: int) -> tuple[bool, int]:
    """``(exact, budget)`` a game of ``n_players`` is computed with: exact when all ``2^P`` coalitions fit
    in ``budget`` or in the approximation minimum, else an approximator with at least that minimum."""
    need = max(budget, min_approximation_budget(n_players))
    if n_players <= MAX_EXACT_PLAYERS and 2 ** n_players <= need:
        return True, 2 ** n_players
    return False, need


def interactions(game: Game, budget: int, *, approximator: str = "KernelSHAPIQ", seed: int = 0) -> Interactions:
    """Exact k-SII when all ``2^P`` coalitions fit in ``budget``, else ``approximator`` with ``budget``,
    raised to :func:`min_approximation_budget` (with a warning) when it is below it."""
    exact, used = interaction_budget(game.n_players, budget)
    if used > budget and (game.n_players, budget, approximator) not in _RAISED:  # said once per process
        _RAISED.add((game.n_players, budget, approximator))
        logger.warning("%d players: budget %d is too small for pairwise interactions; using %d evaluations%s",
                       game.n_players, budget, used, " (exact)" if exact else
                       f" (at least twice the {used // 2} values {approximator} estimates)")
    if exact:
        return exact_interactions(game)
    return shapiq_interactions(game, used, approximator=approximator, seed=seed)


def top_players(values: np.ndarray, column: int, k: int) -> list[int]:
    """The ``k`` players with the largest ``|φ|`` of output ``column`` (ties: earlier first), in player order."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64)[:, column])
    order = sorted(range(len(magnitude)), key=lambda i: (-magnitude[i], i))
    return sorted(order[:k])


def modality_groups(modalities: Sequence[str]) -> list[list[int]]:
    """Feature indices of the video, question and answer players (in that order).

    Raises:
        InteractionError: a modality has no feature (its group game would have an empty player).
    """
    from vqa_shap.schema.records import MODALITIES

    groups = [[f for f, m in enumerate(modalities) if m == modality] for modality in MODALITIES]
    empty = [m for m, g in zip(MODALITIES, groups) if not g]
    if empty:
        raise InteractionError(f"no {', '.join(empty)} features: the modality game needs all three")
    return groups
