"""Automatic device, dtype and attention implementation for model loading.

Defaults: CUDA if available, with bfloat16 and ``flash_attention_2`` when flash-attn is importable
(else ``sdpa``); otherwise CPU with float32 and ``sdpa``. Every choice can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass

from vqa_shap.errors import VqaShapError

DTYPES = ("float32", "bfloat16", "float16")
ATTENTION = ("sdpa", "eager", "flash_attention_2")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16",
                  "float": "float32"}


@dataclass(frozen=True)
class Runtime:
    """Where and how a model runs.

    Attributes:
        device: a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        dtype: a torch dtype name (``"float32"``, ``"bfloat16"``, ``"float16"``).
        attn_implementation: transformers' ``attn_implementation``.
    """

    device: str
    dtype: str
    attn_implementation: str


def resolve_runtime(device: str | None = None, dtype: str | None = None,
                    attn_implementation: str | None = None) -> Runtime:
    """Fill in unspecified settings automatically.

    Args:
        device: ``None``/``"auto"`` = CUDA if available else CPU.
        dtype: ``None``/``"auto"`` = bfloat16 on CUDA, float32 elsewhere (aliases ``bf16``, ``fp32`` …).
        attn_implementation: ``None``/``"auto"`` = ``flash_attention_2`` on CUDA when flash-attn is
            importable and the dtype is 16-bit, else ``sdpa``.

    Raises:
        VqaShapError: an unknown dtype or attention implementation, CUDA (or that CUDA device) or MPS
            asked for but not available,
            or flash attention asked for but not installed.
    """
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VqaShapError(f"device {device!r} requested but CUDA is not available")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise VqaShapError(f"device {device!r} requested but there are {torch.cuda.device_count()} CUDA device(s)")
    mps = getattr(torch.backends, "mps", None)
    if device == "mps" and not (mps is not None and mps.is_available()):
        raise VqaShapError(f"device {device!r} requested but MPS (Apple Metal) is not available on this machine")
    on_cuda = device.startswith("cuda")
    if dtype in (None, "auto"):
        dtype = "bfloat16" if on_cuda else "float32"
    dtype = _DTYPE_ALIASES.get(dtype, dtype)
    if dtype not in DTYPES:
        raise VqaShapError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    if attn_implementation in (None, "auto"):
        attn_implementation = ("flash_attention_2" if on_cuda and dtype != "float32" and flash_attention_available()
                               else "sdpa")
    if attn_implementation not in ATTENTION:
        raise VqaShapError(f"unknown attention implementation {attn_implementation!r}; valid: {', '.join(ATTENTION)}")
    if attn_implementation == "flash_attention_2" and not flash_attention_available():
        raise VqaShapError("flash_attention_2 requested but flash-attn is not installed "
                           "(pip install 'vqa-shap[gpu]' on a CUDA machine)")
    return Runtime(device, dtype, attn_implementation)


def flash_attention_available() -> bool:
    """Whether transformers can use flash-attn 2 here."""
    try:
        from transformers.utils import is_flash_attn_2_available
    except ImportError:  # pragma: no cover - very old transformers
        return False
    return bool(is_flash_attn_2_available())
