"""The shared loader bases: the abstract :class:`~vqa_shap.loaders.bases.loader.Loader`, the chat-VLM
base and its scoring hot path, the own-head base, the non-native generative base and the
transformers compatibility helpers. Family modules sit one level up.
"""
