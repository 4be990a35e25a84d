#!/usr/bin/env bash
# Set everything up (local .venv) and run the whole test suite, as CI does (.ci/run calls this).
# The viewer's browser tests run too (VQA_SHAP_BROWSER=1): setup_env.sh installs Debian's chromium and
# chromium-driver when run as root with apt-get, and the tests fail, saying what to install, when they
# cannot run. VQA_SHAP_BROWSER=0 skips them. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VQA_SHAP_BROWSER="${VQA_SHAP_BROWSER:-1}"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "${VQA_SHAP_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
