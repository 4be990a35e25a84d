"""The demo: a small LLaVA-OneVision trained on the synthetic coloured-shapes benchmark, and its
training recipe (:mod:`vqa_shap.demo.model`). Nothing in the core imports this package.
"""
