"""Estimator specs: ``"name"`` or ``"name:key=value,key=value"``, an estimator and its options in one
string (``--estimator shared_video:per_video=8``, ``auto/kernel:border=True,tail=2`` in a row's
``estimator`` column). Formatted and parsed here only, so the two stay inverse."""

from __future__ import annotations

from typing import Any, Mapping


def format_spec(name: str, options: Mapping[str, Any]) -> str:
    """``"name"`` or ``"name:key=value,..."`` with the options sorted by key."""
    return name + (":" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) if options else "")


def _value(raw: str) -> object:
    if raw in ("True", "False"):
        return raw == "True"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def parse_spec(spec: str) -> tuple[str, dict[str, object]]:
    """``"name"`` or ``"name:key=value,key=value"`` -> ``(name, options)``; values that read as an int,
    a float or ``True``/``False`` become one (the inverse of :func:`format_spec`)."""
    name, _, rest = spec.partition(":")
    options: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, _, raw = item.partition("=")
        options[key] = _value(raw)
    return name, options
