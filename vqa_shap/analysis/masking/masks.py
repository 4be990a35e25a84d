"""Masking settings of the masking benchmark and the masks they make from Shapley values.

A *setting* is ``nothing`` (unmasked), ``everything`` x mode (every eligible feature masked), or
``positive``/``negative`` x signal x mode (Shapley-guided); :func:`keep_matrix` turns the settings of
one question into coalitions over its features. :func:`reorder_options` and
:func:`feature_index_map` move the ground-truth option (``force_logit``). See
:mod:`vqa_shap.analysis.masking.experiment` for the benchmark these serve; every name here is importable from
there too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vqa_shap.errors import VqaShapError
from vqa_shap.schema.records import Feature, Question

#: Shapley signals, in the paper's order.
SIGNALS = ("ground_truth", "false", "all")
#: Masking modes, in the paper's order.
MODES = ("joint", "video", "question", "answer")
#: Which answer words the ``answer`` (and ``joint``) modes may mask.
ANSWER_MASKINGS = ("all", "gt")
#: Where ``force_logit`` moves the ground-truth option.
FORCE_LOGITS = ("first", "last")
#: The four kinds of setting.
SETTING_KINDS = ("nothing", "everything", "positive", "negative")


class MaskBenchError(VqaShapError):
    """A question cannot be run through the masking benchmark (the message says why)."""


@dataclass(frozen=True)
class MaskSetting:
    """One masking configuration.

    Attributes:
        setting: ``nothing``, ``everything``, ``positive`` or ``negative``.
        signal: ``ground_truth``, ``false`` or ``all`` for positive/negative, else ``None``.
        mode: ``joint``, ``video``, ``question`` or ``answer``; ``None`` for ``nothing``.
    """

    setting: str
    signal: str | None = None
    mode: str | None = None

    def __post_init__(self):
        if self.setting not in SETTING_KINDS:
            raise ValueError(f"setting must be one of {SETTING_KINDS}, got {self.setting!r}")
        needs_signal = self.setting in ("positive", "negative")
        if needs_signal != (self.signal is not None) or (needs_signal and self.signal not in SIGNALS):
            raise ValueError(f"{self.setting!r} takes a signal in {SIGNALS} only for positive/negative, "
                             f"got {self.signal!r}")
        if (self.setting == "nothing") != (self.mode is None) or (
                self.mode is not None and self.mode not in MODES):
            raise ValueError(f"{self.setting!r} needs a mode in {MODES} (none for 'nothing'), got {self.mode!r}")

    @property
    def key(self) -> str:
        """``setting[/signal]/mode``, e.g. ``negative/ground_truth/joint``."""
        return "/".join(p for p in (self.setting, self.signal, self.mode) if p is not None)


def mask_settings() -> tuple[MaskSetting, ...]:
    """All 29 settings in the paper's order: nothing; everything × mode; positive, negative × signal × mode."""
    out = [MaskSetting("nothing")]
    out += [MaskSetting("everything", None, m) for m in MODES]
    for kind in ("positive", "negative"):
        out += [MaskSetting(kind, s, m) for s in SIGNALS for m in MODES]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# mask construction (pure)


def normalised_shapley(shapley: np.ndarray) -> np.ndarray:
    """ψ = φ / max|φ| per option column (the paper's normalisation), via :mod:`vqa_shap.analysis.metrics`."""
    from vqa_shap.analysis import metrics

    return np.asarray(metrics.normalise_columns(np.asarray(shapley, dtype=np.float64)))


def signal_values(psi: np.ndarray, answer: int, signal: str) -> np.ndarray:
    """The per-feature metric of a Shapley signal from normalised values ψ (F×K).

    ``ground_truth`` = ψ of the GT column, ``false`` = mean of the other columns (zeros with a
    single option), ``all`` = mean of all columns — :func:`vqa_shap.analysis.metrics.signal_weights`.
    """
    from vqa_shap.analysis import metrics

    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    psi = np.asarray(psi, dtype=np.float64)
    return psi @ metrics.signal_weights(psi.shape[1], answer)[:, SIGNALS.index(signal)]


