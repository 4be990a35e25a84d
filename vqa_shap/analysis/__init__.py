"""Analysis of attributions: modality metrics, the paper's masking benchmark
(:mod:`vqa_shap.analysis.masking`), frame-ranking agreement, reports, the paper's per-question CSV
tables and faithfulness against ground truth.

Modules are imported on use (``from vqa_shap.analysis import metrics``); nothing heavy happens here.
"""
