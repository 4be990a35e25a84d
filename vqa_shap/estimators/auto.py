"""The default estimator: a documented rule that picks an estimator from the game's size and budget.

The rule comes from ``scripts/bench_estimators.py`` (``docs/estimators.md``), which compares every
estimator's error per unit of *modelled compute* (longest-common-prefix cost) against permutation
sampling (= shap's PermutationExplainer) at 5000 evaluations.
"""

from __future__ import annotations

from dataclasses import replace

from vqa_shap.estimators.base import Estimator, RawEstimate
from vqa_shap.estimators.spec import format_spec
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

    * ``n_players ≤ SMALL_GAME`` and a budget the regression can use: paired KernelSHAP enumerating
      the size classes the budget covers (``border``); with video players also every setting of the
      last two players under each drawn coalition (``tail=2``: cheap under prefix sharing), except
      below ``TAIL_MIN_PER_PLAYER · F`` evaluations, where the tail leaves too few draws;
    * otherwise, with video players, ``text_flips:shifts=2,text_draws=8``: ``cyclic``'s paths plus
      one-word flip sets for the text players, which carry most of a trained game's variance and cost
      only text suffixes; without video players ``cyclic`` (antithetic orders, each also cyclically
      shifted).

    The measurements behind the rule: docs/estimators.md (generated from ``benchmarks/``).
    """
    from vqa_shap.estimators import get_estimator

    from vqa_shap.estimators.kernel import MAX_PAIRS

    name, options = SMALL_CHOICE if has_video else SMALL_CHOICE_NO_VIDEO
    fits = n_players <= 20 or budget <= 2 + 2 * MAX_PAIRS   # a regression design is held in memory
    if n_players <= SMALL_GAME and fits and budget >= get_estimator(name, **options).min_budget(n_players):
        return (name, options) if budget >= TAIL_MIN_PER_PLAYER * n_players else SMALL_CHOICE_LOW_BUDGET
    return LARGE_CHOICE if has_video else LARGE_CHOICE_NO_VIDEO


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
        return replace(raw, estimator=f"{self.name}/{format_spec(name, options)}")
