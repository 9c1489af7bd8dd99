"""The LLM of a component: serialization (never a credential), tracing, lifecycle.

* :func:`llm_to_dict` / :func:`llm_from_dict`: rerank-rag's ``OpenAICompatibleLLM`` by
  its ``to_config()`` (the API key is read from the environment again), a Haystack
  ChatGenerator with ``component_to_dict``; anything else raises ``SerializationError``.
* :class:`TracedLLM`: the backend rankers call; every call is a
  ``haystack.chat_generator.run`` span under the component's span (as ``LLMRanker``
  traces its generator), also from the rankers' worker threads.
* :func:`warm_up` / :func:`close` and their async twins forward a component's lifecycle
  to the parts it holds; :class:`Lifecycle` gives a component the four methods.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from haystack import tracing
from haystack.core.errors import SerializationError
from haystack.core.serialization import component_to_dict
from haystack.utils import deserialize_chatgenerator_inplace

from rerank_rag.llm import as_backend

__all__ = ["llm_to_dict", "llm_from_dict", "TracedLLM", "traced", "parent_span",
           "warm_up", "awarm_up", "close", "aclose", "Lifecycle"]

_OPENAI = "openai-compatible"

#: the span of the component run in progress (explicit parent for worker threads)
_PARENT: ContextVar[Any] = ContextVar("rerank_rag_haystack_parent_span", default=None)


def llm_to_dict(llm: Any, name: str = "llm") -> dict[str, Any] | None:
    """Serialize an LLM init parameter (``None`` stays ``None``)."""
    if llm is None:
        return None
    if hasattr(llm, "__haystack_input__"):
        return component_to_dict(obj=llm, name=name)
    to_config = getattr(llm, "to_config", None)
    config = to_config() if callable(to_config) else None
    if isinstance(config, dict) and config.get("type") == _OPENAI:
        return config
    raise SerializationError(
        f"cannot serialize an LLM of type {type(llm).__name__}: to_dict supports "
        "rerank_rag.llm.OpenAICompatibleLLM and Haystack ChatGenerators"
    )


def llm_from_dict(init_params: dict[str, Any], key: str = "llm") -> None:
    """Inverse of :func:`llm_to_dict`, in place on ``init_params[key]``."""
    data = init_params.get(key)
    if not isinstance(data, dict):
        return
    if data.get("type") == _OPENAI:
        from rerank_rag.llm import OpenAICompatibleLLM

        init_params[key] = OpenAICompatibleLLM.from_config(data)
    else:
        deserialize_chatgenerator_inplace(init_params, key=key)


@contextlib.contextmanager
def parent_span() -> Iterator[None]:
    """Within a component's run: the current span is the parent of the LLM spans."""
    token = _PARENT.set(tracing.tracer.current_span())
    try:
        yield
    finally:
        _PARENT.reset(token)


def _output(completion: Any) -> dict[str, Any]:
    usage = {"prompt_tokens": completion.prompt_tokens,
             "completion_tokens": completion.completion_tokens}
    return {"replies": [completion.text], "meta": [{"model": completion.model, "usage": usage}]}


class TracedLLM:
    """A rerank-rag backend for ``model`` whose calls are Haystack tracing spans."""

    def __init__(self, model: Any) -> None:
        self._inner = as_backend(model)
        self._type = type(model).__name__

    def __getattr__(self, name: str) -> Any:  # max_concurrency, cache_identity, to_config, ...
        if name.startswith("__") or name in ("_inner", "_type"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    @contextlib.contextmanager
    def _span(self, messages: Any) -> Iterator[Any]:
        tags = {"haystack.component.name": "chat_generator", "haystack.component.type": self._type}
        parent = _PARENT.get() or tracing.tracer.current_span()
        trace = tracing.tracer.trace("haystack.chat_generator.run", tags=tags, parent_span=parent)
        with trace as span:
            span.set_content_tag("haystack.component.input", {"messages": list(messages)})
            yield span

    def complete(self, messages: Any, **params: Any) -> Any:
        with self._span(messages) as span:
            out = self._inner.complete(messages, **params)
            span.set_content_tag("haystack.component.output", _output(out))
            return out

    async def acomplete(self, messages: Any, **params: Any) -> Any:
        with self._span(messages) as span:
            out = await self._inner.acomplete(messages, **params)
            span.set_content_tag("haystack.component.output", _output(out))
            return out


def traced(model: Any) -> Any:
    """:class:`TracedLLM` for an LLM; a pointwise ``Scorer`` (JointRank blocks) as is."""
    if callable(getattr(model, "score", None)) and not callable(getattr(model, "complete", None)):
        return model
    return TracedLLM(model)


def warm_up(*parts: Any) -> None:
    for part in parts:
        if callable(getattr(part, "warm_up", None)):
            part.warm_up()


async def awarm_up(*parts: Any) -> None:
    for part in parts:
        if callable(getattr(part, "warm_up_async", None)):
            await part.warm_up_async()
        elif callable(getattr(part, "warm_up", None)):
            await asyncio.to_thread(part.warm_up)  # e.g. loading a local model


def close(*parts: Any) -> None:
    for part in parts:
        if callable(getattr(part, "close", None)):
            part.close()


async def aclose(*parts: Any) -> None:
    for part in parts:
        for name in ("close_async", "aclose"):  # Haystack's name, then rerank-rag's
            if callable(getattr(part, name, None)):
                await getattr(part, name)()
                break
        else:
            close(part)


class Lifecycle:
    """``warm_up`` / ``warm_up_async`` / ``close`` / ``close_async`` of a component,
    forwarded to the parts it holds (:meth:`_parts`); warming up is idempotent until
    the next close."""

    _warm = False

    def _parts(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Warm up the parts (load local models such as pointwise scorers, warm up the
        LLM and any wrapped component). Idempotent."""
        if not self._warm:
            warm_up(*self._parts())
            self._warm = True

    async def warm_up_async(self) -> None:
        """:meth:`warm_up` on the serving loop (``warm_up_async`` of the parts first)."""
        if not self._warm:
            await awarm_up(*self._parts())
            self._warm = True

    def close(self) -> None:
        """Release what the parts hold (the LLM's clients, ...)."""
        close(*self._parts())
        self._warm = False

    async def close_async(self) -> None:
        """:meth:`close`, with the parts' async resources too."""
        await aclose(*self._parts())
        self._warm = False
