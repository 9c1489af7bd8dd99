"""FakeLLM: a documented test double that ships with the package.

Like httpx's ``MockTransport``, it takes a plain function. The handler receives the
chat messages (a tuple of ``{"role", "content"}`` mappings) and the call parameters,
and returns either a string or a :class:`~rerank_rag.llm.Completion` (or raises, to
simulate a failed call). A handler may be ``async``; it is awaited only if it returns
an awaitable, so one fake serves the sync and the async paths. A sync handler used from
``acomplete`` is simply called. An async handler used from the sync ``complete`` path
is run to completion in a fresh event loop.

Example::

    from rerank_rag.llm import FakeLLM
    llm = FakeLLM(lambda messages: "[2] > [1]")
    llm.complete([{"role": "user", "content": "rank these"}]).text  # "[2] > [1]"

Token counts are estimated (about 4 characters per token) so usage accounting has
realistic numbers. Every call is recorded in :attr:`FakeLLM.calls`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._base import Completion, Message, normalize_messages

__all__ = ["FakeLLM"]


def _estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


class FakeLLM:
    """An in-process LLM backend driven by a plain (sync or async) function.

    Args:
        handler: ``handler(messages)`` or ``handler(messages, **params)`` returning a
            ``str`` or :class:`Completion` (or an awaitable of one). Raise to simulate
            a failure. If omitted, every call returns ``""``.
        max_concurrency: advertised concurrency limit (the sync driver sizes its
            thread pool with it).
        name: model name reported in completions and cache identities.
    """

    def __init__(
        self,
        handler: Callable[..., Any] | None = None,
        *,
        max_concurrency: int = 8,
        name: str = "fake-llm",
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.handler = handler or (lambda messages: "")
        self.max_concurrency = max_concurrency
        self.name = name
        self.calls: list[tuple[tuple[Message, ...], dict[str, Any]]] = []
        self._lock = threading.Lock()
        import inspect  # lazy: keeps `import rerank_rag` cheap

        try:
            sig = inspect.signature(self.handler)
            self._pass_params = any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
            ) or len(sig.parameters) > 1
        except (TypeError, ValueError):  # builtins without a signature
            self._pass_params = False

    def __repr__(self) -> str:
        return f"FakeLLM(name={self.name!r}, calls={len(self.calls)})"

    def cache_identity(self) -> dict[str, Any]:
        return {"backend": "fake", "model": self.name}

    # The lock cannot be copied or pickled: rebuild it (deepcopy / pickle support).
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def to_config(self) -> dict[str, Any]:
        return {"type": "fake", "name": self.name, "max_concurrency": self.max_concurrency}

    def _invoke(self, messages: Sequence[Message], params: dict[str, Any]) -> Any:
        msgs = normalize_messages(messages)
        with self._lock:
            self.calls.append((msgs, dict(params)))
        if self._pass_params:
            return self.handler(msgs, **params)
        return self.handler(msgs)

    def _wrap(self, messages: Sequence[Message], result: Any) -> Completion:
        if isinstance(result, Completion):
            return result
        if not isinstance(result, str):
            raise TypeError(f"FakeLLM handler must return str or Completion, got {type(result).__name__}")
        prompt = "".join(m["content"] for m in normalize_messages(messages))
        return Completion(
            text=result,
            prompt_tokens=_estimate_tokens(prompt),
            completion_tokens=_estimate_tokens(result),
            model=self.name,
        )

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        import asyncio
        import inspect

        result = self._invoke(messages, params)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return self._wrap(messages, result)

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        import inspect

        result = self._invoke(messages, params)
        if inspect.isawaitable(result):
            result = await result
        return self._wrap(messages, result)


async def _await(aw: Any) -> Any:
    return await aw
