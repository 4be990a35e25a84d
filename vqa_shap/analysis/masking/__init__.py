"""The paper's masking benchmark (``vqa-shap mask-bench``): re-answer questions with Shapley-guided
masks (:mod:`~vqa_shap.analysis.masking.experiment`), the masks, the players they act on and the
summaries.
"""
