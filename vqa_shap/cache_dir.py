"""The one cache folder of vqa-shap (tiny models, measured game tables): rebuildable files only."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$VQA_SHAP_CACHE`` if set, else ``$XDG_CACHE_HOME/vqa-shap`` (``~/.cache/vqa-shap``)."""
    if os.environ.get("VQA_SHAP_CACHE"):
        return Path(os.environ["VQA_SHAP_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vqa-shap"
