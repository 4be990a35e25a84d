"""The paper's way of computing Shapley values of a generative video LLM (SEED_SPEC.md §3.6, §4).

What "A Video Is Not Worth a Thousand Words" does per question, reimplemented for any vqa-shap loader:

* shap's ``PermutationExplainer`` with a function masker (``mask * x`` on a row of ones), identity link,
  ``max_evals = budget``, ``seed``, and **batch size 1**;
* per mask, everything from scratch: the masked prompt is rendered, the frames are masked (the
  protocol's baseline) and the **real processor** runs on them (:meth:`Loader.pixel_inputs`), then the
  full model **generates** the answer (greedy; ``max_new_tokens`` with EOS stopping);
* the read-out (:func:`letter_step`, :func:`paper_score`): scan the option letters A, B, … in
  alphabetical order, take the first one found anywhere among the generated tokens and its first
  position ``t`` (0 when no letter was generated), and return the raw logits of step ``t``
  restricted to the option letters.

vqa-shap's own way (cached vision features, batched masked forwards with ``logits_to_keep=1``, prefix
sharing, better estimators) is compared with this one by :mod:`vqa_shap.bench.pipeline`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vqa_shap.loaders.base import LoaderError

__all__ = ["PaperScore", "PaperEstimate", "letter_step", "paper_score", "paper_shapley"]

#: Default cap on generated tokens (a trained model answers "A<|im_end|>" and stops after 2).
DEFAULT_MAX_NEW_TOKENS = 16


@dataclass(frozen=True)
class PaperScore:
    """The paper's read-out of one masked input.

    Attributes:
        logits: ``float32[K]`` raw logits of the option letters at step :attr:`step`.
        step: the generation step read (first position of the first letter found, else 0).
        generated: the generated token ids.
    """

    logits: np.ndarray
    step: int
    generated: tuple[int, ...]


@dataclass(frozen=True)
class PaperEstimate:
    """Shapley values computed the paper's way.

    Attributes:
        values: ``float64[F, K]``.
        evaluations: masks scored (each a processor run and a generation).
        seconds: wall time.
        steps: how often each read-out step was used (``{step: count}``).
    """

    values: np.ndarray
    evaluations: int
    seconds: float
    steps: dict[int, int]


def letter_step(generated: Sequence[int], letter_ids: Sequence[int]) -> int:
    """The step the paper reads: scan the letters in order (A, B, …); the first letter that occurs
    among ``generated`` gives its first position; 0 when none occurs (SEED_SPEC.md §3.6).

    Args:
        generated: generated token ids, in order.
        letter_ids: token ids of the letters A, B, … (alphabetical order).
    """
    generated = [int(g) for g in generated]
    for letter in letter_ids:
        if int(letter) in generated:
            return generated.index(int(letter))
    return 0


def paper_score(loader, prepared, coalition: np.ndarray, *,
                max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> PaperScore:
    """Score one coalition the paper's way: per-mask preprocessing, full ``generate``, letter scan.

    Args:
        loader: a loaded :class:`~vqa_shap.loaders.base.Loader`.
        prepared: the question's :class:`~vqa_shap.loaders.base.Prepared` (only its mask-independent
            parts are used: frames, plan, protocol, letters; no cached features).
        coalition: ``bool[F]`` (True = keep).
        max_new_tokens: generation cap (greedy, stops at EOS).

    Raises:
        LoaderError: the prompt has several videos of different lengths (one tensor is needed here).
    """
    import torch

    with torch.inference_mode():
        inputs = loader.pixel_inputs(prepared, coalition)
        if isinstance(inputs.get("pixel_values_videos"), list):
            raise LoaderError("the paper's pipeline is implemented for prompts whose videos fit one tensor")
        tok = loader.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        out = loader.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    return_dict_in_generate=True, output_logits=True, pad_token_id=pad)
    # decoder-only generate returns prompt + new tokens; the new ones are the last len(logits)
    generated = tuple(int(i) for i in out.sequences[0, -len(out.logits):].tolist())
    step = letter_step(generated, prepared.letter_ids)
    logits = out.logits[step][0, list(prepared.letter_ids)].float().cpu().numpy()
    return PaperScore(logits.astype(np.float32), step, generated)


def paper_shapley(loader, prepared, budget: int, *, seed: int = 0,
                  max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> PaperEstimate:
    """Shapley values of one question exactly as the paper computes them (shap, batch size 1).

    Args:
        loader: a loaded loader.
        prepared: the question, prepared (its cached features are not used).
        budget: shap's ``max_evals`` (at least ``2F + 1``).
        seed: shap's seed (the paper: 0).
        max_new_tokens: generation cap.

    Returns:
        :class:`PaperEstimate` (values ``F×K``).
    """
    import shap

    n = prepared.n_features
    steps: dict[int, int] = {}
    calls = [0]

    def masker(mask, x):
        return (mask * x)[None, :]

    def model(rows):
        # the paper's forward scores only the first row it is given; with batch size 1 that is all
        rows = np.asarray(rows)
        out = np.empty((len(rows), prepared.n_options))
        for r, row in enumerate(rows):
            score = paper_score(loader, prepared, row > 0.5, max_new_tokens=max_new_tokens)
            steps[score.step] = steps.get(score.step, 0) + 1
            calls[0] += 1
            out[r] = score.logits
        return out

    state = np.random.get_state()  # shap seeds the global NumPy RNG
    started = time.perf_counter()
    try:
        explainer = shap.Explainer(model, masker, algorithm="permutation", seed=seed)
        explanation = explainer(np.ones((1, n)), max_evals=budget, batch_size=1, silent=True)
    finally:
        np.random.set_state(state)
    seconds = time.perf_counter() - started
    values = np.asarray(explanation.values[0], dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    return PaperEstimate(values, calls[0], seconds, dict(sorted(steps.items())))
