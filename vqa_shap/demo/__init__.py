"""The demo model: a small LLaVA-OneVision really trained on the synthetic coloured-shapes benchmark.

``--model demo`` resolves to the committed folder :func:`~vqa_shap.loaders.demo_models.demo_model_dir` (``loaders/demo_model/``,
shipped as package data): a ``LlavaOnevisionForConditionalGeneration`` with a small config, saved as
safetensors with its tokenizer (the WordLevel tokenizer of :mod:`vqa_shap.loaders.testing.tiny` plus the
synthetic benchmark's words) and its real ``LlavaOnevisionProcessor``. The ``llava_onevision`` loader
loads it like any checkpoint.

It is trained by ``scripts/train_demo_model.py`` (:func:`~vqa_shap.demo.training.train`) on questions drawn on the fly from
:func:`vqa_shap.builders.shapes.sample_items`, with exactly the prompts the loader renders (protocol
``pollard2025``): the target is the answer's letter followed by ``<|im_end|>``, so ``generate`` stops
after the letter as a real instruction-tuned model does. Non-evidence frames are sometimes replaced by
the masking baseline (zero after normalisation), so masked frames are familiar input. Training is
deterministic for a seed and a thread count.

The parts: :mod:`~vqa_shap.demo.architecture` (the model), :mod:`~vqa_shap.demo.batches`
(training batches and losses), :mod:`~vqa_shap.demo.training` and :mod:`~vqa_shap.demo.evaluation`. They
import torch and transformers only inside functions. Nothing in the core imports this package.
"""
