"""Analysis of attributions: modality metrics, the masking benchmark, frame-ranking agreement, reports,
the paper's per-question CSV tables and faithfulness against ground truth.

Modules are imported on use (``from vqa_shap.analysis import metrics``); nothing heavy happens here.
"""
