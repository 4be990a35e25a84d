"""The demo model: a small LLaVA-OneVision really trained on the synthetic coloured-shapes benchmark.

``--model demo`` resolves to the committed folder :func:`demo_model_dir` (``loaders/demo_model/``,
shipped as package data): a ``LlavaOnevisionForConditionalGeneration`` with a small config, saved as
safetensors with its tokenizer (the WordLevel tokenizer of :mod:`vqa_shap.loaders.tiny` plus the
synthetic benchmark's words) and its real ``LlavaOnevisionProcessor``. The ``llava_onevision`` loader
loads it like any checkpoint.

It is trained by ``scripts/train_demo_model.py`` (:func:`train`) on questions drawn on the fly from
:func:`vqa_shap.builders.synthetic.sample_items`, with exactly the prompts the loader renders (protocol
``pollard2025``): the target is the answer's letter followed by ``<|im_end|>``, so ``generate`` stops
after the letter as a real instruction-tuned model does. Non-evidence frames are sometimes replaced by
the masking baseline (zero after normalisation), so masked frames are familiar input. Training is
deterministic for a seed and a thread count.

The parts: :mod:`~vqa_shap.demo.architecture` (the model and its folder), :mod:`~vqa_shap.demo.batches`
(training batches and losses), :mod:`~vqa_shap.demo.training` and :mod:`~vqa_shap.demo.evaluation`; this
module gathers their public names. They import torch and transformers only inside functions.
"""

from vqa_shap.demo.architecture import (DEMO_LONG_MODEL, DEMO_MODEL, DEMO_MODELS, DEMO_REALISTIC_MODEL, HELD_OUT_SEED,
                                        REALISTIC_ARCHITECTURE, TRAIN_LAYOUTS, TRAINING_FILE, DemoArchitecture,
                                        build_demo_model, demo_model_dir, transfer_weights)
from vqa_shap.demo.evaluation import Evaluation, evaluate
from vqa_shap.demo.training import TrainConfig, TrainResult, record_evaluation, train

__all__ = ["DEMO_MODEL", "DEMO_LONG_MODEL", "DEMO_REALISTIC_MODEL", "REALISTIC_ARCHITECTURE", "transfer_weights",
           "DEMO_MODELS", "TRAIN_LAYOUTS", "DemoArchitecture", "TrainConfig",
           "TrainResult", "Evaluation", "demo_model_dir", "build_demo_model", "train", "evaluate", "record_evaluation", "HELD_OUT_SEED", "TRAINING_FILE"]
