"""The paper's way of computing Shapley values of a generative video LLM.

What "A Video Is Not Worth a Thousand Words" does per question, reimplemented for any vqa-shap loader:

* shap's ``PermutationExplainer`` with a function masker (``mask * x`` on a row of ones), identity link,
  ``max_evals = budget``, ``seed``, and **batch size 1**;
* per mask, the masked prompt is rendered and tokenised, the frames are masked, and the full model
  **generates** the answer (greedy; ``max_new_tokens`` with EOS stopping). How the frames are masked is
  :data:`PREPROCESS`:

  - ``"once"`` (the paper's LLaVA-Video script): the processor runs once on the unmasked frames; each
    mask multiplies that normalised pixel tensor (a masked frame becomes zeros) — :class:`PaperInputs`;
  - ``"per_mask"`` (the paper's VideoLLaMA3 script): the masked frames go through the **real processor**
    for every mask (:meth:`Loader.pixel_inputs`);
* the read-out (:func:`letter_step`, :func:`paper_score`): scan the option letters A, B, … in
  alphabetical order, take the first one found anywhere among the generated tokens and its first
  position ``t`` (0 when no letter was generated), and return the raw logits of step ``t``
  restricted to the option letters.

vqa-shap's own way (cached vision features, batched masked forwards with ``logits_to_keep=1``, prefix
sharing, better estimators) is compared with this one by :mod:`vqa_shap.measure.pipeline`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vqa_shap.loaders.bases.loader import LoaderError

__all__ = ["PREPROCESS", "PaperInputs", "PaperScore", "PaperEstimate", "letter_step", "paper_score",
           "paper_shapley"]

#: Default cap on generated tokens (a trained model answers "A<|im_end|>" and stops after 2).
DEFAULT_MAX_NEW_TOKENS = 16
#: How the paper's pipeline masks frames: processor once + multiply the pixel tensor, or processor per mask.
PREPROCESS = ("once", "per_mask")


class PaperInputs:
    """Model inputs of masked copies of one question, built the paper's way.

    ``preprocess="once"``: the processor runs here, once, on the unmasked prompt and frames; a mask
    then re-tokenises the masked prompt and multiplies the normalised pixel tensor (masked frames
    become zeros, i.e. the ``normalized_zero`` baseline). ``"per_mask"``: every mask runs the processor
    on masked frames (:meth:`Loader.pixel_inputs`).

    Args:
        loader: a loaded chat video-LLM loader.
        prepared: the question, prepared (its frames, plan, protocol; no cached features are used).
        preprocess: one of :data:`PREPROCESS`.

    Raises:
        LoaderError: unknown ``preprocess``, or ``"once"`` with a baseline other than ``normalized_zero``
            (a black frame is not a multiple of the normalised pixels).
    """

    def __init__(self, loader, prepared, preprocess: str = "once"):
        if preprocess not in PREPROCESS:
            raise LoaderError(f"unknown preprocess {preprocess!r}; valid: {', '.join(PREPROCESS)}")
        if preprocess == "once" and prepared.baseline != "normalized_zero":
            raise LoaderError(f"preprocess 'once' multiplies the normalised pixels, which cannot give the "
                              f"{prepared.baseline!r} baseline of {prepared.question.qid!r}; use 'per_mask'")
        self.loader, self.prepared, self.preprocess = loader, prepared, preprocess
        self.seconds = 0.0  # wall time of the one-off preprocessing
        self.base = None
        if preprocess == "once":
            import torch

            start = time.perf_counter()
            with torch.inference_mode():
                self.base = loader.pixel_inputs(prepared, np.ones(prepared.n_features, dtype=bool))
            self.seconds = time.perf_counter() - start

    def __call__(self, mask: np.ndarray) -> dict:
        """The model inputs of one masked copy (``bool[F]``, True = keep)."""
        import torch

        loader, prepared = self.loader, self.prepared
        if self.base is None:
            return loader.pixel_inputs(prepared, mask)
        mask = np.asarray(mask, dtype=bool)
        ids = torch.tensor([loader.token_ids(prepared, mask)], dtype=torch.long, device=loader.device)
        inputs = dict(self.base, input_ids=ids, attention_mask=torch.ones_like(ids))
        for key in ("pixel_values_videos", "pixel_values"):  # zero_pixels writes in place: copy first
            if isinstance(inputs.get(key), list):
                inputs[key] = [v.clone() for v in inputs[key]]
            elif key in inputs:
                inputs[key] = inputs[key].clone()
        dropped = [u for u, keep in zip(prepared.units, mask[:prepared.n_video]) if not keep]
        if dropped:
            loader.zero_pixels(inputs, dropped)
        return inputs


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
    among ``generated`` gives its first position; 0 when none occurs.

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
                max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, inputs: PaperInputs | None = None) -> PaperScore:
    """Score one coalition the paper's way: masked inputs, full ``generate``, letter scan.

    Args:
        loader: a loaded :class:`~vqa_shap.loaders.bases.loader.Loader`.
        prepared: the question's :class:`~vqa_shap.loaders.bases.loader.Prepared` (only its mask-independent
            parts are used: frames, plan, protocol, letters; no cached features).
        coalition: ``bool[F]`` (True = keep).
        max_new_tokens: generation cap (greedy, stops at EOS).
        inputs: how masked inputs are built (default: the processor per mask).

    Raises:
        LoaderError: the prompt has several videos of different lengths (one tensor is needed here).
    """
    import torch

    build = inputs or PaperInputs(loader, prepared, "per_mask")
    with torch.inference_mode():
        inputs = build(coalition)
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
                  max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, preprocess: str = "once") -> PaperEstimate:
    """Shapley values of one question exactly as the paper computes them (shap, batch size 1).

    Args:
        loader: a loaded loader.
        prepared: the question, prepared (its cached features are not used).
        budget: shap's ``max_evals`` (at least ``2F + 1``).
        seed: shap's seed (the paper: 0).
        max_new_tokens: generation cap.
        preprocess: one of :data:`PREPROCESS` (its one-off preprocessing counts in ``seconds``).

    Returns:
        :class:`PaperEstimate` (values ``F×K``).
    """
    import shap

    n = prepared.n_features
    steps: dict[int, int] = {}
    calls = [0]
    started = time.perf_counter()
    build = PaperInputs(loader, prepared, preprocess)

    def masker(mask, x):
        return (mask * x)[None, :]

    def model(rows):
        # the paper's forward scores only the first row it is given; with batch size 1 that is all
        rows = np.asarray(rows)
        out = np.empty((len(rows), prepared.n_options))
        for r, row in enumerate(rows):
            score = paper_score(loader, prepared, row > 0.5, max_new_tokens=max_new_tokens, inputs=build)
            steps[score.step] = steps.get(score.step, 0) + 1
            calls[0] += 1
            out[r] = score.logits
        return out

    state = np.random.get_state()  # shap seeds the global NumPy RNG
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
