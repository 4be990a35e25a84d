"""Argument types of the command line: every value is checked at parse time.

Each function here is an ``argparse`` ``type=``: it returns the converted value or raises
``argparse.ArgumentTypeError`` with a one-line reason, so a bad value stops the command before any
work with exit status 2 (``vqa-shap CMD: error: argument --seed: ...``). Nothing heavy is imported.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Callable

#: Largest seed numpy's generators and torch accept everywhere (seeds are unsigned 32-bit).
MAX_SEED = 2**32 - 1
#: Frames per question: a Shapley game with more players than this cannot be estimated usefully.
MAX_FRAMES = 1024
#: Model evaluations per question (a million forward passes are already days of compute).
MAX_BUDGET = 10_000_000
#: Bootstrap resamples (each is a pass over the questions).
MAX_BOOTSTRAP = 1_000_000
#: Coalitions per forward pass, CPU threads, questions: generous sanity bounds.
MAX_BATCH = 65_536
MAX_THREADS = 1024

_DEVICE = re.compile(r"^(?:auto|cpu|mps|cuda(?::\d+)?)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _fail(message: str):
    raise argparse.ArgumentTypeError(message)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        _fail(f"expected an integer, got {text!r}")


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]`` (``high=None``: no upper bound)."""

    def convert(text: str) -> int:
        value = _integer(text)
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            _fail(f"must be {bound}, got {value}")
        return value

    convert.__name__ = "integer"
    return convert


