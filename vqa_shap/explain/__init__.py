"""Explain a questions dataset with a model: the attributions dataset, resumable, shardable, mergeable.

:func:`explain_questions` maps every question of a questions config (a Hub-style folder, see
:mod:`vqa_shap.hub`) through a model with ``Dataset.map``; the map's output is the attributions rows
(schema: :func:`vqa_shap.schema.attribution_features`), one per question, written as a config.
What to run is one frozen :class:`ExplainRun`::

    from vqa_shap.explain import ExplainRun, explain_questions
    result = explain_questions(ExplainRun("questions", "hd-epic", model="tiny-random/llava_onevision",
                                          video_root="videos", out="attributions"))

How a long run survives:

* **Work files.** Every finished question is written at once to its own small JSON file in a work
  directory (default ``<out>/.work/<config>/``), atomically (:mod:`vqa_shap.io`), so a file is
  either complete or absent. A killed run resumes by reusing the questions whose file exists:
  nothing finished is recomputed, nothing is duplicated.
* **Keyed on content and settings.** A work file records a digest of the question it explains
  (text, options, answer, inputs, ...): a question changed since (``build --overwrite`` with a fixed
  answer) is explained again. The work directory records the settings that determine the numbers
  (model, protocol, estimator, budget, seed, frames, sampler, video root, dtype, the question list);
  resuming with different ones is refused instead of mixing results (``restart`` discards them).
* **Error rows.** A question that cannot be explained (missing or corrupt video, a path outside the
  video root, more options than the model supports, too many players to fit, ...) gets a row whose
  ``error`` says why; the run goes on. ``retry_errors`` recomputes those rows on a later run.
* **Shards.** With ``world_size > 1`` (``RANK``/``WORLD_SIZE`` from torchrun, ``SLURM_PROCID``/
  ``SLURM_NTASKS`` from SLURM, or explicit arguments) each process explains its contiguous part
  (possibly empty) into the shared work directory (or its own out folder); :func:`merge_shards`
  (``vqa-shap merge``) then assembles the config and refuses when a question is missing or was
  explained twice. A single-process run writes the config itself. Each shard holds a lock on the
  work directory, so a second process started on the same shard stops at once.

Output config name: ``<model slug>__<questions config>``, e.g. ``tiny-random-llava_onevision__hd-epic``
(:func:`attributions_config`); the card (``cards/attributions.md.j2``) names model, loader, protocol,
estimator, budget and seed.

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
