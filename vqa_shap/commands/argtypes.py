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

from vqa_shap import explain_options
from vqa_shap.explain_options import OPTIONS, OptionError, check_range

#: Bootstrap resamples (each is a pass over the questions).
MAX_BOOTSTRAP = 1_000_000

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
        try:
            return check_range(_integer(text), low, high)
        except OptionError as exc:
            _fail(str(exc))

    convert.__name__ = "integer"
    convert.low, convert.high = low, high  # the bounds, for --help and the study file's checks
    return convert


def _option_range(name: str) -> Callable[[str], int]:
    """The integer type of the declared explain option ``name`` (its bounds)."""
    option = OPTIONS[name]
    convert = int_range(option.low, option.high)
    convert.__name__ = name
    return convert


#: A seed: 0 … 2**32 - 1.
seed = _option_range("seed")
frames = _option_range("frames")
budget = _option_range("budget")
batch_size = _option_range("batch_size")
threads = _option_range("threads")
bootstrap = int_range(0, MAX_BOOTSTRAP)
positive_int = int_range(1)
shard_rank = _option_range("rank")


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
    """A relative error strictly above 0 (e.g. 0.2), checked by the declared option."""
    try:
        return OPTIONS["target_error"].check(_float(text))
    except OptionError as exc:
        _fail(str(exc))


def device(text: str) -> str:
    """A torch device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    return _checked(explain_options.check_device, text)


def config_name(text: str) -> str:
    """A config name: letters, digits, ``_``, ``-``, ``.``, starting with a letter or digit (no path)."""
    return _checked(explain_options.valid_config_name, text)


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


def _checked(check: Callable[[str], str], text: str) -> str:
    """``check(text)`` (an explain option's check), its :class:`OptionError` as the argument's error."""
    try:
        return check(text)
    except OptionError as exc:
        _fail(str(exc))


def _one_of(kind: str, text: str, valid) -> str:
    """``text`` if it names one of ``valid``; else the one-line error listing the valid names (worded as
    the registries word it)."""
    if text not in valid:
        _fail(f"unknown {kind} {text!r}; valid {kind}s: {', '.join(valid)}")
    return text


def sampler(text: str) -> str:
    """A frame sampler name (:data:`vqa_shap.protocol.SAMPLERS`)."""
    return _checked(explain_options.check_sampler, text)


def aks_scorer(text: str) -> str:
    """An AKS relevance scorer: ``model`` or ``clip:PATH`` with PATH a folder (made absolute)."""
    return _checked(explain_options.check_aks_scorer, text)


def shot_detector(text: str) -> str:
    """A shot detector: a name (``diff``, ``content``, ``adaptive``, ``transnetv2``) or ``transnetv2:PATH``,
    the weights loaded and checked now (imports torch only then); returns its spec, a path made absolute."""
    return _checked(explain_options.check_shot_detector, text)


def loader_family(text: str) -> str:
    """A loader family (:data:`vqa_shap.loaders.LOADERS`)."""
    from vqa_shap.loaders import LOADERS

    return _one_of("loader", text, LOADERS.names())


def estimator(text: str) -> str:
    """An estimator name (:data:`vqa_shap.estimators.ESTIMATORS`)."""
    return _checked(explain_options.check_estimator, text)


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
    return _checked(explain_options.check_dtype, text)


def protocol(text: str) -> str:
    """A protocol name (:data:`vqa_shap.protocol.PROTOCOLS`)."""
    return _checked(explain_options.check_protocol, text)


def refuse_foreign_card(folder: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output folder whose ``README.md`` vqa-shap did not write.

    Raises:
        UsageError: ``folder/README.md`` exists, is not a vqa-shap dataset card, and ``overwrite`` is off.
    """
    from vqa_shap.hub import folder as hub
    from vqa_shap.hub.card import folder_meta
    from vqa_shap.errors import UsageError

    readme = Path(folder) / hub.README
    if readme.exists() and not overwrite and not folder_meta(folder).get("kind"):
        raise UsageError(f"{readme} exists and is not a vqa-shap dataset card; choose another output folder "
                         "(or pass --overwrite to replace it)")
