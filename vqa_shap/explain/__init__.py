"""Explain a questions dataset with a model: the attributions dataset, resumable, shardable, mergeable.

:func:`explain_questions` maps a questions config through a model with ``Dataset.map`` and writes one
attributions row per question; what to run is one frozen :class:`ExplainRun` (its options are declared
in :mod:`vqa_shap.explain_options`). Every finished question is a work file written atomically, keyed
on the question's content and the settings, so a killed run resumes; shards are merged by
:func:`merge_shards`. Options, resume and sharding: docs/explain.md.

Modules: :mod:`~vqa_shap.explain.workdir` (names, shards, settings, work directory),
:mod:`~vqa_shap.explain.question` (one question), :mod:`~vqa_shap.explain.run` (the run loop),
:mod:`~vqa_shap.explain.merge` (assembling and merging).
"""

from vqa_shap.explain.merge import MergeResult, assemble, find_work_dirs, merge_shards
from vqa_shap.estimators import DEFAULT_ESTIMATOR
from vqa_shap.explain.question import QUESTION_ERRORS, QuestionExplainer, check_inputs_contained
from vqa_shap.explain.run import ExplainResult, ExplainRun, explain_questions, load_fresh
from vqa_shap.explain_options import (
    DEFAULT_BATCH_SIZE, DEFAULT_BUDGET, DEFAULT_FRAMES, DEFAULT_PROTOCOL, MAX_PLAYERS,
)
from vqa_shap.explain.workdir import (
    RESULT_SUFFIX, SETTINGS_FILE, WORK_DIRNAME, ExplainError, ExplainInputError, ExplainSettings, Shard,
    WorkDir, attributions_config, check_config_name, model_slug, question_digest, work_dir_for,
)

__all__ = [
    "DEFAULT_BATCH_SIZE", "DEFAULT_BUDGET", "DEFAULT_ESTIMATOR", "DEFAULT_FRAMES", "DEFAULT_PROTOCOL",
    "MAX_PLAYERS", "QUESTION_ERRORS", "RESULT_SUFFIX", "SETTINGS_FILE", "WORK_DIRNAME",
    "ExplainError", "ExplainInputError", "ExplainResult", "ExplainRun", "ExplainSettings", "MergeResult",
    "QuestionExplainer", "Shard", "WorkDir", "assemble", "attributions_config", "check_config_name",
    "check_inputs_contained", "explain_questions", "find_work_dirs", "load_fresh", "merge_shards",
    "model_slug", "question_digest", "work_dir_for",
]
