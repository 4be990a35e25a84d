#!/usr/bin/env bash
# Set everything up (local .venv) and run the main job on the bundled default.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
exec "${VQA_SHAP_VENV:-$ROOT/.venv}/bin/vqa-shap" demo --out "${1:-$ROOT/demo_out}"
