"""``as_backend``: accept our backends or a framework's own LLM object.

Framework objects are detected lazily through ``sys.modules``: a framework is never
imported unless the object given is one of its types (if the user holds such an
object, its framework is already imported).
"""

from __future__ import annotations

from typing import Any

from ._base import LLMBackend

__all__ = ["as_backend"]


def as_backend(llm: Any) -> LLMBackend:
    """Return an :class:`LLMBackend` for ``llm``.

    Accepts an object with ``complete``/``acomplete`` (returned unchanged), a LangChain
    chat model, a LlamaIndex LLM or a Haystack ChatGenerator. Anything else raises
    ``TypeError`` naming what is accepted.
    """
    if llm is None:
        raise TypeError("an LLM backend is required (got None)")
    if callable(getattr(llm, "complete", None)) and callable(getattr(llm, "acomplete", None)):
        # Our protocol. (LlamaIndex LLMs also have complete/acomplete, but with another
        # signature: they are handled by the framework adapters, checked first there.)
        return llm  # type: ignore[no-any-return]
    raise TypeError(
        f"unsupported LLM object of type {type(llm).__module__}.{type(llm).__name__}: pass a "
        "rerank_rag LLM backend (OpenAICompatibleLLM, FakeLLM, ...), a LangChain chat model, "
        "a LlamaIndex LLM or a Haystack ChatGenerator"
    )
