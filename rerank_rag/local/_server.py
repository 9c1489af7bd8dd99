"""``LocalLLMServer``: a llama.cpp OpenAI-compatible server as a context manager.

Starts ``python -m llama_cpp.server`` (from ``llama-cpp-python[server]``) on a free
``127.0.0.1`` port in its own process group, waits until ``GET /v1/models`` answers,
and stops the whole group on exit. Our :class:`~rerank_rag.llm.OpenAICompatibleLLM`
talks to it like to any other server::

    from rerank_rag.local import LocalLLMServer
    from rerank_rag import ListwiseRanker

    with LocalLLMServer("smollm2") as server:          # or "qwen2.5-1.5b", or a path
        ranker = ListwiseRanker(server.llm, window_size=10)
        ranking = ranker.rank("query", passages)

The server object is itself an LLM backend (``ListwiseRanker(server)`` works too).

Nothing is imported from llama_cpp in the calling process: the model lives in the
child process, whose process group is killed (SIGTERM, then SIGKILL) on :meth:`stop`,
at interpreter exit (``atexit``) and when the object is garbage-collected; a watchdog
thread in the child also kills it if the parent dies without any of these (SIGKILL,
crash), so no orphan server is left.

Build note: on CPUs with AMX (recent Xeons) a default ``pip install llama-cpp-python``
segfaults on the first decode; install it with
``CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install 'llama-cpp-python[server]'``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any

from .._errors import MissingDependencyError, RerankRagError
from ._discover import get_model_list
from ._models import MODELS, resolve_model

__all__ = [
    "LocalLLMServer",
    "LocalServerError",
    "check_local_dependencies",
    "default_threads",
    "free_port",
]

#: Modules the llama.cpp server needs (``llama-cpp-python[server]``).
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

_LIVE: weakref.WeakSet[LocalLLMServer] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class LocalServerError(RerankRagError, RuntimeError):
    """The local model server failed to start, died, or did not become ready in time."""


def check_local_dependencies() -> None:
    """Raise :class:`MissingDependencyError` naming the ``local`` extra if a server module is missing.

    Only looks the modules up (no import: loading llama.cpp takes time and memory).
    """
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"the local llama.cpp server needs {', '.join(missing)} (not installed). "
            "Install it with: CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'rerank-rag[local]' "
            "(the CMAKE_ARGS avoid a crash of the native build on CPUs with AMX)"
        )


def default_threads() -> int:
    """Threads for llama.cpp: the cores not already busy, at least 1.

    ``$RERANK_RAG_LLAMA_THREADS`` wins when set. Otherwise ``os.cpu_count()`` minus the
    1-minute load average (rounded), clamped to ``[1, cpu_count]``. llama.cpp's worker
    threads spin at every step's barrier, so on oversubscribed cores fewer threads are
    much faster: on 2 cores at load 8, a SmolLM2 call took 7 s with 1 thread and 35-45 s
    with 2. On an idle machine this gives every core (2 threads: about 2x the speed of 1).
    """
    env = os.environ.get("RERANK_RAG_LLAMA_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"RERANK_RAG_LLAMA_THREADS must be an int, got {env!r}") from None
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        load = 0.0
    return max(1, min(cpus, cpus - int(load + 0.5)))


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@atexit.register
def _stop_all() -> None:  # pragma: no cover - runs at interpreter exit
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for srv in servers:
        with contextlib.suppress(Exception):
            srv.stop()


class LocalLLMServer:
    """A llama.cpp OpenAI-compatible server in a child process.

    Args:
        model: ``"smollm2"`` (default: tiny, plumbing only, cannot rank),
            ``"qwen2.5-1.5b"`` (opt-in quality model, sha256-verified), or the path of
            any GGUF file. See :mod:`rerank_rag.local._models`.
        n_threads: threads for generation and prompt processing (default
            :func:`default_threads`: the idle cores, at least 1; llama.cpp's own default
            of half the cores halves speed on an idle machine).
        n_ctx: context window in tokens.
        port: TCP port on 127.0.0.1 (default: a free one).
        startup_timeout: seconds to wait for the server to answer before giving up.
        log_file: where the server's output goes (default: a temporary file removed on
            :meth:`stop`). Its tail is quoted in errors.
        chat_format: llama.cpp chat format; default: the model's own template.
        extra_args: more ``llama_cpp.server`` command-line arguments.
        cache: folder for assembled models (see :func:`~rerank_rag.local.resolve_model`).
        logprobs: keep the logits of every token so requests with ``logprobs: true,
            top_logprobs: k`` work (needed by
            :class:`~rerank_rag.pointwise.LLMPointwiseRanker`). ``False`` saves memory
            (``n_ctx x vocabulary`` floats) and some prompt time; such requests then fail.
        stop_timeout: seconds to wait after SIGTERM before SIGKILL.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1`` once started.
        model_path: the GGUF file served.
        model_name: the model name the server reports (use it in requests).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "smollm2",
        *,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        port: int | None = None,
        startup_timeout: float = 120.0,
        log_file: str | os.PathLike[str] | None = None,
        chat_format: str | None = None,
        extra_args: list[str] | None = None,
        cache: str | os.PathLike[str] | None = None,
        logprobs: bool = True,
        stop_timeout: float = 10.0,
    ) -> None:
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if n_ctx < 128:
            raise ValueError(f"n_ctx must be >= 128, got {n_ctx}")
        if startup_timeout <= 0:
            raise ValueError("startup_timeout must be positive")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._own_log = False
        self.model = model
        self.n_threads = n_threads or default_threads()
        self.n_ctx = n_ctx
        self.port = port
        self._requested_port = port
        self.startup_timeout = startup_timeout
        self.log_file: Path | None = Path(log_file) if log_file is not None else None
        self.extra_args = list(extra_args or [])
        self.cache = cache
        self.logprobs = bool(logprobs)
        self.stop_timeout = stop_timeout
        key = os.fspath(model)
        spec = MODELS.get(key.lower())
        self.chat_format = chat_format or (spec.chat_format if spec else None)
        self.model_name = spec.name if spec else Path(key).stem
        self.model_path: Path | None = None
        self.startup_seconds: float | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalServerError("the server is not started (use 'with LocalLLMServer(...)' or start())")
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The ``python -m llama_cpp.server ...`` command line (after the model is resolved).

        :meth:`start` runs these same arguments through ``python -m
        rerank_rag.local._server --parent PID ...`` (see :func:`_child_main`), which adds
        a watchdog that kills the server if this process dies without stopping it.
        """
        if self.model_path is None or self.port is None:
            raise LocalServerError("command() needs a resolved model and a port; call start()")
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--n_ctx", str(self.n_ctx),
            "--logits_all", str(self.logprobs),
        ]  # fmt: skip
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        return cmd + self.extra_args

    def start(self) -> LocalLLMServer:
        """Resolve the model, launch the server and wait until it answers.

        Raises:
            MissingDependencyError: llama-cpp-python[server] or the model's packages are
                not installed (the message names the extra).
            ModelChecksumError / FileNotFoundError / ValueError: see ``resolve_model``.
            LocalServerError: the process died or did not answer within
                ``startup_timeout`` (the message quotes the end of the server log).
        """
        if self.running:
            return self
        check_local_dependencies()
        self.model_path = resolve_model(self.model, cache=self.cache)
        if self._requested_port is not None and _port_open(self._requested_port):
            raise LocalServerError(f"port {self._requested_port} on 127.0.0.1 is already in use")
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            self.port = self._requested_port or free_port()
            try:
                self._launch()
                return self
            except LocalServerError as exc:
                # another process took the free port between our check and the bind
                if attempt + 1 == attempts or "address already in use" not in str(exc).lower():
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self) -> None:
        if self.log_file is None:
            fd, name = tempfile.mkstemp(prefix="rerank-rag-llama-", suffix=".log")
            os.close(fd)
            self.log_file = Path(name)
            self._own_log = True
        self._log_handle = open(self.log_file, "ab")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-W", f"ignore:'{__name__}' found in sys.modules:RuntimeWarning",  # runpy noise
                "-m", __name__, "--parent", str(os.getpid()),
                *self.command()[3:],
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() kills the whole group
            env=env,
        )
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.startup_timeout
        delay = 0.1
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise LocalServerError(
                    f"the llama.cpp server exited with code {code} while starting "
                    f"(model {self.model_path}).\n--- last lines of the server log ---\n{self.log_tail()}"
                )
            if self.health():
                return
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"the llama.cpp server did not answer on {self.base_url} within "
                    f"{self.startup_timeout:.0f} s.\n--- last lines of the server log ---\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def health(self, timeout: float = 2.0) -> bool:
        """True when ``GET /v1/models`` answers 200 with a JSON model list."""
        if self.port is None or not self.running:
            return False
        data = get_model_list(self.base_url, timeout)
        return isinstance(data, dict) and "data" in data

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log ("" if there is none)."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        with open(self.log_file, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float | None = None) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL). Idempotent.

        Args:
            timeout: seconds to wait after SIGTERM (default ``stop_timeout``).
        """
        if timeout is None:
            timeout = getattr(self, "stop_timeout", 10.0)
        proc = getattr(self, "_proc", None)
        if proc is not None:
            if proc.poll() is None:
                self._signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=timeout)
            # Children of the server (if any) share its group: make sure none is left.
            self._signal_group(proc, signal.SIGKILL)
            self._proc = None
        handle = getattr(self, "_log_handle", None)
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()
            self._log_handle = None
        if getattr(self, "_own_log", False) and self.log_file is not None:
            with contextlib.suppress(OSError):
                self.log_file.unlink()
            self._own_log = False
            self.log_file = None
        with contextlib.suppress(Exception), _LIVE_LOCK:
            _LIVE.discard(self)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(proc.pid, sig)

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # pragma: no cover - depends on the garbage collector
        with contextlib.suppress(Exception):
            self.stop(timeout=2.0)

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        return f"LocalLLMServer(model={os.fspath(self.model)!r}, {state})"

    # -- clients ---------------------------------------------------------------------

    def make_llm(self, **kwargs: Any) -> Any:
        """An :class:`~rerank_rag.llm.OpenAICompatibleLLM` for this server.

        Keyword arguments go to its constructor (defaults: ``max_concurrency=1``, as the
        llama.cpp server answers one request at a time, and a generous ``timeout``).
        """
        if not self.running:
            raise LocalServerError("the server is not running")
        from ..llm import OpenAICompatibleLLM

        kwargs.setdefault("max_concurrency", 1)
        kwargs.setdefault("timeout", 600.0)
        kwargs.setdefault("api_key", "local")  # never send a real OPENAI_API_KEY here
        kwargs.setdefault("max_retries", 1)
        return OpenAICompatibleLLM(self.model_name, base_url=self.base_url, **kwargs)

    # The server is itself an LLM backend (it delegates to :attr:`llm`), so
    # ``ListwiseRanker(server)`` works as well as ``ListwiseRanker(server.llm)``.
    max_concurrency = 1

    def complete(self, messages: Any, **params: Any) -> Any:
        """Same as ``self.llm.complete``: one chat completion from the local model."""
        return self.llm.complete(messages, **params)

    async def acomplete(self, messages: Any, **params: Any) -> Any:
        """Same as ``self.llm.acomplete``."""
        return await self.llm.acomplete(messages, **params)

    @property
    def llm(self) -> Any:
        """A ready :class:`~rerank_rag.llm.OpenAICompatibleLLM` (one per server)."""
        cached = getattr(self, "_llm", None)
        if cached is None or getattr(self, "_llm_port", None) != self.port:
            cached = self.make_llm()
            self._llm = cached
            self._llm_port = self.port
        return cached


def _child_main(argv: list[str]) -> None:  # pragma: no cover - runs in the server process
    """Run ``llama_cpp.server`` with a watchdog on the parent process.

    ``argv`` is ``["--parent", PID, *llama_cpp.server arguments]``. When the process that
    started the server dies (even by SIGKILL, where no ``atexit`` handler runs), the
    server is re-parented; the watchdog notices within half a second and kills its own
    process group. No orphan server is left behind.
    """
    import runpy

    if len(argv) < 2 or argv[0] != "--parent":
        raise SystemExit("usage: python -m rerank_rag.local._server --parent PID [llama_cpp.server args]")
    parent = int(argv[1])

    def _watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=_watch, name="rerank-rag-watchdog", daemon=True).start()
    sys.argv = ["llama_cpp.server", *argv[2:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # pragma: no cover
    _child_main(sys.argv[1:])
