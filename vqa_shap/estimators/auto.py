"""The default estimator: a documented rule that picks an estimator from the game's size and budget.

The rule comes from ``scripts/bench_estimators.py`` (``docs/estimators.md``), which compares every
estimator's error per unit of *modelled compute* (longest-common-prefix cost) against permutation
sampling (= shap's PermutationExplainer) at 5000 evaluations.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vqa_shap.estimators.base import Estimator, RawEstimate
from vqa_shap.estimators.permutation import path_masks
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
#: a larger game with video players whose pilot finds it rough (a trained model's, whose answer jumps
#: when an evidence word and its frames are present together) runs this instead
ROUGH_CHOICE = ("forest_msr", {})
#: the pilot: ``permutation`` (whose paths are ``LARGE_CHOICE``'s first, so a smooth game loses nothing)
#: at this many permutations ...
PILOT_PERMUTATIONS = 2
#: ... run only where the budget holds this many pilots (below, ``LARGE_CHOICE`` runs as it is)
PILOTS_PER_BUDGET = 2
#: the pilot's relative error (all options pooled) from which a game is rough: measured 0.6–1.1 on the
#: trained demo games, 0.08–0.14 on the random-weight and video-like ones (docs/estimators.md)
ROUGH_PILOT_ERROR = 0.4
#: the rough member's seed is drawn from this stream of the run's seed
ROUGH_SEED_STREAM = 25


def rule() -> dict:
    """Every setting of the rule, e.g. for a digest of stored runs (another rule: other runs)."""
    return {"small": SMALL_GAME, "choices": [SMALL_CHOICE, SMALL_CHOICE_NO_VIDEO, SMALL_CHOICE_LOW_BUDGET, LARGE_CHOICE,
                                             LARGE_CHOICE_NO_VIDEO, ROUGH_CHOICE],
            "tail_min": TAIL_MIN_PER_PLAYER, "pilot": [PILOT_PERMUTATIONS, PILOTS_PER_BUDGET, ROUGH_PILOT_ERROR],
            # 2: the rough member fits on the pilot's own coalitions (1 fitted on all the Game had scored)
            "rough_fit": 2}


def pilot_budget(n_players: int, budget: int, has_video: bool = True) -> int:
    """Evaluations of the pilot that decides between ``LARGE_CHOICE`` and ``ROUGH_CHOICE`` (0: no pilot,
    :func:`choose`'s estimator runs as it is)."""
    pilot = PILOT_PERMUTATIONS * (2 * n_players + 1)
    if choose(n_players, budget, has_video) != LARGE_CHOICE or budget < PILOTS_PER_BUDGET * pilot:
        return 0
    return pilot


def choose(n_players: int, budget: int, has_video: bool = True) -> tuple[str, dict]:
    """The estimator the default uses for a game of ``n_players`` players and ``budget`` evaluations.

    * ``n_players ≤ SMALL_GAME`` and a budget the regression can use: paired KernelSHAP enumerating
      the size classes the budget covers (``border``); with video players also every setting of the
      last two players under each drawn coalition (``tail=2``: cheap under prefix sharing), except
      below ``TAIL_MIN_PER_PLAYER · F`` evaluations, where the tail leaves too few draws;
    * otherwise, with video players, ``text_flips:shifts=2,text_draws=8``: ``cyclic``'s paths plus
      one-word flip sets for the text players, which carry most of a trained game's variance and cost
      only text suffixes; without video players ``cyclic`` (antithetic orders, each also cyclically
      shifted). With video players and a budget of at least ``PILOTS_PER_BUDGET`` pilots,
      :class:`AutoEstimator` first scores a pilot (:func:`pilot_budget`) and runs ``ROUGH_CHOICE``
      instead when the game is rough.

    The measurements behind the rule: docs/estimators.md (generated from ``benchmarks/``).
    """
    from vqa_shap.estimators import get_estimator

    from vqa_shap.estimators.kernel import MAX_PAIRS

    name, options = SMALL_CHOICE if has_video else SMALL_CHOICE_NO_VIDEO
    fits = n_players <= 20 or budget <= 2 + 2 * MAX_PAIRS   # a regression design is held in memory
    if n_players <= SMALL_GAME and fits and budget >= get_estimator(name, **options).min_budget(n_players):
        return (name, options) if budget >= TAIL_MIN_PER_PLAYER * n_players else SMALL_CHOICE_LOW_BUDGET
    return LARGE_CHOICE if has_video else LARGE_CHOICE_NO_VIDEO


def pilot_error(raw: RawEstimate) -> float:
    """The pilot's relative error, every option pooled: ``‖stderr‖ / ‖φ‖`` (0 for a game whose values are all 0)."""
    size = float((raw.values ** 2).sum())
    return float(np.sqrt((raw.stderr ** 2).sum() / size)) if size > 0 else 0.0


class AutoEstimator(Estimator):
    """The default: :func:`choose` picks the estimator from F and the budget, then runs it (its
    standard errors, efficiency and sampling are the chosen estimator's). Above ``SMALL_GAME`` with
    video players and budget for :func:`pilot_budget`, ``PILOT_PERMUTATIONS`` permutations come first:
    on a smooth game (:func:`pilot_error` below ``ROUGH_PILOT_ERROR``) they are ``LARGE_CHOICE``'s own
    first paths, so it runs as if alone; on a rough one ``ROUGH_CHOICE`` runs on the rest of the budget
    with the pilot's rows in its surrogate's fit. Each member is unbiased; the choice depends on the
    pilot's values only for a game near the threshold (the measured games sit at least 1.6× away). The
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

        has_video = bool(game.video_player_mask.any())
        name, options = choose(game.n_players, budget, has_video=has_video)
        pilot = pilot_budget(game.n_players, budget, has_video)
        if pilot:
            permutation = get_estimator("permutation")
            raw = permutation._estimate(game, pilot, seed, None)
            if pilot_error(raw) >= ROUGH_PILOT_ERROR:
                # a fresh seed: the rough member's coalitions are drawn independently of the pilot's, which
                # join its surrogate's fit (so its residual estimate stays unbiased given the pilot). Only the
                # pilot's own coalitions: anything else the Game scored (an earlier stage of an adaptive run)
                # may be the rough member's own rows, which its folds must not fit on
                paths = path_masks(next(permutation._orders(game, PILOT_PERMUTATIONS, seed, PILOT_PERMUTATIONS)))
                paths = paths.reshape(-1, game.n_players)
                pilot_rows = paths[np.sort(np.unique(paths, axis=0, return_index=True)[1])]   # each coalition once
                rough_seed = int(np.random.SeedSequence([seed, ROUGH_SEED_STREAM]).generate_state(1)[0])
                rough, rough_options = ROUGH_CHOICE
                # the pilot's share of the budget is its coalitions, so a run's estimate does not depend on what
                # the Game had scored before it
                raw = get_estimator(rough, **rough_options)._estimate(
                    game, budget - len(pilot_rows), rough_seed, contrasts, fit_rows=(pilot_rows, game(pilot_rows)))
                return replace(raw, estimator=f"{self.name}/{format_spec(*ROUGH_CHOICE)}")
        raw = get_estimator(name, **options)._estimate(game, budget, seed, contrasts)
        return replace(raw, estimator=f"{self.name}/{format_spec(name, options)}")
