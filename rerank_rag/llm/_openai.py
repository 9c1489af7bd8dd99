"""``OpenAICompatibleLLM``: any OpenAI-compatible chat-completions endpoint.

Works with OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio, LiteLLM proxies, ...
through the official ``openai`` SDK (``pip install 'rerank-rag[openai]'``), imported when
the backend is constructed, never at ``import rerank_rag``.

Design points:

* **Bounded retries, ours.** The SDK client is created with ``max_retries=0``; retries
  follow a :class:`~rerank_rag.llm.RetryPolicy` (429, 5xx, timeouts, connection errors;
  ``Retry-After`` / ``retry-after-ms`` honoured, capped by ``max_delay``). After the last
  attempt the matching :class:`~rerank_rag.LLMError` subclass is raised with
  ``attempts``. HTTP 401/403/404 and unknown-model errors raise
  :class:`~rerank_rag.LLMConfigurationError` (``transient=False``: rankers raise it, never
  fall back) at once; other 4xx answers raise :class:`~rerank_rag.LLMResponseError` at
  once; a malformed 200 body (invalid JSON, no ``choices``) is retried once, then raises
  :class:`~rerank_rag.LLMResponseError`. A 200 whose body is ``{"error": ...}`` raises
  with the server's message (its status, if any, is treated like an HTTP status).
* **One concurrency limit per instance**, shared by every ranker, thread and event loop
  using it (:class:`~rerank_rag.llm._limit.ConcurrencyLimit`: sync calls, async calls and
  calls from several loops all draw on the same ``max_concurrency`` slots). Retry waits
  happen inside the slot (back-pressure on 429s).
* **No global state.** Each instance owns its clients: one sync ``OpenAI`` client and
  one ``AsyncOpenAI`` client per event loop (an async HTTP pool belongs to the loop that
  opened it), all created lazily.
* **The API key stays secret**: it is not in ``repr``, ``to_config()``,
  ``cache_identity()``, cache keys or files, log records or exception messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Self

from .._errors import (
    LLMConnectionError,
    LLMError,
    LLMResponseError,
    LLMTimeoutError,
    require,
)
from ._base import Completion, Message, normalize_messages
from ._openai_errors import body_error, status_error
from ._retry import (
    ConcurrencyLimit,
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
    mark_malformed,
    parse_retry_after,
)

__all__ = ["OpenAICompatibleLLM"]

log = logging.getLogger("rerank_rag.llm")

#: Placeholder key sent to servers that need none (llama.cpp, vLLM without --api-key).
PLACEHOLDER_KEY = "not-needed"

#: Parameters handled by the backend itself (never sent as extra body fields).
_OWN_PARAMS = frozenset(
    {
        "max_tokens",
        "temperature",
        "seed",
        "stop",
        "top_logprobs",
        "logit_bias",
        "timeout",
        "callbacks",
    }
)


class _Secret:
    """Holds the API key; its repr/str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')"

    __str__ = __repr__


def _estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


async def _closer(client: Any, registry: Any, loop: asyncio.AbstractEventLoop) -> Any:
    try:
        yield
    finally:  # the loop is shutting down (asyncio.run), or aclose() already ran
        if registry.get(loop, (None,))[0] is client:
            registry.pop(loop, None)
            with contextlib.suppress(Exception):
                await client.close()


def _close_with_the_loop(loop: asyncio.AbstractEventLoop, client: Any, registry: Any) -> Any:
    """Close a per-loop async client when its loop shuts down.

    ``asyncio.run`` finalises every live async generator (``loop.shutdown_asyncgens``)
    before it closes the loop; a started generator holding the client closes it there,
    so ``asyncio.run(ranker.arank(...))`` in a script leaves no open connection behind
    (without it every such loop leaked its sockets: "unclosed transport" warnings and
    "Task exception was never retrieved" errors when they were collected later)."""
    agen = _closer(client, registry, loop)

    async def start() -> None:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()

    loop.create_task(start())
    return agen  # kept alive with the client: the loop holds generators weakly


