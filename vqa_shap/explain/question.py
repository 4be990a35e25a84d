"""One question: frames, players, the game and the estimate -> one attributions record."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from vqa_shap.errors import InternalError, VqaShapError
from vqa_shap.explain.workdir import ExplainError, ExplainSettings
from vqa_shap.explain_options import MAX_PLAYERS

logger = logging.getLogger(__name__)

#: Exceptions that make one question an error row instead of stopping the run. Anything else
#: (TypeError, AttributeError, ...) is a bug and stops the run loudly. ``MemoryError``: a question
#: too big for this machine is that question's failure, not the run's.
QUESTION_ERRORS: tuple[type[BaseException], ...] = (VqaShapError, OSError, ValueError, RuntimeError, MemoryError)

#: Most coalition-matrix cells (budget x players) one question may need (about 2 GB as booleans).
MAX_COALITION_CELLS = 2 * 1024**3


def check_inputs_contained(question, video_root: Path) -> None:
    """Refuse an input path that is absolute or leaves ``video_root`` (``..``): no file outside it is read."""
    root = os.path.normpath(os.path.abspath(video_root))
    for inp in question.inputs:
        path = str(inp.path)
        full = os.path.normpath(os.path.join(root, path))
        if os.path.isabs(path) or os.path.commonpath([root, full]) != root:
            raise ExplainError(f"question {question.qid!r}: input path {path!r} is outside the video root {root}")


class Heartbeat:
    """Logs a line now and then (every :attr:`every` seconds) while a long question is scored, so a run
    without a progress bar never looks hung; call it with each batch of scores (returned unchanged)."""

    every = 30.0

    def __init__(self, what: str):
        self.what, self.rows = what, 0
        self.started = self.last = time.perf_counter()

    def __call__(self, scores):
        self.rows += len(scores)
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            logger.info("%s: %d coalitions scored so far (%.0f s)", self.what, self.rows, now - self.started)
        return scores


class QuestionExplainer:
    """Explains single questions with one loaded model (loaded once per process).

    Args:
        loader: a loaded :class:`vqa_shap.loaders.bases.loader.Loader`.
        settings: the run's settings.
        video_root: folder the questions' input paths are relative to.
        protocol: the protocol instance (default: ``get_protocol(settings.protocol)``).
        shot_cache: folder caching shot boundaries per video (``settings.players == "shots"``);
            ``None``: detect again for every question.
    """

    def __init__(self, loader, settings: ExplainSettings, video_root: str | os.PathLike, *,
                 protocol=None, estimator: str | None = None,
                 shot_cache: str | os.PathLike | None = None):
        from vqa_shap.estimators import get_estimator
        from vqa_shap.protocol import get_protocol

        self.loader = loader
        self.settings = settings
        self.video_root = Path(video_root)
        self.protocol = protocol if protocol is not None else get_protocol(settings.protocol)
        self.estimator = get_estimator(estimator or settings.estimator)
        self.shot_cache = shot_cache
        self._warned_repeats = False
        self._told_cost = False
        self._aks_scorer = None
        if settings.sampler == "aks":  # loaded once, now: a scorer that cannot load stops the run, not each question
            from vqa_shap.long_video.aks import make_scorer

            self._aks_scorer = make_scorer(settings.aks_scorer, loader, self.protocol)
        self._game = None  # the question's game while it is explained (its evaluations go into an error row)

    def _record(self, question, **fields):
        from vqa_shap import __version__
        from vqa_shap.schema.records import Attribution

        s = self.settings
        return Attribution(
            qid=question.qid, benchmark=question.benchmark, task=question.task, variant=question.variant,
            model=s.model, loader=s.loader, protocol=s.protocol, answer=question.answer,
            estimator=fields.pop("estimator", s.estimator), budget=int(fields.pop("budget", s.budget)), seed=int(s.seed),
            version=__version__, **fields,
        )

    def _warn_repeats(self, question, plan, n_players: int) -> None:
        """Say once per run that a video is shorter than the frames asked for (the paper repeats frames),
        and what the repeats cost: each repeated frame is a player of its own."""
        distinct = len({(f.input, f.index) for f in plan.frames})
        if distinct < len(plan) and not self._warned_repeats:
            self._warned_repeats = True
            logger.warning("question %s: %d frames requested but its video has only %d distinct frame(s); "
                           "frames are repeated as in the paper, so the game has %d players instead of %d "
                           "(said once per run; ask for fewer --frames to spend less)",
                           question.qid, len(plan), distinct, n_players, n_players - len(plan) + distinct)

    def _tell_cost(self, question, n_players: int, budget: int) -> None:
        """Say once per run, before the first model call, what one question costs (and a raised budget)."""
        if self._told_cost:
            return
        self._told_cost = True
        if budget > self.settings.budget:
            logger.warning("question %s: %d players need at least %d evaluations with estimator %s, more than "
                           "--budget %d; each such question uses %d (--strict-budget keeps %d)", question.qid,
                           n_players, budget, self.estimator.name, self.settings.budget, budget, self.settings.budget)
        else:
            logger.info("question %s: %d players, %d evaluations", question.qid, n_players, budget)

    def _budget(self, n_players: int) -> int:
        """The budget to spend on a game of ``n_players`` (refusing what cannot fit)."""
        if n_players > MAX_PLAYERS:
            raise ExplainError(f"{n_players} players (frames + words) exceed the limit of {MAX_PLAYERS}; "
                               "shorten the question or ask for fewer frames")
        budget = self.settings.budget
        if not self.settings.strict_budget:  # too few evaluations for one estimate: use the estimator's minimum
            budget = max(budget, self.estimator.min_budget(n_players))
        if budget * n_players > MAX_COALITION_CELLS:
            raise ExplainError(f"budget {budget} x {n_players} players does not fit in memory "
                               f"(limit {MAX_COALITION_CELLS} coalition cells); lower --budget")
        return budget

    def _plan(self, question):
        """The question's frames: the sampler's, or AKS's pick among scored candidates."""
        s = self.settings
        if s.sampler != "aks":
            return self.protocol.plan_frames(question, self.video_root, s.n_frames, sampler=s.sampler,
                                             loader_family=self.loader.family)
        from vqa_shap.long_video.aks import make_scorer, plan_aks

        if self._aks_scorer is None:  # loaded once (a CLIP model) for every question
            self._aks_scorer = make_scorer(s.aks_scorer, self.loader, self.protocol)
        plan, _ = plan_aks(self.protocol, question, self.video_root, s.n_frames, self._aks_scorer,
                           loader_family=self.loader.family)
        return plan

    def _players(self, question, plan, features):
        """``(players, groups)``: the recorded players and the Game's feature groups (``None``: each
        feature is a player). ``players == "shots"`` masks the frames of each shot together."""
        if self.settings.players != "shots":
            return features, None
        from vqa_shap.long_video.shots import shot_layout

        return shot_layout(self.protocol, question, plan, features, self.loader.temporal_unit, self.video_root,
                           detector=self.settings.shot_detector, cache_dir=self.shot_cache)

    def question_game(self, question, size_check=None):
        """The question's players (features, or shots and words) and its :class:`~vqa_shap.game.Game`
        (coalitions of players -> option scores).

        Args:
            question: the :class:`~vqa_shap.schema.records.Question`.
            size_check: called with the number of features before any frame is read (default
                :meth:`_budget`); its result is returned.

        Returns:
            ``(players, game, size_check(len(players)))``.
        """
        from vqa_shap.game import Game

        proto, loader = self.protocol, self.loader
        check_inputs_contained(question, self.video_root)
        plan = self._plan(question)
        features = proto.features(question, plan, loader.temporal_unit)
        players, groups = self._players(question, plan, features)
        self._warn_repeats(question, plan, len(players))
        checked = (size_check or self._budget)(len(players))
        if isinstance(checked, int):
            self._tell_cost(question, len(players), checked)
        frames = proto.load_frames(question, self.video_root, plan)
        prepared = loader.prepare(question, frames, plan, proto)
        n_video = proto.n_video_players(plan, loader.temporal_unit)
        beat = Heartbeat(f"question {question.qid}")
        self._game = Game(lambda coalitions: beat(loader.score(prepared, coalitions)), n_features=len(features),
                          groups=groups, video_features=n_video)  # one call per request: the loader batches
        return players, self._game, checked

    def explain(self, question):
        """The record of ``question`` (:meth:`_explain`); an error record (``error`` set) if it cannot
        be explained (see :data:`QUESTION_ERRORS`)."""
        start = time.perf_counter()
        self._game = None
        try:
            return self._explain(question, start)
        except QUESTION_ERRORS as exc:
            reason = str(exc) if isinstance(exc, VqaShapError) else f"{type(exc).__name__}: {exc}"
            logger.warning("question %s could not be explained: %s", question.qid, reason)
            return self._error_record(question, reason or type(exc).__name__,
                                      evaluations=int(self._game.evaluations) if self._game is not None else 0,
                                      runtime_s=time.perf_counter() - start)

    def _error_record(self, question, reason: str, *, evaluations: int, runtime_s: float):
        return self._record(question, features=(), shapley=[], error=reason, evaluations=evaluations,
                            runtime_s=runtime_s)

    def _explain(self, question, start: float):
        """The :class:`~vqa_shap.schema.records.Attribution` of ``question``."""
        import numpy as np

        features, game, budget = self.question_game(question)
        estimate = self.estimator.estimate(game, budget, self.settings.seed, target_error=self.settings.target_error)
        value_full = np.asarray(game.value_full(), dtype=np.float64)
        value_empty = np.asarray(game.value_empty(), dtype=np.float64)
        values = np.asarray(estimate.values, dtype=np.float64)
        if values.shape != (len(features), value_full.shape[0]):
            raise InternalError(f"estimate has shape {values.shape}, expected "
                               f"({len(features)}, {value_full.shape[0]})")
        return self._record(
            question, features=features, shapley=values, stderr=estimate.stderr,
            relative_error=estimate.relative_error,
            value_full=value_full.astype(np.float32).tolist(),
            value_empty=value_empty.astype(np.float32).tolist(),
            prediction=int(np.argmax(value_full)), evaluations=int(game.evaluations), budget=budget,
            estimator=estimate.estimator,  # the member actually run (e.g. "auto/kernel")
            runtime_s=time.perf_counter() - start,
        )