#: A seed: 0 … 2**32 - 1.
seed = int_range(0, MAX_SEED)
seed.__name__ = "seed"
frames = int_range(1, MAX_FRAMES)
budget = int_range(1, MAX_BUDGET)
bootstrap = int_range(0, MAX_BOOTSTRAP)
batch_size = int_range(1, MAX_BATCH)
threads = int_range(1, MAX_THREADS)
positive_int = int_range(1)


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        _fail(f"expected a number, got {text!r}")
    if not math.isfinite(value):
        _fail(f"must be a finite number, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A finite float (no ``nan``/``inf``)."""
    return _float(text)


def confidence(text: str) -> float:
    """An interval level strictly between 0 and 1."""
    value = _float(text)
    if not 0 < value < 1:
        _fail(f"must be strictly between 0 and 1 (e.g. 0.95), got {text}")
    return value


def target_error(text: str) -> float:
    """A relative error strictly above 0 (e.g. 0.2)."""
    value = _float(text)
    if value <= 0:
        _fail(f"must be a positive relative error (e.g. 0.2), got {text}")
    return value


def device(text: str) -> str:
    """A torch device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if not _DEVICE.match(text):
        _fail(f"unknown device {text!r}; valid: auto, cpu, cuda, cuda:N, mps")
    return text


def config_name(text: str) -> str:
    """A config name: letters, digits, ``_``, ``-``, ``.``, starting with a letter or digit (no path)."""
    if not _NAME.match(text) or text == "data":
        _fail(f"invalid name {text!r}: use letters, digits, '_', '-', '.', starting with a letter or digit "
              "(not 'data')")
    return text


def repo_id(text: str) -> str:
    """A Hub dataset repository id ``namespace/name`` (or ``name``), checked as the Hub checks it."""
    parts = text.split("/")
    if (len(parts) > 2 or not all(_REPO_PART.match(p) for p in parts) or any(len(p) > 96 for p in parts)
            or "--" in text or ".." in text or text.endswith((".git", ".ipynb", "."))):
        _fail(f"invalid repository id {text!r}: expected 'namespace/name' of letters, digits, '-', '_', '.'")
    return text


def folder(text: str) -> Path:
    """An existing folder (a file or a missing path is named as such)."""
    path = Path(text)
    if path.is_file():
        _fail(f"{text} is a file, not a folder")
    if not path.is_dir():
        _fail(f"folder {text} does not exist")
    return path


def out_folder(text: str) -> Path:
    """A folder to write into: missing (created) or a folder, never an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        _fail(f"{text} is a file; give a folder to write into")
    return path


def out_file(text: str) -> Path:
    """A file to write: missing or a file, never an existing folder."""
    path = Path(text)
    if path.is_dir():
        _fail(f"{text} is a folder; give a file path")
    if text.endswith(("/", "\\")):
        _fail(f"{text} ends with a path separator; give a file path")
    return path


def _one_of(kind: str, text: str, valid) -> str:
    """``text`` if it names one of ``valid``; else the one-line error listing the valid names."""
    if text not in valid:
        _fail(f"unknown {kind} {text!r}; valid: {', '.join(valid)}")
    return text


def sampler(text: str) -> str:
    """A frame sampler name (:data:`vqa_shap.protocol.SAMPLERS`)."""
    from vqa_shap.protocol import SAMPLERS

    return _one_of("sampler", text, SAMPLERS)


def aks_scorer(text: str) -> str:
    """An AKS relevance scorer: ``model`` or ``clip:PATH`` with PATH a folder (made absolute)."""
    from vqa_shap.aks import AksError, parse_scorer

    try:
        kind, path = parse_scorer(text)
    except AksError as exc:
        _fail(str(exc))
    return kind if path is None else f"{kind}:{Path(path).absolute()}"


def shot_detector(text: str) -> str:
    """A shot detector: a name (``diff``, ``content``, ``adaptive``) or ``transnetv2:PATH``, a weights
    file loaded and checked now (imports torch only then); returns its spec, the path made absolute."""
    from vqa_shap.shots import ShotError, get_detector

    try:
        return get_detector(text).spec
    except ShotError as exc:
        _fail(str(exc))


def estimator(text: str) -> str:
    """An estimator name (:data:`vqa_shap.estimators.ESTIMATORS`)."""
    from vqa_shap.estimators import ESTIMATORS

    return _one_of("estimator", text, ESTIMATORS.names())


def interaction_approximator(text: str) -> str:
    """A shapiq approximator of pairwise interactions (:data:`vqa_shap.interactions.APPROXIMATORS`)."""
    from vqa_shap.interactions.index import APPROXIMATORS

    return _one_of("approximator", text, APPROXIMATORS)


def variant(text: str) -> str:
    """A variant name: ``easy`` or ``hard_<N>`` (:data:`vqa_shap.builders.variants.VARIANT_PATTERN`)."""
    from vqa_shap.builders.variants import VARIANT_PATTERN

    if not VARIANT_PATTERN.match(text):
        _fail(f"unknown variant {text!r}: expected 'easy' or 'hard_<N>' (e.g. hard_5)")
    return text


def dtype(text: str) -> str:
    """A torch dtype name or alias (:data:`vqa_shap.device.DTYPES`), or ``auto``."""
    from vqa_shap.device import _DTYPE_ALIASES, DTYPES

    if text != "auto" and _DTYPE_ALIASES.get(text, text) not in DTYPES:
        _fail(f"unknown dtype {text!r}; valid: auto, {', '.join(DTYPES)} (or {', '.join(_DTYPE_ALIASES)})")
    return text


def protocol(text: str) -> str:
    """A protocol name (:data:`vqa_shap.protocol.PROTOCOLS`)."""
    from vqa_shap.protocol import PROTOCOLS

    return _one_of("protocol", text, PROTOCOLS.names())


def refuse_foreign_card(folder: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output folder whose ``README.md`` vqa-shap did not write.

    Raises:
        UsageError: ``folder/README.md`` exists, is not a vqa-shap dataset card, and ``overwrite`` is off.
    """
    from vqa_shap import hub
    from vqa_shap.errors import UsageError

    readme = Path(folder) / hub.README
    if readme.exists() and not overwrite and not hub.folder_meta(folder).get("kind"):
        raise UsageError(f"{readme} exists and is not a vqa-shap dataset card; choose another output folder "
                         "(or pass --overwrite to replace it)")