class OpenAICompatibleLLM:
    """LLM backend for any OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Args:
        model: model name sent with every request.
        base_url: API base URL (ending in ``/v1``), e.g. ``http://127.0.0.1:8080/v1``.
            Defaults to ``$OPENAI_BASE_URL``, else the OpenAI API.
        api_key: defaults to ``$OPENAI_API_KEY``. With a custom ``base_url`` and no key,
            the placeholder ``"not-needed"`` is sent (local servers ignore it). The
            official OpenAI API without any key raises ``ValueError``.
        temperature: default sampling temperature (0: as deterministic as the server
            allows).
        seed: default ``seed`` passed to the server (``None``: not sent).
        timeout: seconds per HTTP attempt (connect + read), retried on expiry.
        max_retries: retries after the first attempt on 429/5xx/timeouts/connection
            errors (see ``retry_policy`` for the backoff details).
        max_concurrency: calls allowed in flight at once through this instance, in
            total (all threads and event loops). The default, 20, lets one JointRank
            round (100 candidates, ``block_size=20, replicas=4``: 20 blocks) go out at
            once. On a rate-limited API tier lower it (e.g. 4-8): 429s are retried
            inside the slot (honouring ``Retry-After``), but a burst costs retries and
            time; for a single-slot local server use 1.
        cache: optional response cache (:class:`~rerank_rag.llm.MemoryCache`,
            :class:`~rerank_rag.llm.SQLiteCache`, ...). Hits make no request.
        default_params: extra request fields sent with every call (per-call params win),
            e.g. ``{"top_p": 1.0}`` or server-specific fields.
        retry_policy: full control over retries; its ``max_retries`` wins over the
            ``max_retries`` argument.
        default_headers: extra HTTP headers sent with every request.

    Per-call parameters (``complete(messages, **params)``): ``max_tokens``,
    ``temperature``, ``seed``, ``stop``, ``top_logprobs`` (k: asks ``logprobs=true,
    top_logprobs=k`` and fills :attr:`Completion.top_logprobs` for the first token),
    ``logit_bias`` (``{token_id: bias}``), ``timeout`` (seconds, this call only); any
    other key is sent as an extra JSON field of the request body.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_concurrency: int = 20,
        cache: Any = None,
        default_params: Mapping[str, Any] | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._openai = require("openai", "openai", feature="OpenAICompatibleLLM")
        if not isinstance(model, str) or not model:
            raise ValueError("model must be a non-empty string")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "").rstrip("/") or None
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url is None:
                raise ValueError(
                    "no API key for the OpenAI API: pass api_key=... or set OPENAI_API_KEY "
                    "(or pass base_url=... for a local OpenAI-compatible server)"
                )
            key = PLACEHOLDER_KEY
        self._api_key = _Secret(key)
        self.temperature = temperature
        self.seed = seed
        self.timeout = timeout
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._limit = ConcurrencyLimit(max_concurrency)
        if cache is not None and not (
            callable(getattr(cache, "get", None)) and callable(getattr(cache, "set", None))
        ):
            raise TypeError(
                "cache must have get(key) and set(key, value) methods (e.g. MemoryCache())"
            )
        self.cache = cache
        self._cache_guard: Any = None
        if cache is not None:
            from ._cache import GuardedCache

            self._cache_guard = GuardedCache(cache, f"OpenAICompatibleLLM({model!r})")
        self.default_params: dict[str, Any] = dict(default_params or {})
        self.default_headers: dict[str, str] = dict(default_headers or {})
        self._lock = threading.Lock()
        self._client: Any = None
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    # -- description ---------------------------------------------------------------
    @property
    def max_concurrency(self) -> int:
        """How many calls may be in flight at once through this instance."""
        return self._limit.limit

    @property
    def max_retries(self) -> int:
        return self.retry_policy.max_retries

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleLLM(model={self.model!r}, base_url={self.base_url!r}, "
            f"max_concurrency={self.max_concurrency}, max_retries={self.max_retries})"
        )

    def cache_identity(self) -> dict[str, Any]:
        """What identifies this backend's answers in a cache key (never the API key)."""
        return {
            "backend": "openai-compatible",
            "base_url": self.base_url,
            "model": self.model,
            "temperature": self.temperature,
            "seed": self.seed,
            "default_params": self.default_params,
        }

    def to_config(self) -> dict[str, Any]:
        """JSON-able configuration to rebuild an equivalent backend (never the API key).

        ``OpenAICompatibleLLM(**config)`` (minus ``"type"``) rebuilds it; the key is read
        again from ``$OPENAI_API_KEY``.
        """
        p = self.retry_policy
        return {
            "type": "openai-compatible",
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "seed": self.seed,
            "timeout": self.timeout,
            "max_retries": p.max_retries,
            "max_concurrency": self.max_concurrency,
            "default_params": dict(self.default_params),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> OpenAICompatibleLLM:
        """Inverse of :meth:`to_config` (pass ``api_key=`` or rely on the environment)."""
        kwargs = {k: v for k, v in config.items() if k != "type"}
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- clients -------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "api_key": self._api_key.get(),
            "max_retries": 0,  # we retry ourselves (bounded, Retry-After aware)
            "timeout": self.timeout,
        }
        if self.base_url is not None:
            kw["base_url"] = self.base_url
        if self.default_headers:
            kw["default_headers"] = self.default_headers
        return kw

    def _sync_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._openai.OpenAI(**self._client_kwargs())
            return self._client

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._aclients.get(loop)
            if entry is None:
                client = self._openai.AsyncOpenAI(**self._client_kwargs())
                entry = (client, _close_with_the_loop(loop, client, self._aclients))
                self._aclients[loop] = entry
            return entry[0]

    def close(self) -> None:
        """Close the sync HTTP client (async clients: use :meth:`aclose`)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client of the running loop, and the sync client."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._aclients.pop(loop, None)
        if entry is not None:
            await entry[0].close()
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for k in ("_openai", "_lock", "_client", "_aclients"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._openai = require("openai", "openai", feature="OpenAICompatibleLLM")
        self._lock = threading.Lock()
        self._client = None
        self._aclients = weakref.WeakKeyDictionary()

    # -- requests ------------------------------------------------------------------
    def _request(self, messages: tuple[Message, ...], params: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body of one call (plus ``timeout``, popped before sending).

        The body is posted as is with the SDK's low-level ``post`` (its documented way to
        call an endpoint directly): ``chat.completions.create`` first re-validates every
        message against the SDK's types, about 5 ms of CPU for a 44-message RankGPT
        request, which caps a batch run on one core at ~200 requests/s. Extra parameters
        go into the body, as ``extra_body`` would put them."""
        p = {**self.default_params, **params}
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": p.get("temperature", self.temperature),
        }
        seed = p.get("seed", self.seed)
        if seed is not None:
            kw["seed"] = seed
        if p.get("max_tokens") is not None:
            kw["max_tokens"] = int(p["max_tokens"])
        if p.get("stop") is not None:
            kw["stop"] = p["stop"]
        k = p.get("top_logprobs")
        if k is not None and k is not False:
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise ValueError(f"top_logprobs must be a non-negative int, got {k!r}")
            kw["logprobs"] = True
            kw["top_logprobs"] = k
        if p.get("logit_bias"):
            kw["logit_bias"] = {str(t): float(b) for t, b in dict(p["logit_bias"]).items()}
        if p.get("timeout") is not None:
            kw["timeout"] = float(p["timeout"])
        extra = {k2: v for k2, v in p.items() if k2 not in _OWN_PARAMS}
        for k2, v in extra.items():
            kw.setdefault(k2, v)
        return kw

    def _redact(self, text: str) -> tuple[str, bool]:
        key = self._api_key.get()
        changed = False
        if key and key != PLACEHOLDER_KEY and key in text:
            text = text.replace(key, "***")
            changed = True
        new = re.sub(r"(Incorrect API key provided:)\s*\S+", r"\1 ***", text)
        return new, changed or new != text

    def _map_error(self, exc: BaseException) -> LLMError:
        """Translate an SDK exception into our error family (message redacted)."""
        o = self._openai
        where = f"{self.base_url or 'OpenAI API'} (model {self.model!r})"
        status: int | None = None
        retry_after: float | None = None
        err: LLMError
        if isinstance(exc, o.APITimeoutError):
            err = LLMTimeoutError(f"request to {where} timed out after {self.timeout}s")
        elif isinstance(exc, o.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f": {type(cause).__name__}" if cause is not None else ""
            err = LLMConnectionError(f"connection to {where} failed{detail}")
        elif isinstance(exc, o.APIStatusError):
            status = int(exc.status_code)
            headers = getattr(exc.response, "headers", None)
            retry_after = parse_retry_after(dict(headers) if headers is not None else None)
            msg = str(getattr(exc, "message", "") or exc)
            if len(msg) > 500:
                msg = msg[:500] + "..."
            err = status_error(
                status, where, msg, code=getattr(exc, "code", None), param=getattr(exc, "param", None)
            )
        elif isinstance(exc, o.APIResponseValidationError):
            err = mark_malformed(LLMResponseError(f"malformed response from {where}: {exc}"))
        else:
            err = LLMError(f"call to {where} failed: {type(exc).__name__}: {exc}")
        text, redacted = self._redact(str(err))
        if redacted:
            err = type(err)(text, attempts=err.attempts, status=err.status)
        err.retry_after = retry_after  # type: ignore[attr-defined]
        if not redacted:
            err.__cause__ = exc
        else:
            err.__suppress_context__ = True
        return err

    def _parse(self, raw_text: str) -> Completion:
        """Our Completion from the raw JSON body (raises a malformed LLMResponseError)."""
        where = f"{self.base_url or 'OpenAI API'} (model {self.model!r})"
        try:
            data = json.loads(raw_text)
        except (json.JSONDecodeError, TypeError):
            snippet, _ = self._redact(raw_text[:80] if isinstance(raw_text, str) else "")
            raise mark_malformed(
                LLMResponseError(f"malformed response from {where}: invalid JSON {snippet!r}")
            ) from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            if isinstance(data, dict) and data.get("error") is not None:
                raise body_error(data["error"], where, lambda t: self._redact(t)[0])
            raise mark_malformed(LLMResponseError(f"malformed response from {where}: no choices"))
        choice = choices[0]
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts
            content = "".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict)
            )
        text = content if isinstance(content, str) else ""
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = _as_int(usage.get("prompt_tokens"))
        completion_tokens = _as_int(usage.get("completion_tokens"))
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens if prompt_tokens is not None else -1,
            completion_tokens=completion_tokens
            if completion_tokens is not None
            else _estimate_tokens(text),
            top_logprobs=_first_token_logprobs(choice.get("logprobs")),
            model=data.get("model") if isinstance(data.get("model"), str) else self.model,
        )

    def _finish(
        self, completion: Completion, messages: tuple[Message, ...], retries: int
    ) -> Completion:
        from dataclasses import replace

        pt = completion.prompt_tokens
        if pt < 0:  # the server reported no usage: estimate like the server would
            pt = _estimate_tokens("".join(m["content"] for m in messages)) + 3 * len(messages)
        return replace(completion, prompt_tokens=pt, retries=retries)

    def _on_retry(self, retry: int, err: LLMError, wait: float) -> None:
        log.debug(
            "%s: retry %d/%d in %.2fs after %s",
            self.model,
            retry,
            self.max_retries,
            wait,
            type(err).__name__,
        )

    @staticmethod
    def _post_args(kw: dict[str, Any]) -> dict[str, Any]:
        body = dict(kw)
        timeout = body.pop("timeout", None)
        return {
            # the body as text, parsed by us: no response model, and no import of the
            # SDK's HTTP library (httpx or httpx2, depending on the openai version)
            "cast_to": str,
            "body": body,
            "options": {"timeout": timeout} if timeout is not None else {},
        }

    def _attempt_sync(self, kw: dict[str, Any]) -> Completion:
        client = self._sync_client()
        try:
            body = client.post("/chat/completions", **self._post_args(kw))
        except self._openai.OpenAIError as exc:
            err = self._map_error(exc)
            raise err from err.__cause__
        return self._parse(body)

    async def _attempt_async(self, kw: dict[str, Any]) -> Completion:
        client = self._async_client()
        try:
            body = await client.post("/chat/completions", **self._post_args(kw))
        except self._openai.OpenAIError as exc:
            err = self._map_error(exc)
            raise err from err.__cause__
        return self._parse(body)

    def _cache_lookup(
        self, messages: tuple[Message, ...], params: Mapping[str, Any]
    ) -> tuple[str | None, Completion | None]:
        guard = self._cache_guard
        if guard is None:
            return None, None
        key = guard.key(self.cache_identity(), messages, params)
        return key, guard.get(key)

    def _cache_store(self, key: str | None, completion: Completion) -> None:
        if key is not None and self._cache_guard is not None:
            self._cache_guard.put(key, completion)

    def complete(self, messages: Sequence[Message] | str, **params: Any) -> Completion:
        """One chat completion (blocking), retried per the policy.

        Raises:
            LLMRateLimitError / LLMServerError / LLMTimeoutError / LLMConnectionError:
                still failing after the retries (``err.attempts`` says how many).
            LLMConfigurationError: HTTP 401/403/404 or an unknown model (also when a
                200 body carries such an error): never retried.
            LLMResponseError: another 4xx than 429/408, or a malformed body.
        """
        msgs = normalize_messages(messages)
        kw = self._request(msgs, params)
        key, hit = self._cache_lookup(msgs, params)
        if hit is not None:
            return hit
        with self._limit:
            result, retries = call_with_retries(
                lambda: self._attempt_sync(kw), self.retry_policy, on_retry=self._on_retry
            )
        completion = self._finish(result, msgs, retries)
        self._cache_store(key, completion)
        return completion

    async def acomplete(self, messages: Sequence[Message] | str, **params: Any) -> Completion:
        """Async twin of :meth:`complete` (per-event-loop client, the instance's one limit)."""
        msgs = normalize_messages(messages)
        kw = self._request(msgs, params)
        key, hit = self._cache_lookup(msgs, params)
        if hit is not None:
            return hit
        async with self._limit:
            result, retries = await acall_with_retries(
                lambda: self._attempt_async(kw), self.retry_policy, on_retry=self._on_retry
            )
        completion = self._finish(result, msgs, retries)
        self._cache_store(key, completion)
        return completion


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _first_token_logprobs(logprobs: Any) -> dict[str, float] | None:
    """``{token: logprob}`` of the first generated token, from the OpenAI shape."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    first = content[0]
    out: dict[str, float] = {}
    for alt in first.get("top_logprobs") or []:
        if isinstance(alt, dict) and isinstance(alt.get("token"), str):
            try:
                lp = float(alt["logprob"])
            except (KeyError, TypeError, ValueError):
                continue
            tok = alt["token"]
            out[tok] = max(lp, out.get(tok, float("-inf")))
    if not out and isinstance(first.get("token"), str):
        try:
            out[first["token"]] = float(first["logprob"])
        except (KeyError, TypeError, ValueError):
            return None
    return out or None
