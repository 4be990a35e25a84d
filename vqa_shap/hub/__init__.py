"""Hub-style dataset folders: read and write them (:mod:`~vqa_shap.hub.folder`), their dataset cards
(:mod:`~vqa_shap.hub.card`) and the upload to the Hugging Face Hub (:mod:`~vqa_shap.hub.push`).
"""
