"""``BackgroundServer``: the service on a real uvicorn server in a background thread.

For tests and notebooks: a real HTTP server on a free loopback port, driven by any
client (``curl``, the ``cohere`` SDK, LangChain, httpx)::

    from rerank_rag.serve import BackgroundServer, default_config

    with BackgroundServer(default_config()) as srv:
        httpx.post(srv.url + "/rerank", json={...})

``stop()`` (or leaving the ``with`` block) shuts uvicorn down gracefully: in-flight
requests finish, then the pipelines close.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from .._errors import require
from ._config import ServeConfig

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """Run :func:`~rerank_rag.serve.create_app` under uvicorn in a daemon thread.

    Args:
        config: the service config; ``port`` 0 (the default here) picks a free port.
        startup_timeout: seconds to wait for the app to start (model loading included).
    """

    def __init__(self, config: ServeConfig, *, startup_timeout: float = 60.0, port: int = 0) -> None:
        self.config = replace(config, port=port)
        self.startup_timeout = startup_timeout
        self.app: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self.port is None:
            raise RuntimeError("the server is not running")
        return f"http://{self.config.host}:{self.port}"

    @property
    def service(self) -> Any:
        return self.app.state.service

    def start(self) -> BackgroundServer:
        uvicorn = require("uvicorn", "serve", feature="BackgroundServer")
        from ._app import create_app

        self.app = create_app(self.config)
        cfg = uvicorn.Config(
            self.app, host=self.config.host, port=self.config.port, log_level="warning",
            timeout_graceful_shutdown=self.config.limits.request_timeout + 5.0, lifespan="on",
        )  # fmt: skip
        self._server = uvicorn.Server(cfg)
        self._server.install_signal_handlers = lambda: None  # not the main thread
        self._thread = threading.Thread(target=self._server.run, name="rerank-rag-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the rerank-rag service failed to start (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the rerank-rag service did not start within {self.startup_timeout} s")
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self.config.limits.request_timeout + 10.0)
        self._thread = None
        self._server = None
        self.port = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
