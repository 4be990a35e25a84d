"""A study in one resumable command (``vqa-shap run STUDY.yaml``): for every model × benchmark × variant
of a study file, build, augment, explain, compute the metrics and draw the report (and the viewer site).

Each step calls the library function its ``vqa-shap`` command calls (:mod:`vqa_shap.study.actions`),
and a step already done is recognised from its outputs and the record it left
(:mod:`vqa_shap.study.steps`), so a second run recomputes nothing and an interrupted one goes on
where it stopped (an interrupted explain resumes per question from its work files)::

    from vqa_shap.study.study_run import run_study
    from vqa_shap.study.spec import load_study
    result = run_study(load_study("demo"), "demo_study")

Modules: :mod:`~vqa_shap.study.spec` (the study file), :mod:`~vqa_shap.study.checks` (its values),
:mod:`~vqa_shap.study.plan` (the steps and the output layout), :mod:`~vqa_shap.study.actions` (what
each step does), :mod:`~vqa_shap.study.steps` (records and fingerprints), :mod:`~vqa_shap.study.study_run`.
"""
