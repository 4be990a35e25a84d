"""Shared pytest fixtures. No test touches the network; models are tiny random ones built offline."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# datasets reads its cache location once, at import: point it at a fresh folder per test session
# *before* anything imports datasets. A shared cache would serve stale rows, because datasets 5.2
# keys a local folder's cache by folder name, config and card, not by the data files.
_SESSION_CACHE = tempfile.mkdtemp(prefix="vqa-shap-tests-hf-")
os.environ["HF_DATASETS_CACHE"] = os.path.join(_SESSION_CACHE, "datasets")
os.environ["HF_HOME"] = os.path.join(_SESSION_CACHE, "home")

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The real-data fixtures live in ../shared beside the checkout (CI has them there).
SHARED_FIXTURES = Path(os.environ.get("VQA_SHAP_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
POLLARD = SHARED_FIXTURES / "pollard2025"


@pytest.fixture(scope="session")
def pollard_dir() -> Path:
    """The paper's fixture folder (../shared/fixtures/pollard2025); skips with a reason if absent."""
    if not POLLARD.is_dir():
        pytest.skip(f"real-data fixtures not found at {POLLARD} (set VQA_SHAP_FIXTURES or put shared/ beside the checkout)")
    return POLLARD
