"""The two datasets' schema: the typed records that cross modules (:mod:`~vqa_shap.schema.records`) and
their Arrow ``datasets.Features`` (:mod:`~vqa_shap.schema.arrow`).
"""
