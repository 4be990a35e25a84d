"""Shared pytest fixtures. No test touches the network; models are tiny random ones built offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path_factory, monkeypatch):
    """Keep datasets' cache out of the user's home and make tests independent of it."""
    cache = tmp_path_factory.getbasetemp() / "hf_cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))
    monkeypatch.setenv("HF_HOME", str(cache / "home"))
