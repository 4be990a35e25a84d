"""Estimator base class: validation, seeding, budget bookkeeping and the adaptive budget loop.

A concrete estimator implements one hot method, :meth:`Estimator._estimate`, which spends at most
``budget`` evaluations of the :class:`~vqa_shap.game.Game` and returns a :class:`RawEstimate`. Every
estimator must draw its coalitions *prefix-stably* (the coalitions drawn for a budget b are the first
ones drawn for any budget b' > b with the same seed): the adaptive loop then re-runs it with a
doubled budget and the Game's cache makes the earlier coalitions free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from vqa_shap.errors import VqaShapError
from vqa_shap.game import EvaluationLimitReached, Game

__all__ = ["Estimate", "Estimator", "EstimatorError", "RawEstimate", "relative_error"]


def relative_error(values: np.ndarray, stderr: np.ndarray | None, column: int) -> float | None:
    """Estimated relative L2 error of one output's Shapley values, ``sqrt(Σ_i stderr_i²) / ‖φ‖`` over
    the players, for output ``column`` (the model's choice). For an unbiased estimator ``Σ_i
    stderr_i²`` estimates ``E‖φ̂ − φ‖²`` and ``‖φ̂‖² − Σ_i stderr_i²`` estimates ``‖φ‖²`` (the noise
    inflates ‖φ̂‖; the correction is capped at a quarter of ‖φ̂‖²), so this estimates the relative error
    the benchmarks measure against exact values. None without standard errors; ``inf`` when they
    are infinite (fewer than two independent samples) or φ is zero."""
    if stderr is None:
        return None
    norm2 = float(np.sum(np.square(values[:, column])))
    spread2 = float(np.sum(np.square(stderr[:, column])))
    if not np.isfinite(spread2):
        return float("inf")
    norm2 = max(norm2 - spread2, norm2 / 4)
    return float(np.sqrt(spread2 / norm2)) if norm2 > 0 else (0.0 if spread2 == 0 else float("inf"))


class EstimatorError(VqaShapError, ValueError):
    """Invalid estimator arguments (budget too small, unknown option, too many players, ...)."""


@dataclass(frozen=True)
class RawEstimate:
    """What the hot method returns.

    Attributes:
        values: ``float64[P, K]`` Shapley values.
        stderr: ``float64[P, K]`` standard errors, or None when the estimator has none.
        contrast_stderr: ``float64[R, K]`` standard errors of ``contrasts @ values`` (e.g. modality
            sums), or None.
        estimator: the name to record when it is not the estimator's own (``auto`` reports the
            member it ran, e.g. ``"auto/kernel"``), or None.
    """

    values: np.ndarray
    stderr: np.ndarray | None = None
    contrast_stderr: np.ndarray | None = None
    estimator: str | None = None


@dataclass(frozen=True)
class Estimate:
    """Shapley values of one game.

    Attributes:
        values: ``float64[P, K]``: one row per player (per group when the game has groups), one
            column per output.
        stderr: ``float64[P, K]`` standard errors, or None when the estimator gives none (``shap``,
            ``shapiq``; ``exact`` has none because it has no error). ``inf`` where the budget
            allowed fewer than two independent samples (e.g. one permutation).
        evaluations: coalitions actually scored for this estimate (cache hits are free).
        budget: the evaluation budget that was allowed.
        estimator: registered name of the estimator (``auto``: ``"auto/<member spec>"``, the member
            it ran, e.g. ``"auto/kernel"``).
        seed: the seed used.
        efficiency_residual: ``max_k |Σ_i φ_ik − (v_k(all) − v_k(∅))|``.
        distinct_prefixes: prefix computations (distinct video parts per batch) for this estimate.
        cost: modelled compute (ms) for this estimate (see :class:`~vqa_shap.game.CostModel`).
        value_full: the K scores with all players present.
        value_empty: the K scores with all players absent.
        converged: with a tolerance: whether every watched standard error fell below it; else None.
        relative_error: estimated relative error of the chosen option's values
            (:func:`relative_error`, column ``argmax(value_full)``); 0 for exact estimators, None for
            estimators without standard errors.
    """

    values: np.ndarray
    stderr: np.ndarray | None
    evaluations: int
    budget: int
    estimator: str
    seed: int
    efficiency_residual: float
    distinct_prefixes: int = 0
    cost: float = 0.0
    value_full: np.ndarray | None = None
    value_empty: np.ndarray | None = None
    converged: bool | None = None
    relative_error: float | None = None


class Estimator:
    """Base class of Shapley value estimators.

    Subclasses set :attr:`name`, optionally :attr:`options` (accepted keyword options and their
    defaults) and implement :meth:`_estimate`.

    Args:
        **options: estimator-specific options (see the subclass's ``options``).
    """

    name: ClassVar[str] = "base"
    options: ClassVar[dict] = {}
    #: whether stochastic (a seed matters); exact estimators set False
    stochastic: ClassVar[bool] = True

    def __init__(self, **options):
        unknown = set(options) - set(self.options)
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise EstimatorError(f"estimator {self.name!r}: unknown option(s) {sorted(unknown)}; valid: {valid}")
        self.config = {**self.options, **options}

    # ------------------------------------------------------------------ to implement
    def min_budget(self, n_players: int) -> int:
        """Smallest budget this estimator can work with for ``n_players`` players."""
        return 2

    def _estimate(self, game: Game, budget: int, seed: int, contrasts: np.ndarray | None) -> RawEstimate:
        raise NotImplementedError

    # ------------------------------------------------------------------ public
    def estimate(
        self,
        game: Game,
        budget: int,
        seed: int = 0,
        *,
        tol: float | None = None,
        tol_groups: Sequence[Sequence[int]] | None = None,
        initial_budget: int | None = None,
        target_error: float | None = None,
    ) -> Estimate:
        """Estimate the Shapley values of ``game``.

        Args:
            game: the :class:`~vqa_shap.game.Game`.
            budget: most evaluations to spend (as the estimator counts them; repeated coalitions are
                served from the cache).
            seed: random seed (private RNG; the global NumPy RNG is never touched).
            tol: adaptive budget: start small and double the budget until every standard error is
                below ``tol`` (or, with ``tol_groups``, the standard error of every group's summed
                value, e.g. the modality contributions), or ``budget`` is spent.
            tol_groups: lists of player indices whose summed Shapley values the tolerance watches.
            initial_budget: first budget of the adaptive loop (default: budget/16, at least the
                estimator's minimum).
            target_error: adaptive budget on the estimated relative error (:func:`relative_error`
                of the chosen option): double the budget until it is below ``target_error`` or
                ``budget`` is spent (``Estimate.converged`` says which). Not with ``tol``.

        Returns:
            An :class:`Estimate`.

        Raises:
            EstimatorError: bad game, budget, seed or groups.
        """
        budget, seed = self._validate(game, budget, seed)
        contrasts = self._contrasts(tol_groups, game.n_players)
        before = game.counters()
        if tol is not None and target_error is not None:
            raise EstimatorError("give tol or target_error, not both")
        if target_error is not None:
            column = int(np.argmax(game.value_full()))
            raw, converged = self._adaptive(game, budget, seed, contrasts, target_error, initial_budget,
                                            lambda r: relative_error(np.asarray(r.values), r.stderr, column))
        elif tol is None:
            raw, converged = self._estimate(game, budget, seed, contrasts), None
        else:
            raw, converged = self._adaptive(game, budget, seed, contrasts, tol, initial_budget)
        return self._finish(game, raw, before, budget, seed, converged)

    # ------------------------------------------------------------------ steps of estimate()
    def _validate(self, game: Game, budget, seed) -> tuple[int, int]:
        """Check the game, budget and seed; return ``(budget, seed)`` as ints."""
        if not isinstance(game, Game):
            raise EstimatorError(f"estimate() needs a vqa_shap.game.Game, got {type(game).__name__}")
        if isinstance(budget, bool) or int(budget) != budget:
            raise EstimatorError(f"budget must be an integer, got {budget!r}")
        budget = int(budget)
        need = self.min_budget(game.n_players)
        if budget < need:
            raise EstimatorError(
                f"estimator {self.name!r}: budget={budget} is too small for {game.n_players} players; need at least {need}")
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise EstimatorError(f"seed must be a non-negative integer, got {seed!r}")
        return budget, int(seed)

    def _adaptive(self, game: Game, budget: int, seed: int, contrasts, tol: float,
                  initial_budget: int | None, measure=None) -> tuple[RawEstimate, bool]:
        """Double the budget from ``initial_budget`` until the watched standard errors (or
        ``measure(raw)``, e.g. the relative error) fall below ``tol`` or ``budget`` is spent;
        ``(last estimate, converged)``.

        ``budget`` caps the evaluations of the whole loop: a stage whose samples are not those of the
        stage before (e.g. ``text_flips``) scores new coalitions, so the next stage is sized by the new
        evaluations it is predicted to make (from the share of the last stage's coalitions the stage
        before had already scored), the loop ends when no larger stage fits, and a stage that would
        still go over the cap is abandoned (the Game's evaluation limit refuses it before scoring) for
        one of what is left, else for the last finished one.
        """
        if tol <= 0:
            raise EstimatorError(f"tol must be positive, got {tol!r}")
        start = game.counters()[0]
        current = min(budget, max(self.min_budget(game.n_players), initial_budget or budget // 16))
        previous, reused = 0, 1.0  # budget of the stage before; share of it the last stage reused
        raw = self._estimate(game, current, seed, contrasts)
        made = game.counters()[0] - start
        while True:
            if previous:
                reused = min(1.0, max(0.0, (current - made) / previous))
            converged = self._converged(raw, contrasts, tol, measure)
            # the largest next stage (at most double) whose predicted new evaluations fit what is left
            left = budget - (game.counters()[0] - start)
            following = min(2 * current, int(left + reused * current))
            if converged or current >= budget or following <= current:
                return raw, converged
            # if the prediction was wrong, a stage of what is left (new coalitions only) still fits
            staged = None
            for size in dict.fromkeys((following, left)):
                if size <= current:
                    continue
                before = game.counters()[0]
                game.evaluation_limit = start + budget
                try:
                    staged = self._estimate(game, size, seed, contrasts)
                    break
                except EvaluationLimitReached:
                    staged = None
                finally:
                    game.evaluation_limit = None
            if staged is None:
                return raw, converged
            previous, current, raw, made = current, size, staged, game.counters()[0] - before

    def _converged(self, raw: RawEstimate, contrasts, tol: float, measure) -> bool:
        """Whether ``raw``'s watched standard errors (or ``measure(raw)``) are below ``tol``."""
        if measure is not None:
            value = measure(raw) if raw.stderr is not None or self.stochastic else 0.0
            if value is None:
                raise EstimatorError(f"estimator {self.name!r} gives no standard errors; it cannot stop adaptively")
            return bool(value < tol)
        watched = raw.contrast_stderr if contrasts is not None else raw.stderr
        if watched is None:
            if self.stochastic:
                raise EstimatorError(f"estimator {self.name!r} gives no standard errors; it cannot stop adaptively")
            return True
        return bool(np.all(watched < tol))

    def _finish(self, game: Game, raw: RawEstimate, before, budget: int, seed: int,
                converged: bool | None) -> Estimate:
        """The :class:`Estimate` of ``raw``: counters since ``before``, efficiency residual."""
        after = game.counters()
        v_full, v_empty = game.value_full(), game.value_empty()
        values = np.asarray(raw.values, dtype=np.float64)
        residual = float(np.max(np.abs(values.sum(axis=0) - (v_full - v_empty))))
        stderr = None if raw.stderr is None else np.asarray(raw.stderr, dtype=np.float64)
        rel = relative_error(values, stderr, int(np.argmax(v_full)))
        return Estimate(
            values=values,
            stderr=stderr,
            evaluations=after[0] - before[0],
            budget=budget,
            estimator=raw.estimator or self.name,
            seed=seed,
            efficiency_residual=residual,
            distinct_prefixes=after[1] - before[1],
            cost=after[2] - before[2],
            value_full=v_full,
            value_empty=v_empty,
            converged=converged,
            relative_error=0.0 if rel is None and not self.stochastic else rel,
        )

    @staticmethod
    def _contrasts(tol_groups, n_players: int) -> np.ndarray | None:
        if tol_groups is None:
            return None
        rows = []
        for g, members in enumerate(tol_groups):
            members = list(members)
            if not members or min(members) < 0 or max(members) >= n_players:
                raise EstimatorError(f"tol_groups[{g}] must list player indices in 0..{n_players - 1}")
            row = np.zeros(n_players)
            row[members] = 1.0
            rows.append(row)
        return np.array(rows)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({opts})"

