"""Transformers compatibility shims: one code path for the releases before and after the
key/value-cache argument was renamed (``past_key_values`` -> ``cache``, transformers 5.24)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

def kv_cache(forward_owner, cache) -> dict[str, Any]:
    """Keyword arguments that hand a key/value ``cache`` (or ``None``: no cache) to a transformers forward.

    transformers 5.24 renamed the argument ``past_key_values`` to ``cache`` (the old name warns and is
    to go in 5.40); the name is taken from the module's own ``forward`` so both kinds of release work.
    """
    return {_cache_keyword(type(forward_owner)): cache, "use_cache": cache is not None}


@functools.lru_cache(maxsize=None)
def _cache_keyword(module_type: type) -> str:
    return "cache" if "cache" in inspect.signature(module_type.forward).parameters else "past_key_values"


def returned_cache(output) -> Any:
    """The key/value cache in a transformers model output (``cache`` from 5.24, ``past_key_values`` before)."""
    declared = getattr(output, "__dataclass_fields__", None)
    if declared is not None:
        # a ModelOutput drops unset fields, and asking a 5.24+ output for the old name logs a deprecation
        # warning: ask for the field its release declares
        return output.get("cache" if "cache" in declared else "past_key_values")
    return output["cache"] if "cache" in output else output.get("past_key_values")
