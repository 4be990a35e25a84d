"""What the explain run computes per question: the job. Shapley attributions by default; another job
(e.g. :class:`vqa_shap.interactions.interactions_run.InteractionsJob`) reuses the whole run."""

from __future__ import annotations

import os
from typing import Protocol

from vqa_shap.explain.question import QuestionExplainer
from vqa_shap.explain.workdir import ExplainSettings, attributions_config



class RunSettings(Protocol):
    """What a job reads of the run (:class:`~vqa_shap.explain.explain_run.ExplainRun` has these): declared
    here so that the job, below the run, does not import it."""

    model: str
    config: str
    estimator: str
    video_root: str | os.PathLike


class AttributionsJob:
    """What ``explain`` computes per question: Shapley attributions (the default job of :class:`~vqa_shap.explain.explain_run.ExplainRun`).

    Another job (e.g. :class:`vqa_shap.interactions.interactions_run.InteractionsJob`) provides the same members
    and reuses the whole run: work directory, resume per question, atomic writes, error rows.
    """

    #: card template and folder kind
    kind = "attributions"

    def features(self):
        """The ``datasets.Features`` of the rows."""
        from vqa_shap.schema.arrow import attribution_features

        return attribution_features()

    def config_name(self, run: RunSettings) -> str:
        """The default output config name."""
        return attributions_config(run.model, run.config)

    def estimator_name(self, run: RunSettings) -> str:
        """The estimator recorded in the settings (raises a VqaShapError for an unknown one)."""
        from vqa_shap.estimators import get_estimator

        # The estimator's own name ("default" is an alias that may change between versions).
        return get_estimator(run.estimator).name

    def settings_extra(self) -> str | None:
        """Job settings that determine the numbers, as canonical JSON (None: nothing beyond ExplainSettings)."""
        return None

    def explainer(self, loader, settings: ExplainSettings, run: RunSettings, shot_cache=None) -> QuestionExplainer:
        """The per-question explainer (``explain(question) -> record with to_row()``); ``shot_cache``:
        where detected shot cuts are cached (``--players shots``)."""
        return QuestionExplainer(loader, settings, run.video_root, shot_cache=shot_cache)


#: the default job
ATTRIBUTIONS = AttributionsJob()
