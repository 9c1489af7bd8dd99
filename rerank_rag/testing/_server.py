"""``ChatServer``: an OpenAI-compatible chat-completions server for tests.

A real HTTP server on the loopback interface, driven by a plain Python function, so
an :class:`~rerank_rag.llm.OpenAICompatibleLLM` (or any OpenAI SDK client, or ``curl``)
can be tested end to end without network access, mocks or patching.

Endpoints:

* ``POST /v1/chat/completions``: calls ``handler(body)`` with the parsed JSON request
  and answers in the OpenAI chat-completions shape (``choices``, ``usage``, optional
  ``logprobs``).
* ``GET /v1/models``: lists one model (the ``model`` given to the server).
* ``GET /health``: ``{"status": "ok"}``.

The handler returns a ``str`` (the assistant text) or a :class:`Reply` to control the
HTTP status, headers, latency, raw body, a connection reset, token counts and the
first-token log-probabilities. A handler exception becomes an HTTP 500 with a JSON
error body (and is kept in :attr:`ChatServer.errors`).

Example::

    from rerank_rag.testing import ChatServer, Reply

    def handler(body):
        if len(srv.requests) == 1:
            return Reply(status=429, headers={"Retry-After": "1"})
        return "[2] > [1]"

    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url)
        llm.complete([{"role": "user", "content": "rank"}]).text   # "[2] > [1]"
        len(srv.requests)                                           # 2

The server binds ``127.0.0.1`` only, serves each connection in a daemon thread, and
``stop()`` (or leaving the ``with`` block) closes open keep-alive connections, wakes
pending ``delay`` sleeps and joins every thread, so nothing keeps serving afterwards.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["ChatServer", "RecordedRequest", "Reply", "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """Rough token count (about 4 characters per token), as the server reports it."""
    return max(1, (len(text) + 3) // 4) if text else 0


@dataclass(frozen=True)
class Reply:
    """What the server answers to one chat-completions request.

    Attributes:
        text: the assistant message content.
        status: HTTP status. For ``status >= 400`` without ``body`` the server sends an
            OpenAI-style error JSON ``{"error": {"message": text or the reason, ...}}``.
        headers: extra response headers, e.g. ``{"Retry-After": "1"}`` with a 429.
        delay: seconds to wait before answering (to simulate latency or a timeout).
        body: raw response body (``bytes`` or ``str``) sent instead of the generated
            JSON, e.g. to send malformed JSON. Sent with ``status``.
        reset: close the connection without answering (TCP reset); the client sees a
            connection error. ``delay`` applies before the reset.
        prompt_tokens / completion_tokens: reported ``usage``; ``None`` estimates them
            (about 4 characters per token) like a real server would report.
        top_logprobs: ``{token: logprob}`` for the first generated token. Rendered as
            ``choices[0].logprobs.content[0].top_logprobs`` (best first, at most the
            requested ``top_logprobs``) only when the request asked ``logprobs: true``.
        finish_reason: ``choices[0].finish_reason``.
        model: model name reported in the response (default: the requested model).
    """

    text: str = ""
    status: int = 200
    headers: Mapping[str, str] | None = None
    delay: float = 0.0
    body: bytes | str | None = None
    reset: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    top_logprobs: Mapping[str, float] | None = None
    finish_reason: str = "stop"
    model: str | None = None


Handler = Callable[[dict[str, Any]], str | Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One chat-completions request as the server received it.

    Attributes:
        body: the parsed JSON body (``None`` if it was not valid JSON).
        headers: request headers (names lower-cased).
        time: ``time.monotonic()`` when the request was fully read.
        path: the request path.
    """

    body: dict[str, Any] | None
    headers: dict[str, str]
    time: float
    path: str = "/v1/chat/completions"


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    peak: int = 0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # never keeps the interpreter alive...
    block_on_close = False  # ...and we join our threads ourselves (the stdlib skips daemons)
    allow_reuse_address = True
    # a JointRank round opens 20+ connections at once; the stdlib default backlog of 5
    # makes a burst of new connections fail with resets, which a real server never does
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], owner: ChatServer) -> None:
        self.owner = owner
        self.open_conns: set[socket.socket] = set()
        self.conn_threads: set[threading.Thread] = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"ChatServer:{self.server_address[1]}:conn",
            daemon=True,
        )
        with self.conns_lock:
            self.conn_threads.add(t)
        t.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.conns_lock:
                self.conn_threads.discard(threading.current_thread())

    def close_connections(self) -> None:
        """Shut down open sockets so idle keep-alive reads return at once."""
        with self.conns_lock:
            conns = list(self.open_conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join_threads(self, timeout: float) -> None:
        """Join connection threads, re-closing sockets opened meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            self.close_connections()
            with self.conns_lock:
                threads = list(self.conn_threads)
            if not threads or time.monotonic() >= deadline:
                return
            for t in threads:
                t.join(min(0.1, max(0.0, deadline - time.monotonic())))


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server
    server_version = "rerank-rag-ChatServer/1"
    timeout = 120  # a stuck idle connection ends eventually even without stop()
    # headers and body are two writes: without TCP_NODELAY, Nagle + delayed ACK add
    # ~40 ms to every keep-alive response
    disable_nagle_algorithm = True
    server: _HTTPServer

    # -- connection bookkeeping (so stop() can close keep-alive connections) --------
    def setup(self) -> None:
        super().setup()
        with self.server.conns_lock:
            self.server.open_conns.add(self.connection)

    def finish(self) -> None:
        with self.server.conns_lock:
            self.server.open_conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests read srv.requests instead

    # -- helpers -------------------------------------------------------------------
    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send_raw(status, json.dumps(payload).encode("utf-8"), headers, "application/json")

    def _send_raw(
        self,
        status: int,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _reset(self) -> None:
        """Abort the connection with a TCP RST, without answering."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # -- routes --------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        owner = self.server.owner
        if path in ("/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
        elif path == "/v1/models":
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {
                            "id": owner.model,
                            "object": "model",
                            "created": 0,
                            "owned_by": "rerank-rag-testing",
                        }
                    ],
                },
            )
        else:
            self._send_json(404, _error_payload(f"no route for GET {path}", 404))

    def do_POST(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, _error_payload(f"no route for POST {path}", 404))
            return
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner._record(RecordedRequest(body=body, headers=headers, time=time.monotonic(), path=path))
        if not isinstance(body, dict):
            self._send_json(400, _error_payload("request body must be a JSON object", 400))
            return
        if body.get("stream"):
            self._send_json(400, _error_payload("ChatServer does not support stream=true", 400))
            return

        owner._enter()
        acquired = False
        try:
            acquired = owner._acquire()
            if not acquired:
                self._reset()
                return
            reply = owner._call_handler(body)
            if reply.delay > 0 and owner._stopping.wait(reply.delay):
                self._reset()  # server stopping: do not keep the thread alive
                return
            if reply.reset:
                self._reset()
                return
            try:
                if reply.body is not None:
                    raw_body = reply.body
                    data = (
                        raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
                    )
                    status, payload = reply.status, None
                elif reply.status >= 400:
                    message = reply.text or _phrase(reply.status)
                    status, payload = reply.status, _error_payload(message, reply.status)
                else:
                    status, payload = reply.status, _completion_payload(body, reply, owner.model)
                if payload is not None:
                    data = json.dumps(payload).encode("utf-8")
            except Exception as exc:  # noqa: BLE001 - e.g. bad logprobs in the Reply
                owner._error(exc)
                msg = f"ChatServer could not render the Reply: {type(exc).__name__}: {exc}"
                status, data = 500, json.dumps(_error_payload(msg, 500)).encode("utf-8")
            self._send_raw(status, data, reply.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (e.g. it timed out)
        finally:
            if acquired:
                owner._release()
            owner._leave()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _error_payload(message: str, status: int) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def _completion_payload(body: dict[str, Any], reply: Reply, default_model: str) -> dict[str, Any]:
    prompt = ""
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            content = m.get("content")
            if isinstance(content, str):
                prompt += content
            elif isinstance(content, list):  # content parts
                prompt += "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    prompt_tokens = reply.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = estimate_tokens(prompt) + 3 * len(body.get("messages") or [])
    completion_tokens = reply.completion_tokens
    if completion_tokens is None:
        completion_tokens = estimate_tokens(reply.text)
    logprobs: dict[str, Any] | None = None
    if body.get("logprobs") and reply.top_logprobs:
        k = body.get("top_logprobs")
        items = sorted(reply.top_logprobs.items(), key=lambda kv: -float(kv[1]))
        if isinstance(k, int) and k >= 0:
            items = items[: max(k, 1)]
        first_token, first_lp = items[0]
        logprobs = {
            "content": [
                {
                    "token": first_token,
                    "logprob": float(first_lp),
                    "bytes": list(first_token.encode("utf-8")),
                    "top_logprobs": [
                        {"token": t, "logprob": float(lp), "bytes": list(t.encode("utf-8"))}
                        for t, lp in items
                    ],
                }
            ],
            "refusal": None,
        }
    return {
        "id": f"chatcmpl-test-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model") or default_model,
        "system_fingerprint": "rerank-rag-testing",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": logprobs,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ChatServer:
    """An OpenAI-compatible chat-completions server on ``127.0.0.1``, for tests.

    Args:
        handler: ``handler(body) -> str | Reply`` called once per chat-completions
            request with the parsed JSON body. Called from server threads: it may run
            concurrently with itself. Defaults to answering ``""``.
        model: the model listed by ``GET /v1/models`` (and reported when the request
            names none).
        port: TCP port; ``0`` (default) picks a free one.
        max_concurrency: if set, at most this many handler calls (plus their
            ``delay``) run at once; further requests queue, like a busy server.
        record_requests: keep every request in :attr:`log` (default). Set it to
            ``False`` (also as an attribute) for long load tests: the log would hold
            every request body.

    Attributes:
        base_url: ``"http://127.0.0.1:PORT/v1"`` (valid once started).
        requests: parsed bodies of the chat-completions requests received, in arrival
            order (``None`` for a body that was not JSON).
        log: :class:`RecordedRequest` per request (body, headers, arrival time).
        errors: exceptions raised by the handler (each answered with HTTP 500).
        peak_concurrency: the largest number of chat-completions requests in flight
            (received, not yet answered) at the same time.

    Use it as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        model: str = "test-model",
        port: int = 0,
        max_concurrency: int | None = None,
        record_requests: bool = True,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1 or None")
        self.handler: Handler = handler or (lambda body: "")
        self.model = model
        self.port = port
        self.max_concurrency = max_concurrency
        self.record_requests = record_requests
        self.log: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self._state = _State()
        self._sem = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> ChatServer:
        """Bind and start serving in a background thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ChatServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close open connections, wake delayed replies, join all threads."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()  # ends serve_forever: no new connections are accepted
        httpd.server_close()  # closes the listening socket
        httpd.join_threads(timeout=10.0)  # a handler stuck in user code is left behind
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    close = stop

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._httpd is not None else "stopped"
        return f"ChatServer(port={self.port}, {state}, requests={len(self.log)})"

    # -- public views --------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        if self._httpd is None:
            raise RuntimeError("ChatServer is not running: call start() or use it in a with block")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``)."""
        return self.base_url[: -len("/v1")]

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def requests(self) -> list[dict[str, Any] | None]:
        """Parsed bodies of the chat-completions requests received so far."""
        with self._state.lock:
            return [r.body for r in self.log]

    @property
    def request_times(self) -> list[float]:
        """``time.monotonic()`` arrival time of each request (same order as ``requests``)."""
        with self._state.lock:
            return [r.time for r in self.log]

    @property
    def peak_concurrency(self) -> int:
        with self._state.lock:
            return self._state.peak

    @property
    def in_flight(self) -> int:
        with self._state.lock:
            return self._state.in_flight

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is in flight (a client can finish reading a response
        a moment before the server thread finishes its bookkeeping). True if idle."""
        deadline = time.monotonic() + timeout
        while self.in_flight:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def clear(self) -> None:
        """Forget recorded requests, errors and the concurrency peak (call
        :meth:`wait_idle` first if requests may still be finishing)."""
        with self._state.lock:
            self.log.clear()
            self.errors.clear()
            self._state.peak = self._state.in_flight

    # -- internals (called from request threads) -----------------------------------
    def _record(self, req: RecordedRequest) -> None:
        if not self.record_requests:
            return
        with self._state.lock:
            self.log.append(req)

    def _enter(self) -> None:
        with self._state.lock:
            self._state.in_flight += 1
            self._state.peak = max(self._state.peak, self._state.in_flight)

    def _leave(self) -> None:
        with self._state.lock:
            self._state.in_flight -= 1

    def _acquire(self) -> bool:
        """Take a ``max_concurrency`` slot; False if the server stops meanwhile."""
        sem = self._sem
        if sem is None:
            return True
        while not sem.acquire(timeout=0.05):
            if self._stopping.is_set():
                return False
        return True

    def _release(self) -> None:
        if self._sem is not None:
            self._sem.release()

    def _error(self, exc: BaseException) -> None:
        with self._state.lock:
            self.errors.append(exc)

    def _call_handler(self, body: dict[str, Any]) -> Reply:
        try:
            result = self.handler(body)
        except Exception as exc:  # noqa: BLE001 - a test double reports, never crashes
            with self._state.lock:
                self.errors.append(exc)
            return Reply(text=f"handler raised {type(exc).__name__}: {exc}", status=500)
        if isinstance(result, Reply):
            return result
        if isinstance(result, str):
            return Reply(text=result)
        with self._state.lock:
            self.errors.append(TypeError(f"handler returned {type(result).__name__}"))
        return Reply(
            text=f"handler must return str or Reply, got {type(result).__name__}", status=500
        )
