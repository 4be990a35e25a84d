"""The default estimator: a documented rule that picks an estimator from the game's size and budget.

The rule comes from ``scripts/bench_estimators.py`` (``docs/estimators.md``), which compares every
estimator's error per unit of *modelled compute* (longest-common-prefix cost) against permutation
sampling (= shap's PermutationExplainer) at 5000 evaluations.
"""

from __future__ import annotations

from dataclasses import replace

from vqa_shap.estimators.base import Estimator, RawEstimate
from vqa_shap.game import Game

#: at most this many players, with a budget the regression can use, the default is a regression
SMALL_GAME = 24
#: the estimator (name, options) used in each regime
SMALL_CHOICE = ("kernel", {"border": True, "tail": 2})
SMALL_CHOICE_NO_VIDEO = ("kernel", {"border": True})
#: below this many evaluations per player the tail leaves too few drawn coalitions: plain paired KernelSHAP
TAIL_MIN_PER_PLAYER = 16
SMALL_CHOICE_LOW_BUDGET = ("kernel", {})
#: every larger game with video players, at every budget; without video players
LARGE_CHOICE = ("text_flips", {"shifts": 2, "text_draws": 8})
LARGE_CHOICE_NO_VIDEO = ("cyclic", {})


def choose(n_players: int, budget: int, has_video: bool = True) -> tuple[str, dict]:
    """The estimator the default uses for a game of ``n_players`` players and ``budget`` evaluations.

    * ``n_players ≤ SMALL_GAME`` and ``budget`` at least the regression's minimum (``4F+2``) and
      at most what its in-memory design allows (any budget for F ≤ 20, where it enumerates):
      paired KernelSHAP that enumerates the size classes the budget covers (``border``) and, when
      the game has video players, scores all four settings of the last two players under every
      drawn coalition (``tail=2``: those coalitions differ only at the end of the prompt, so under
      longest-common-prefix sharing they cost a few ms each). On the demo model's game (F = 18)
      this needs the least compute of everything measured. A game without video players has no
      prefix to share (every coalition costs a full forward), so there the tail would only add
      correlated rows: ``kernel`` with ``border`` alone. Below ``16 F`` evaluations plain paired
      KernelSHAP: the tail's four coalitions per draw leave too few draws (on the demo model at
      F = 17 and ~100 evaluations, ``tail=2`` had error 2.02 in the pipeline benchmark, plain
      ``kernel`` 0.91, ``cyclic`` 1.36 at 69; see docs/estimators.md);
    * otherwise, with video players, ``text_flips:shifts=2``: ``cyclic``'s paths (cyclic shifts of
      antithetic orders: every player's position stratified, which pays on nearly additive games
      such as random-weight models) plus eight one-word flip sets per path for the text players,
      which on trained games carry most of the variance and cost only text suffixes; without video
      players (nothing cheaper to flip) ``cyclic``, which is what ``text_flips`` would run. The
      measurements behind the choice are in docs/estimators.md.
    """
    from vqa_shap.estimators import get_estimator

    from vqa_shap.estimators.kernel import MAX_PAIRS

    name, options = SMALL_CHOICE if has_video else SMALL_CHOICE_NO_VIDEO
    fits = n_players <= 20 or budget <= 2 + 2 * MAX_PAIRS   # a regression design is held in memory
    if n_players <= SMALL_GAME and fits and budget >= get_estimator(name, **options).min_budget(n_players):
        return (name, options) if budget >= TAIL_MIN_PER_PLAYER * n_players else SMALL_CHOICE_LOW_BUDGET
    return LARGE_CHOICE if has_video else LARGE_CHOICE_NO_VIDEO


def member_spec(name: str, options: dict) -> str:
    """``"name"`` or ``"name:key=value,..."`` (the spec syntax of ``scripts/bench_estimators.py``)."""
    return name + (":" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) if options else "")


class AutoEstimator(Estimator):
    """The default: :func:`choose` picks the estimator from F and the budget, then runs it (its
    standard errors, efficiency and sampling are the chosen estimator's). The
    :class:`~vqa_shap.estimators.base.Estimate` records ``"auto/<member spec>"``, e.g.
    ``"auto/kernel:border=True,tail=2"``."""

    name = "auto"

    def min_budget(self, n_players: int) -> int:
        from vqa_shap.estimators import get_estimator

        return min(get_estimator(name, **options).min_budget(n_players)
                   for name, options in (SMALL_CHOICE, SMALL_CHOICE_NO_VIDEO, SMALL_CHOICE_LOW_BUDGET, LARGE_CHOICE,
                                         LARGE_CHOICE_NO_VIDEO))

    def _estimate(self, game: Game, budget: int, seed: int, contrasts) -> RawEstimate:
        from vqa_shap.estimators import get_estimator

        name, options = choose(game.n_players, budget, has_video=bool(game.video_player_mask.any()))
        raw = get_estimator(name, **options)._estimate(game, budget, seed, contrasts)
        return replace(raw, estimator=f"{self.name}/{member_spec(name, options)}")
