"""``rerank-rag serve``: rerank-rag pipelines behind the rerank APIs RAG apps already speak.

Open WebUI, Dify and RAGFlow post ``{model, query, documents, top_n}`` to ``/rerank``;
the ``cohere`` SDK and LangChain's ``CohereRerank`` speak Cohere v2 (``/v2/rerank``);
Haystack's and LlamaIndex's TEI clients post ``{query, texts}``. This service answers
all of them from the same pipelines (MiniLM, JointRank, listwise, LLM yes/no, ...),
with a relevance score in [0, 1] for every document (>= 0.5: judged relevant), and
offers the same pipelines as MCP tools. Extra ``serve`` (FastAPI, uvicorn,
prometheus-client), ``mcp`` for the MCP tools, ``ray`` for Ray Serve.

    from rerank_rag.serve import create_app, default_config
    app = create_app(default_config())          # any ASGI server can run it

Importing this package imports no web framework; :func:`create_app` does.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._config import (
    ConfigError,
    Limits,
    LLMSpec,
    PipelineSpec,
    ServeConfig,
    default_config,
    load_config,
)
from ._flags import parse_pipeline_flag
from ._scaling import RayOptions

#: Names whose modules import the web framework, MCP or Ray: imported on first use.
_LAZY = {
    "create_app": ("rerank_rag.serve._app", "create_app"),
    "RerankService": ("rerank_rag.serve._service", "RerankService"),
    "RANKERS": ("rerank_rag.serve._pipelines", "RANKERS"),
    "build_mcp_server": ("rerank_rag.serve._mcp", "build_mcp_server"),
    "ray_deployment": ("rerank_rag.serve._ray", "deployment"),
    "BackgroundServer": ("rerank_rag.serve._background", "BackgroundServer"),
}

__all__ = [
    "ConfigError",
    "Limits",
    "LLMSpec",
    "PipelineSpec",
    "RayOptions",
    "ServeConfig",
    "default_config",
    "load_config",
    "parse_pipeline_flag",
    "create_app",
    "RerankService",
    "RANKERS",
    "build_mcp_server",
    "ray_deployment",
    "BackgroundServer",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'rerank_rag.serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
