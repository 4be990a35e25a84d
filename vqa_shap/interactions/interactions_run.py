"""``vqa-shap interactions``: a questions config through a model -> an interactions config.

The run is ``explain``'s (:func:`vqa_shap.explain.explain_questions` with an :class:`InteractionsJob`):
the same work directory, resume per question, atomic work files, error rows and Hub-style output; only
what is computed per question differs. Per question the players are either

* ``modality``: three players — all video features, all question words, all option words — and the
  exact k-SII from the ``2^3 = 8`` group coalitions (V×Q, V×A, Q×A); or
* ``top-k``: the ``k`` features with the largest ``|φ|`` of the ground-truth option's score (φ from
  the question's row of an attributions config, else computed with a Shapley estimator), every other
  feature kept; exact when ``2^k <= budget``, else a shapiq approximator with ``budget``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vqa_shap.explain.explain_run import ExplainRun
from vqa_shap.explain.workdir import ExplainError, ExplainInputError
from vqa_shap.explain.question import QuestionExplainer
from vqa_shap.explain.job import AttributionsJob
from vqa_shap.schema.records import require_answer
from vqa_shap.interactions.index import (
    APPROXIMATORS, INDEX, InteractionError, exact_interactions, interaction_budget, interactions, modality_groups,
    top_players,
)
from vqa_shap.interactions.record import InteractionPlayer, InteractionRecord, interaction_features

__all__ = ["DEFAULT_BUDGET", "DEFAULT_K", "PLAYER_KINDS", "InteractionsJob", "InteractionExplainer", "interactions_questions"]

PLAYER_KINDS = ("modality", "top-k")
DEFAULT_K = 8
#: Coalitions per question of an interactions game (exact up to k = 8), and of the φ that ranks the top-k
#: players when no attributions are given (a ranking, not explain's default budget).
DEFAULT_BUDGET = 256
#: Largest k (pairs grow as k^2; the game as 2^k when exact).
MAX_K = 64


@dataclass(frozen=True)
class InteractionsJob(AttributionsJob):
    """What ``vqa-shap interactions`` computes per question (a job of :class:`~vqa_shap.explain.ExplainRun`).

    Attributes:
        players: ``modality`` or ``top-k``.
        k: players of a ``top-k`` game (fewer when the question has fewer features).
        approximator: shapiq approximator when ``2^k`` exceeds the budget (:data:`APPROXIMATORS`).
        attributions: Hub-style attributions folder with the φ to rank by (``top-k``; None: compute φ).
        attributions_config: its config (default: ``<model slug>__<questions config>``).
        phi_estimator: Shapley estimator when φ is computed.
        phi_budget: its budget.
    """

    players: str = "modality"
    k: int = DEFAULT_K
    approximator: str = "KernelSHAPIQ"
    attributions: str | None = None
    attributions_config: str | None = None
    phi_estimator: str = "default"
    phi_budget: int = DEFAULT_BUDGET

    kind = "interactions"

    def __post_init__(self):
        if self.players not in PLAYER_KINDS:
            raise ExplainInputError(f"players must be one of {', '.join(PLAYER_KINDS)}, got {self.players!r}")
        if not 2 <= self.k <= MAX_K:
            raise ExplainInputError(f"k must be between 2 and {MAX_K}, got {self.k}")
        if self.approximator not in APPROXIMATORS:
            raise ExplainInputError(f"unknown approximator {self.approximator!r}; valid: {', '.join(APPROXIMATORS)}")
        if self.attributions is not None and self.players != "top-k":
            raise ExplainInputError("attributions rank the top-k players; they are not used with players='modality'")

    def features(self):
        return interaction_features()

    def tag(self) -> str:
        return "modality" if self.players == "modality" else f"top{self.k}"

    def config_name(self, run: ExplainRun) -> str:
        return f"{super().config_name(run)}__{self.tag()}"

    def estimator_name(self, run: ExplainRun) -> str:
        exact = self.players == "modality" or interaction_budget(self.k, run.budget)[0]  # as interactions() decides
        return "exact" if exact else self.approximator

    def settings_extra(self) -> str:
        extra = {"interaction_index": INDEX, "players": self.players, "context": "kept"}
        if self.players == "top-k":
            extra.update(k=self.k, approximator=self.approximator, rank_by="|phi| of the ground-truth option")
            if self.attributions is not None:
                extra.update(attributions=os.path.abspath(self.attributions),
                             attributions_config=self.attributions_config)
            else:
                extra.update(phi_estimator=self.phi_estimator, phi_budget=self.phi_budget)
        return json.dumps(extra, sort_keys=True)

    def explainer(self, loader, settings, run: ExplainRun, shot_cache=None) -> "InteractionExplainer":
        return InteractionExplainer(loader, settings, run.video_root, job=self,
                                    phi=self._phi_rows(run), shot_cache=shot_cache)

    def _phi_rows(self, run: ExplainRun) -> dict[str, dict[str, Any]] | None:
        """qid -> attributions row of the ranking config (None when φ is computed)."""
        if self.attributions is None:
            return None
        from vqa_shap.explain.explain_run import load_fresh
        from vqa_shap.attribution_checks import check_rows

        config = self.attributions_config or AttributionsJob().config_name(run)
        rows = load_fresh(self.attributions, config).to_list()
        check_rows(f"{self.attributions}: config {config!r}", rows)  # NaN would rank the top-k players
        return {row["qid"]: row for row in rows}


class InteractionExplainer(QuestionExplainer):
    """Explains single questions with pairwise interactions (see :class:`InteractionsJob`)."""

    def __init__(self, loader, settings, video_root, *, job: InteractionsJob, phi=None, **kwargs):
        super().__init__(loader, settings, video_root, estimator=job.phi_estimator, **kwargs)
        self.job = job
        self.phi = phi

    def _record(self, question, **fields) -> InteractionRecord:
        from vqa_shap import __version__

        s = self.settings
        return InteractionRecord(
            qid=question.qid, benchmark=question.benchmark, task=question.task, variant=question.variant,
            model=s.model, loader=s.loader, protocol=s.protocol, answer=question.answer, index=INDEX,
            players_kind=self.job.players, seed=int(s.seed), version=__version__,
            **{"estimator": s.estimator, "budget": int(s.budget), **fields})

    def _error_record(self, question, reason: str, *, evaluations: int, runtime_s: float):
        return self._record(question, error=reason, evaluations=evaluations, runtime_s=runtime_s)

    def _explain(self, question, start: float) -> InteractionRecord:
        from vqa_shap.game import Game

        features, game, _ = self.question_game(question, self._check_size)
        modalities = [f.modality for f in features]
        phi_source = None
        if self.job.players == "modality":
            groups = modality_groups(modalities)
            names = ["video", "question", "answer"]
        else:
            phi, phi_source = self._phi(question, features, game)
            groups = [[i] for i in top_players(phi, require_answer(question, 'ranking players by the answer'), min(self.job.k, len(features)))]
            names = [features[g[0]].name for g in groups]
        restricted = Game(game.value_fn, game.n_features, groups=groups,
                          video_features=np.flatnonzero(game.video_feature_mask))
        if self.job.players == "modality":
            result = exact_interactions(restricted)
        else:
            result = interactions(restricted, self.settings.budget, approximator=self.job.approximator,
                                  seed=self.settings.seed)
        return self._record(
            question, features=tuple(features),
            players=tuple(InteractionPlayer(n, tuple(int(i) for i in g)) for n, g in zip(names, groups)),
            pairs=result.pairs, interactions=result.values, main=result.main,
            value_full=tuple(result.value_full.tolist()), value_empty=tuple(result.value_empty.tolist()),
            prediction=int(np.argmax(result.value_full)), phi_source=phi_source, estimator=result.estimator,
            budget=result.budget, evaluations=int(game.evaluations + restricted.evaluations),
            runtime_s=time.perf_counter() - start)

    def _check_size(self, n_features: int) -> None:
        self._budget(n_features)  # the same player limit as explain
        if self.job.players == "top-k" and n_features < 2:
            raise InteractionError(f"{n_features} feature(s): pairwise interactions need at least 2")

    def _phi(self, question, features, game) -> tuple[np.ndarray, str]:
        """φ ``[F, K]`` to rank by: the attributions row (checked against ``features``) or computed."""
        if self.phi is None:
            budget = max(self.job.phi_budget, self.estimator.min_budget(len(features)))
            estimate = self.estimator.estimate(game, budget, self.settings.seed)
            return estimate.values, f"computed:{self.estimator.name}"
        row = self.phi.get(question.qid)
        where = f"attributions {self.job.attributions}"
        if row is None:
            raise ExplainError(f"question {question.qid!r}: no row in {where}")
        if row.get("error"):
            raise ExplainError(f"question {question.qid!r}: its row in {where} is an error row ({row['error']})")
        names = [f["name"] for f in row["features"]]
        if names != [f.name for f in features]:
            raise ExplainError(f"question {question.qid!r}: its row in {where} has features {names[:6]}... "
                               f"({len(names)}), the question now has {len(features)}; explain it with the same "
                               "protocol, frames and loader")
        return np.asarray(row["shapley"], dtype=np.float64), "attributions"


def interactions_questions(run: ExplainRun, job: InteractionsJob):
    """Pairwise interactions of every question of a questions config; writes the interactions config.

    Args:
        run: the run (as for :func:`~vqa_shap.explain.explain_questions`; its ``estimator`` is ignored,
            ``budget`` is the interaction budget per question, single process).
        job: what to compute.

    Returns:
        The :class:`~vqa_shap.explain.ExplainResult`.
    """
    from dataclasses import replace

    from vqa_shap.explain.explain_run import explain_questions

    # the modality game always takes its 8 coalitions: record that, not an unused budget
    run = replace(run, job=job, rank=0, world_size=1, **({"budget": 8} if job.players == "modality" else {}))
    if job.attributions is not None:
        from vqa_shap.hub import folder as hub

        if not Path(job.attributions).is_dir():
            raise ExplainInputError(f"attributions folder {job.attributions} does not exist")
        config = job.attributions_config or AttributionsJob().config_name(run)
        configs = hub.list_configs(job.attributions)
        if config not in configs:
            raise ExplainInputError(f"attributions folder {job.attributions} has no config {config!r}; "
                                    f"configs: {', '.join(configs) or 'none'} (--attributions-config)")
    return explain_questions(run)
