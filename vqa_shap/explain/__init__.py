"""Explain a questions dataset with a model: the attributions dataset, resumable, shardable, mergeable.

:func:`explain_questions` maps a questions config through a model with ``Dataset.map`` and writes one
attributions row per question; what to run is one frozen :class:`ExplainRun` (its options are declared
in :mod:`vqa_shap.explain_options`). Every finished question is a work file written atomically, keyed
on the question's content and the settings, so a killed run resumes; shards are merged by
:func:`merge_shards`. Options, resume and sharding: docs/explain.md.

Modules: :mod:`~vqa_shap.explain.workdir` (names, shards, settings, work directory),
:mod:`~vqa_shap.explain.question` (one question), :mod:`~vqa_shap.explain.explain_run` (the run loop),
:mod:`~vqa_shap.explain.merge` (assembling and merging).
"""
