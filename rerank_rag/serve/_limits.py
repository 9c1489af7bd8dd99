"""Limits and security: API keys, body cap, in-flight cap, per-document truncation.

* :class:`Guard` is a pure ASGI middleware in front of every route (the MCP endpoint
  too): it checks the ``Authorization: Bearer`` key of protected paths
  (``hmac.compare_digest`` against every configured key, so the time taken does not
  depend on where a guess differs; keys are never logged) and caps the request body
  (413 from ``Content-Length`` or while reading a chunked body, before any parsing).
* :class:`InFlight` bounds the requests being ranked at once; beyond the bound the
  service answers 429 with ``Retry-After`` at once instead of queueing without limit.
* :func:`truncate_documents` cuts each document to a token budget, so one oversized
  document never fails a batch.

Errors are :class:`ApiError`; :func:`error_body` renders the JSON shape clients read:
``{"message", "detail", "type"}`` (Cohere SDKs read ``message``, Jina/FastAPI-style
clients ``detail``), or TEI's ``{"error", "error_type"}`` for TEI-shaped requests.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from .._text import collapse_whitespace, truncate_tokens

__all__ = ["ApiError", "InFlight", "Guard", "error_body", "truncate_documents"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(Exception):
    """An error answered to the client: HTTP status, message, error type, headers."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}


def error_body(message: str, kind: str, *, tei: bool = False) -> dict[str, Any]:
    """The JSON error body (TEI's shape for TEI-shaped requests)."""
    if tei:
        return {"error": message, "error_type": kind}
    return {"message": message, "detail": message, "type": kind}


def _json_response_messages(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[Message, Message]:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return (
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": body},
    )


class InFlight:
    """A non-blocking counter of requests in flight (single event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def try_acquire(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def release(self) -> None:
        self.count -= 1


class Guard:
    """ASGI middleware: API-key check on protected paths, then the body-size cap.

    Args:
        app: the wrapped ASGI app.
        keys: accepted API keys; empty: no authentication.
        max_body_bytes: the body cap (413 above it).
        public: paths served without a key (health check, OpenAPI page).
        on_reject: called with ``(reason, status)`` for metrics.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Sequence[str],
        max_body_bytes: int,
        public: frozenset[str] = frozenset(),
        on_reject: Callable[[str, int], None] | None = None,
    ) -> None:
        self.app = app
        self._keys = tuple(k.encode() for k in keys)
        self.max_body_bytes = max_body_bytes
        self.public = public
        self.on_reject = on_reject

    def _authorized(self, scope: Scope) -> bool:
        if not self._keys or scope.get("path", "") in self.public:
            return True
        token = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    token = rest.strip()
                break
        ok = False
        for key in self._keys:  # compare against every key: no early exit
            ok |= hmac.compare_digest(token, key)
        return ok

    async def _reject(
        self, send: Send, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        if self.on_reject is not None:
            self.on_reject(kind, status)
        start, body = _json_response_messages(status, error_body(message, kind), headers)
        await send(start)
        await send(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._authorized(scope):
            await self._reject(
                send, 401, "missing or invalid API key (send Authorization: Bearer <key>)",
                "authentication_error", {"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        cap = self.max_body_bytes
        too_large = f"request body too large: the limit is {cap} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > cap:
                    await self._reject(send, 413, too_large, "request_too_large")
                    return
                break
        # Read the body here (at most cap bytes), then replay it: a chunked or lying
        # upload cannot make the service buffer more than the cap.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await self._reject(send, 413, too_large, "request_too_large")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def truncate_documents(texts: list[str], max_tokens: int) -> tuple[list[str], int]:
    """Cut each text to ``max_tokens`` tokens (see :func:`rerank_rag._text.truncate_tokens`).

    Returns ``(texts, how many were cut)``. Texts that certainly fit (at most
    ``max_tokens`` UTF-8 bytes: a token covers at least one byte, and an estimated token
    at least one character) are passed through untouched, which keeps the common case
    cheap.
    """
    out: list[str] = []
    cut = 0
    for t in texts:
        if len(t) <= max_tokens and (t.isascii() or len(t.encode()) <= max_tokens):
            out.append(t)
            continue
        short = truncate_tokens(t, max_tokens)
        if len(short) < len(collapse_whitespace(t)):
            cut += 1
        out.append(short)
    return out, cut