def eligible_features(features: Sequence[Feature], mode: str, answer: int,
                      answer_masking: str = "all") -> np.ndarray:
    """Which features a mode may mask (bool[F]); the others are always kept.

    ``joint`` makes every feature eligible (with ``answer_masking="gt"`` only the ground-truth
    option's answer words among the answer words).
    """
    if answer_masking not in ANSWER_MASKINGS:
        raise ValueError(f"answer_masking must be one of {ANSWER_MASKINGS}, got {answer_masking!r}")
    modality = np.array([f.modality for f in features])
    option = np.array([f.option for f in features], dtype=np.int64)
    answer_words = modality == "answer"
    if answer_masking == "gt":
        answer_words &= option == answer
    if mode == "joint":
        return (modality != "answer") | answer_words
    if mode in ("video", "question"):
        return modality == mode
    if mode == "answer":
        return answer_words
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def keep_mask(setting: MaskSetting, features: Sequence[Feature], psi: np.ndarray, answer: int, *,
              threshold: float = 0.0, answer_masking: str = "all") -> np.ndarray:
    """The coalition (bool[F], True = keep) of one masking setting.

    Args:
        setting: the masking setting.
        features: the question's players, in order.
        psi: normalised Shapley values F×K (:func:`normalised_shapley`).
        answer: the ground-truth option index (original order).
        threshold: the signal threshold (paper: 0).
        answer_masking: ``all`` or ``gt`` (see :func:`eligible_features`).
    """
    n = len(features)
    if setting.setting == "nothing":
        return np.ones(n, dtype=bool)
    if setting.setting == "everything":
        keep = np.zeros(n, dtype=bool)
    else:
        metric = signal_values(psi, answer, setting.signal)
        keep = metric > threshold if setting.setting == "negative" else metric < threshold
    return keep | ~eligible_features(features, setting.mode, answer, answer_masking)


def keep_matrix(settings: Sequence[MaskSetting], features: Sequence[Feature], shapley: np.ndarray,
                answer: int, *, threshold: float = 0.0, answer_masking: str = "all") -> np.ndarray:
    """All settings' coalitions as one bool[S, F] matrix (rows in ``settings`` order)."""
    shapley = np.asarray(shapley, dtype=np.float64)
    if shapley.shape[0] != len(features):
        raise MaskBenchError(f"shapley has {shapley.shape[0]} rows but there are {len(features)} features")
    psi = normalised_shapley(shapley)
    return np.stack([keep_mask(s, features, psi, answer, threshold=threshold,
                               answer_masking=answer_masking) for s in settings])


# --------------------------------------------------------------------------------------------
# force_logit: reorder the options, map the masks


def forced_order(n_options: int, answer: int, force_logit: str) -> tuple[int, ...]:
    """The new option order: position j shows original option ``order[j]``.

    The ground-truth option is moved to the first (``"first"``) or last (``"last"``) position; the
    others keep their relative order.
    """
    if force_logit not in FORCE_LOGITS:
        raise ValueError(f"force_logit must be one of {FORCE_LOGITS}, got {force_logit!r}")
    rest = [i for i in range(n_options) if i != answer]
    return tuple([answer] + rest if force_logit == "first" else rest + [answer])


def reorder_options(question: Question, order: Sequence[int]) -> Question:
    """``question`` with its options (and their origins) shown in ``order``; the answer follows its text."""
    order = tuple(int(i) for i in order)
    if sorted(order) != list(range(question.n_options)):
        raise ValueError(f"{order} is not a permutation of the {question.n_options} options")
    return dataclasses.replace(
        question,
        options=tuple(question.options[i] for i in order),
        answer=order.index(question.answer),
        option_origin=tuple(question.option_origin[i] for i in order),
    )


def feature_index_map(features: Sequence[Feature], order: Sequence[int]) -> np.ndarray:
    """For each feature of the reordered question, the index of the same feature in ``features``.

    Frames and question words stay in place; option ``order[j]``'s words move to block j.
    ``keep_reordered = keep_original[..., index_map]``.
    """
    option = np.array([f.option if f.modality == "answer" else -1 for f in features], dtype=np.int64)
    non_answer = np.flatnonzero(option < 0)
    blocks = [np.flatnonzero(option == o) for o in order]
    answer_at = np.flatnonzero(option >= 0)
    if answer_at.size and (option[answer_at[0]:] < 0).any():
        raise MaskBenchError("answer words must follow the frames and question words")
    return np.concatenate([non_answer, *blocks]).astype(np.int64)

