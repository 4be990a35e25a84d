"""The value checks of a study file's keys: ``check(value, key) -> value``, failing with the reader's
one-line error. Names are checked by the registries that own them (their messages list the valid names)."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Callable

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_DEVICE = re.compile(r"^(?:auto|cpu|mps|cuda(?::\d+)?)$")
_MAX_SEED = 2**32 - 1


def section_checks(reader) -> dict[str, Any]:
    """Every check, bound to ``reader`` (whose ``fail(key, reason)`` raises); keyed as the file's sections."""
    c = _Checks(reader.fail)
    seed, count = c.integer(0, _MAX_SEED), c.integer(0, 1_000_000)
    return {
        "name": c.name, "variants": c.variants, "model": c.text,
        "on_error": c.one_of("on_error value", ("raise", "skip")),
        "loader": c.registry(_get_loader), "builder": c.registry(_get_builder),
        "explain": {
            "frames": c.integer(1, 1024), "budget": c.integer(1, 10_000_000), "estimator": c.registry(_get_estimator),
            "seed": seed, "batch_size": c.integer(1, 65_536), "protocol": c.registry(_get_protocol),
            "sampler": c.one_of("sampler", _samplers, optional=True),
            "players": c.one_of("players value", ("frames", "shots")),
            "shot_detector": c.registry(_shot_detector, optional=True), "strict_budget": c.flag,
            "device": c.device, "dtype": c.one_of("dtype", _dtypes, optional=True),
            "threads": c.integer(1, 1024, optional=True),
        },
        "generate": {"questions": c.integer(1, 10_000), "seed": seed},
        "augment": {"seed": seed, "dedupe": c.flag},
        "metrics": {"bootstrap": count, "confidence": c.confidence, "seed": seed, "paper_compat": c.flag},
        "report": {"max_questions": c.integer(1, optional=True), "bootstrap": count},
        "view": {"bootstrap": count, "title": c.text},
    }


class _Checks:
    """The check factories; ``fail(key, reason)`` raises the reader's error."""

    def __init__(self, fail: Callable):
        self.fail = fail

    def integer(self, low: int, high: int | None = None, optional: bool = False) -> Callable:
        def check(value, key):
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                self.fail(key, f"expected an integer, got {_show(value)}")
            if value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f">= {low}"
                self.fail(key, f"must be {bound}, got {value}")
            return int(value)
        return check

    def flag(self, value, key):
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def text(self, value, key):
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {_show(value)}")
        return value

    def one_of(self, kind: str, valid, optional: bool = False) -> Callable:
        def check(value, key):
            if value is None and optional:
                return None
            names = valid() if callable(valid) else valid
            if not isinstance(value, str) or value not in names:
                self.fail(key, f"unknown {kind} {_show(value)}; valid {kind}s: {', '.join(names)}")
            return value
        return check

    def registry(self, get: Callable, optional: bool = False) -> Callable:
        def check(value, key):
            from vqa_shap.errors import VqaShapError

            if value is None and optional:
                return None
            if not isinstance(value, str):
                self.fail(key, f"expected a name, got {_show(value)}")
            try:
                get(value)
            except VqaShapError as exc:  # the registry's message lists the valid names
                self.fail(key, str(exc))
            return value
        return check

    def name(self, value, key):
        if not isinstance(value, str) or not _NAME.match(value) or "__" in value or value == "data":
            self.fail(key, f"invalid name {_show(value)}: use letters, digits, '_', '-', '.', starting with a "
                      "letter or digit (no '__', not 'data')")
        return value

    def confidence(self, value, key):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or not 0 < value < 1:
            self.fail(key, f"must be a number strictly between 0 and 1 (e.g. 0.95), got {_show(value)}")
        return float(value)

    def device(self, value, key):
        if value is not None and (not isinstance(value, str) or not _DEVICE.match(value)):
            self.fail(key, f"unknown device {_show(value)}; valid: auto, cpu, cuda, cuda:N, mps")
        return value

    def variants(self, value, key):
        from vqa_shap.builders.variants import VARIANT_PATTERN

        if not isinstance(value, list) or not value:
            self.fail(key, f"expected a non-empty list of variants (original, easy, hard_<N>), got {_show(value)}")
        for i, v in enumerate(value):
            if not isinstance(v, str) or not (v == "original" or VARIANT_PATTERN.match(v)):
                self.fail(f"{key}[{i}]", f"unknown variant {_show(v)}; valid: original, easy, hard_<N> (e.g. hard_5)")
            if v in value[:i]:
                self.fail(f"{key}[{i}]", f"variant {v!r} is listed twice")
        return tuple(value)


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)[:60]


def _get_loader(name: str):
    from vqa_shap.loaders import LOADERS

    return LOADERS.target(name)  # checks the name without importing the family


def _get_builder(name: str):
    from vqa_shap.builders import BUILDERS

    return BUILDERS.target(name)


def _get_estimator(name: str):
    from vqa_shap.estimators import ESTIMATORS

    return ESTIMATORS.target(name)


def _get_protocol(name: str):
    from vqa_shap.protocol import PROTOCOLS

    return PROTOCOLS.target(name)


def _samplers():
    from vqa_shap.protocol import SAMPLERS

    return list(SAMPLERS)


def _shot_detector(spec: str):
    """A detector name (``transnetv2``: the published weights) or ``transnetv2:PATH`` (the weights checked now)."""
    from vqa_shap.shots import get_detector

    return get_detector(spec)


def _dtypes():
    from vqa_shap.device import _DTYPE_ALIASES, DTYPES

    return ["auto", *DTYPES, *_DTYPE_ALIASES]
