#!/usr/bin/env bash
# Create (or reuse) the local virtual environment .venv and install vqa-shap into it.
# torch/torchvision are pinned and installed first so no resolver pulls another torch.
# Usage: source scripts/setup_env.sh   (or: bash scripts/setup_env.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VQA_SHAP_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.vqa-shap-installed"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    "$PY" -m pip install --quiet --upgrade pip
    echo "[setup] installing torch==2.14.1 torchvision==0.29.1"
    "$PY" -m pip install --quiet torch==2.14.1 torchvision==0.29.1
    echo "[setup] installing vqa-shap (editable, with test tools and the shots extra)"
    "$PY" -m pip install --quiet -e "$ROOT[dev,shots]"
    echo "$WANT" > "$STAMP"
else
    echo "[setup] reusing $VENV"
fi
# Headless Chromium for the viewer's browser tests (tests/test_view_browser.py), when asked for with
# VQA_SHAP_BROWSER=1 (scripts/run_tests.sh sets it): Debian's chromium + chromium-driver; with
# VQA_SHAP_BROWSER=1 the tests fail without them.
if [ "${VQA_SHAP_BROWSER:-0}" = "1" ] && ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "[setup] installing Debian's chromium and chromium-driver (browser tests)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
            || echo "[setup] could not install chromium: the browser tests will fail (VQA_SHAP_BROWSER=0 skips them)"
    else
        echo "[setup] chromium/chromedriver missing and not installable here (needs root and apt-get): install" \
             "Debian's chromium and chromium-driver, or the browser tests will fail (VQA_SHAP_BROWSER=0 skips them)"
    fi
fi
