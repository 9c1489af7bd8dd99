"""``as_backend``: accept our backends or a framework's own LLM object.

Framework objects are detected lazily through ``sys.modules``: a framework is never
imported unless the object given is one of its types (if the user holds such an
object, its framework is already imported).

Supported framework objects, each wrapped in a thin adapter with the
:class:`~rerank_rag.llm.LLMBackend` protocol:

============  ==============================================  =======================
framework     detected as                                     adapter
============  ==============================================  =======================
LangChain     ``langchain_core`` ``BaseLanguageModel``        :class:`LangChainLLM`
              (chat models, plain LLMs, and ``bind`` /
              ``with_retry`` / ``with_config`` wrappers)
LlamaIndex    ``llama_index.core`` ``BaseLLM``                :class:`LlamaIndexLLM`
Haystack      a component from ``haystack*`` (or with         :class:`HaystackLLM`
              ``__haystack_input__``) that has ``run``
============  ==============================================  =======================

Framework types are checked *before* the passthrough of objects that already have
``complete``/``acomplete`` (LlamaIndex LLMs have methods of those names with another
signature).

The adapters make one framework call per request and do not retry: the framework
object's own client handles transport retries. Exceptions are re-raised as
:class:`~rerank_rag.LLMError` (``TimeoutError`` as ``LLMTimeoutError``,
``ConnectionError`` as ``LLMConnectionError``, an ``ImportError`` as the non-transient
``LLMConfigurationError``) with the original as ``__cause__``.
Token usage comes from the framework's response metadata when present, else it is
estimated (about 4 characters per token). First-token log-probabilities are not
available through the adapters (``Completion.top_logprobs`` is ``None``); rankers that
need them fall back as they document.

Per-call parameters: only those named in ``forward_params`` reach the framework
(LangChain: ``stop`` by default, as ``invoke`` keyword arguments; LlamaIndex: as ``chat``
keyword arguments; Haystack: in ``generation_kwargs``). Configure temperature, token
limits, etc. on the framework object itself. LangChain callbacks: pass
``callbacks=[...]`` to the adapter or as a per-call parameter; they are forwarded with
``config={"callbacks": ...}``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import LLMError, as_llm_error
from ._base import Completion, LLMBackend, Message, normalize_messages
from ._limit import ConcurrencyLimit

__all__ = ["HaystackLLM", "LangChainLLM", "LlamaIndexLLM", "as_backend", "framework_of"]


def _estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def framework_of(obj: Any) -> str | None:
    """``"langchain"``, ``"llama_index"``, ``"haystack"`` or ``None``, without importing."""
    lc = sys.modules.get("langchain_core.language_models.base")
    if lc is not None:
        base = getattr(lc, "BaseLanguageModel", ())
        if isinstance(obj, base):
            return "langchain"
        # model.bind(...), model.with_retry(...), model.with_config(...): a binding of a model
        runnables = sys.modules.get("langchain_core.runnables.base")
        binding = getattr(runnables, "RunnableBindingBase", None) if runnables else None
        if binding is not None and isinstance(obj, binding):
            inner = obj
            for _ in range(8):  # bindings of bindings
                inner = getattr(inner, "bound", None)
                if isinstance(inner, base):
                    return "langchain"
                if not isinstance(inner, binding):
                    break
    li = sys.modules.get("llama_index.core.base.llms.base")
    if li is not None and isinstance(obj, getattr(li, "BaseLLM", ())):
        return "llama_index"
    module = type(obj).__module__ or ""
    is_haystack = (
        module == "haystack"
        or module.startswith(("haystack.", "haystack_integrations."))
        or hasattr(obj, "__haystack_input__")
    )
    if is_haystack and callable(getattr(obj, "run", None)):
        return "haystack"
    return None


def as_backend(llm: Any, *, max_concurrency: int | None = None) -> LLMBackend:
    """Return an :class:`LLMBackend` for ``llm``.

    Accepts a LangChain chat model / LLM, a LlamaIndex LLM or a Haystack ChatGenerator
    (wrapped in an adapter, see the module docs), or an object with
    ``complete``/``acomplete`` (returned unchanged). Anything else raises ``TypeError``
    naming what is accepted.

    Args:
        llm: the object to adapt.
        max_concurrency: concurrency limit for a new adapter (default 4). Ignored for
            objects that are already backends.
    """
    if llm is None:
        raise TypeError("an LLM backend is required (got None)")
    kind = framework_of(llm)  # framework types first: LlamaIndex also has complete()
    extra: dict[str, Any] = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
    if kind == "langchain":
        return LangChainLLM(llm, **extra)
    if kind == "llama_index":
        return LlamaIndexLLM(llm, **extra)
    if kind == "haystack":
        return HaystackLLM(llm, **extra)
    if callable(getattr(llm, "complete", None)) and callable(getattr(llm, "acomplete", None)):
        return llm  # type: ignore[no-any-return]
    if isinstance(llm, str):
        hint = f" (to use the model {llm!r}, pass OpenAICompatibleLLM({llm!r}, base_url=...))"
    else:
        hint = ""
    raise TypeError(
        f"unsupported LLM object of type {type(llm).__module__}.{type(llm).__name__}: pass a "
        "rerank_rag LLM backend (OpenAICompatibleLLM, FakeLLM, ...), a LangChain chat model, "
        f"a LlamaIndex LLM or a Haystack ChatGenerator{hint}"
    )


# -- shared machinery ------------------------------------------------------------------


def _wrap_error(framework: str, exc: BaseException) -> LLMError:
    return as_llm_error(exc, f"{framework} model call failed: {type(exc).__name__}: {exc}")


def _model_name(obj: Any) -> str | None:
    for attr in ("model_name", "model", "model_id", "name"):
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value:
            return value
    meta = getattr(obj, "metadata", None)  # LlamaIndex LLMMetadata
    value = getattr(meta, "model_name", None)
    return value if isinstance(value, str) and value else None


#: Parameter names dropped from cache identities (credentials never enter cache keys).
_SECRET_SUFFIXES = ("key", "_token", "secret", "password", "authorization", "credentials")


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able, credential-free copy of ``value`` (unknown objects become type names)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > 4:
        return f"<{type(value).__qualname__}>"
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v, depth + 1)
            for k, v in value.items()
            if not str(k).lower().endswith(_SECRET_SUFFIXES)
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _generation_params(obj: Any) -> dict[str, Any]:
    """Settings that change the answers: LangChain ``_identifying_params`` and binding
    kwargs; elsewhere ``temperature`` / ``generation_kwargs`` when present."""
    out: dict[str, Any] = {}
    try:
        ident = getattr(obj, "_identifying_params", None)
    except Exception:  # noqa: BLE001 - a property of a third-party object
        ident = None
    if isinstance(ident, Mapping):
        out.update(ident)
    kwargs = getattr(obj, "kwargs", None)  # RunnableBinding.bind(...) arguments
    if isinstance(kwargs, Mapping):
        out["bound_kwargs"] = dict(kwargs)
    for attr in ("temperature", "generation_kwargs"):
        value = getattr(obj, attr, None)
        if (
            attr not in out
            and isinstance(value, (int, float, Mapping))
            and not isinstance(value, bool)
        ):
            out[attr] = value
    return _plain(out)


class _FrameworkLLM:
    """Common part of the adapters: concurrency limit, usage, error mapping."""

    framework = "framework"

    def __init__(
        self,
        obj: Any,
        *,
        max_concurrency: int = 4,
        forward_params: Sequence[str] = (),
    ) -> None:
        self.obj = obj
        self._limit = ConcurrencyLimit(max_concurrency)
        self.forward_params = tuple(forward_params)

    @property
    def max_concurrency(self) -> int:
        return self._limit.limit

    @property
    def model(self) -> str | None:
        return _model_name(self.obj)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.obj).__name__}, max_concurrency={self.max_concurrency})"

    def cache_identity(self) -> dict[str, Any]:
        t = type(self.obj)
        return {
            "backend": self.framework,
            "class": f"{t.__module__}.{t.__qualname__}",
            "model": self.model,
            "params": _generation_params(self.obj),
        }

    def to_config(self) -> dict[str, Any]:
        t = type(self.obj)
        return {
            "type": self.framework,
            "class": f"{t.__module__}.{t.__qualname__}",
            "model": self.model,
            "max_concurrency": self.max_concurrency,
            "forward_params": list(self.forward_params),
        }

    def _forwarded(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {k: params[k] for k in self.forward_params if params.get(k) is not None}

    def _completion(
        self,
        messages: tuple[Message, ...],
        text: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> Completion:
        if prompt_tokens is None:
            prompt_tokens = _estimate_tokens("".join(m["content"] for m in messages))
        if completion_tokens is None:
            completion_tokens = _estimate_tokens(text)
        return Completion(
            text=text,
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            model=self.model,
        )

    # subclasses implement these two
    def _call(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        raise NotImplementedError

    async def _acall(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        raise NotImplementedError

    def complete(self, messages: Sequence[Message] | str, **params: Any) -> Completion:
        msgs = normalize_messages(messages)
        with self._limit:
            try:
                return self._call(msgs, params)
            except LLMError:
                raise
            except Exception as exc:
                raise _wrap_error(self.framework, exc) from exc

    async def acomplete(self, messages: Sequence[Message] | str, **params: Any) -> Completion:
        msgs = normalize_messages(messages)
        async with self._limit:
            try:
                return await self._acall(msgs, params)
            except LLMError:
                raise
            except Exception as exc:
                raise _wrap_error(self.framework, exc) from exc


# -- LangChain -------------------------------------------------------------------------


def _langchain_text(result: Any) -> str:
    if isinstance(result, str):  # plain LLMs (BaseLLM) return a string
        return result
    text = getattr(result, "text", None)
    if isinstance(text, str):  # langchain-core 1.x: a property (a str, callable for compat)
        return str(text)
    if callable(text):  # langchain-core < 1.0: a method
        text = text()
        if isinstance(text, str):
            return text
    content = getattr(result, "content", "")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    return str(content)


class LangChainLLM(_FrameworkLLM):
    """Adapter for a LangChain chat model or LLM (``langchain_core``).

    Calls ``invoke`` / ``ainvoke`` with ``SystemMessage`` / ``HumanMessage`` /
    ``AIMessage`` built from our role dicts and reads ``.text``. Token usage comes from
    ``usage_metadata`` when the model reports it.

    Args:
        model: a ``BaseLanguageModel`` instance (e.g. ``ChatOpenAI(...)``).
        max_concurrency: calls in flight at once through this adapter.
        callbacks: LangChain callbacks forwarded with every call.
        forward_params: per-call parameters passed to ``invoke`` as keyword arguments.
    """

    framework = "langchain"

    def __init__(
        self,
        model: Any,
        *,
        max_concurrency: int = 4,
        callbacks: Any = None,
        forward_params: Sequence[str] = ("stop",),
    ) -> None:
        super().__init__(model, max_concurrency=max_concurrency, forward_params=forward_params)
        self.callbacks = callbacks

    def _inputs(
        self, messages: tuple[Message, ...], params: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        cls = {"system": SystemMessage, "assistant": AIMessage, "ai": AIMessage}
        lc_messages = [cls.get(m["role"], HumanMessage)(content=m["content"]) for m in messages]
        kwargs = self._forwarded(params)
        callbacks = params.get("callbacks", self.callbacks)
        if callbacks is not None:
            kwargs["config"] = {"callbacks": callbacks}
        return lc_messages, kwargs

    def _to_completion(self, messages: tuple[Message, ...], result: Any) -> Completion:
        text = _langchain_text(result)
        usage = getattr(result, "usage_metadata", None) or {}
        return self._completion(
            messages, text, usage.get("input_tokens"), usage.get("output_tokens")
        )

    def _call(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        lc_messages, kwargs = self._inputs(messages, params)
        return self._to_completion(messages, self.obj.invoke(lc_messages, **kwargs))

    async def _acall(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        lc_messages, kwargs = self._inputs(messages, params)
        return self._to_completion(messages, await self.obj.ainvoke(lc_messages, **kwargs))


# -- LlamaIndex ------------------------------------------------------------------------


class LlamaIndexLLM(_FrameworkLLM):
    """Adapter for a LlamaIndex LLM (``llama_index.core``).

    Calls ``chat`` / ``achat`` with ``ChatMessage`` objects and reads
    ``response.message.content``. Token usage comes from an OpenAI-style ``usage`` in
    ``response.raw`` when present.
    """

    framework = "llama_index"

    def _inputs(self, messages: tuple[Message, ...]) -> list[Any]:
        from llama_index.core.base.llms.types import ChatMessage, MessageRole

        roles = {
            "system": MessageRole.SYSTEM,
            "assistant": MessageRole.ASSISTANT,
            "user": MessageRole.USER,
        }
        return [
            ChatMessage(role=roles.get(m["role"], MessageRole.USER), content=m["content"])
            for m in messages
        ]

    def _to_completion(self, messages: tuple[Message, ...], response: Any) -> Completion:
        message = getattr(response, "message", None)
        content = getattr(message, "content", None)
        text = content if isinstance(content, str) else ("" if content is None else str(content))
        raw = getattr(response, "raw", None)
        usage = raw.get("usage") if isinstance(raw, Mapping) else getattr(raw, "usage", None)
        pt = ct = None
        if isinstance(usage, Mapping):
            pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        elif usage is not None:
            pt, ct = (
                getattr(usage, "prompt_tokens", None),
                getattr(usage, "completion_tokens", None),
            )
        pt = pt if isinstance(pt, int) else None
        ct = ct if isinstance(ct, int) else None
        return self._completion(messages, text, pt, ct)

    def _call(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        response = self.obj.chat(self._inputs(messages), **self._forwarded(params))
        return self._to_completion(messages, response)

    async def _acall(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        response = await self.obj.achat(self._inputs(messages), **self._forwarded(params))
        return self._to_completion(messages, response)


# -- Haystack --------------------------------------------------------------------------


class HaystackLLM(_FrameworkLLM):
    """Adapter for a Haystack ChatGenerator component (``haystack-ai``).

    Calls ``warm_up()`` once if the component has it, then
    ``run(messages=[ChatMessage...])["replies"][0].text``; the async path uses
    ``run_async`` when the component has it, else runs ``run`` in a worker thread.
    Token usage comes from the reply's ``meta["usage"]`` when present.
    """

    framework = "haystack"

    def __init__(
        self, generator: Any, *, max_concurrency: int = 4, forward_params: Sequence[str] = ()
    ) -> None:
        super().__init__(generator, max_concurrency=max_concurrency, forward_params=forward_params)
        self._warm = False
        self._warm_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_warm_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._warm_lock = threading.Lock()

    def _warm_up(self) -> None:
        if self._warm:
            return
        with self._warm_lock:
            if not self._warm:
                fn = getattr(self.obj, "warm_up", None)
                if callable(fn):
                    fn()
                self._warm = True

    def _inputs(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> dict[str, Any]:
        from haystack.dataclasses import ChatMessage

        make = {"system": ChatMessage.from_system, "assistant": ChatMessage.from_assistant}
        kwargs: dict[str, Any] = {
            "messages": [make.get(m["role"], ChatMessage.from_user)(m["content"]) for m in messages]
        }
        gen = self._forwarded(params)
        if gen:
            kwargs["generation_kwargs"] = gen
        return kwargs

    def _to_completion(self, messages: tuple[Message, ...], result: Any) -> Completion:
        replies = result.get("replies") if isinstance(result, Mapping) else None
        if not replies:
            raise LLMError(f"Haystack generator {type(self.obj).__name__} returned no replies")
        reply = replies[0]
        text = getattr(reply, "text", None)
        if not isinstance(text, str):
            text = reply if isinstance(reply, str) else ""
        meta = getattr(reply, "meta", None) or {}
        usage = meta.get("usage") if isinstance(meta, Mapping) else None
        pt = ct = None
        if isinstance(usage, Mapping):
            pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        pt = pt if isinstance(pt, int) else None
        ct = ct if isinstance(ct, int) else None
        return self._completion(messages, text, pt, ct)

    def _call(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        self._warm_up()
        return self._to_completion(messages, self.obj.run(**self._inputs(messages, params)))

    async def _acall(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> Completion:
        import asyncio

        if not self._warm:
            await asyncio.to_thread(self._warm_up)
        kwargs = self._inputs(messages, params)
        run_async = getattr(self.obj, "run_async", None)
        if callable(run_async):
            result = await run_async(**kwargs)
        else:
            result = await asyncio.to_thread(self.obj.run, **kwargs)
        return self._to_completion(messages, result)
