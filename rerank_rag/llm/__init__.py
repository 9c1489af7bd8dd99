"""LLM backends: the ``complete`` / ``acomplete`` seam and its implementations.

Heavy SDKs (openai, frameworks) are imported only when the corresponding backend is
constructed, never at ``import rerank_rag.llm``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import Completion, LLMBackend, LLMRequest, Message, normalize_messages
from ._fake import FakeLLM

__all__ = [
    "Completion",
    "LLMBackend",
    "LLMRequest",
    "Message",
    "FakeLLM",
    "OpenAICompatibleLLM",
    "RetryPolicy",
    "MemoryCache",
    "SQLiteCache",
    "CachedLLM",
    "as_backend",
    "LangChainLLM",
    "LlamaIndexLLM",
    "HaystackLLM",
    "ResponseCache",
    "normalize_messages",
]

_LAZY = {
    "OpenAICompatibleLLM": "._openai",
    "RetryPolicy": "._retry",
    "MemoryCache": "._cache",
    "SQLiteCache": "._cache",
    "CachedLLM": "._cache",
    "as_backend": "._adapt",
    "LangChainLLM": "._adapt",
    "LlamaIndexLLM": "._adapt",
    "HaystackLLM": "._adapt",
    "ResponseCache": "._cache",
}

if TYPE_CHECKING:  # pragma: no cover
    from ._adapt import HaystackLLM, LangChainLLM, LlamaIndexLLM, as_backend
    from ._cache import CachedLLM, MemoryCache, ResponseCache, SQLiteCache
    from ._openai import OpenAICompatibleLLM
    from ._retry import RetryPolicy


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'rerank_rag.llm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
