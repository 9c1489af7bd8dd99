"""``rerank-rag serve`` as a process: ``scripts/serve.sh`` answering the README's curl on
the offline default, ``--workers 2``, ``--ray`` on a local Ray instance (same answers as
the plain server), and a graceful SIGTERM that lets the request in flight finish.

Every child runs in its own session, so a failed test kills all it started (Ray's
processes included) and none can hang the suite."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra")
pytest.importorskip("onnxruntime", reason="needs the minilm extra")

from rerank_rag.serve import (  # noqa: E402
    BackgroundServer,
    ConfigError,
    default_config,
    load_config,
    parse_pipeline_flag,
)
from rerank_rag.serve._cli import _parser, build_config  # noqa: E402
from rerank_rag.testing import ChatServer, Reply  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_URL = re.compile(r"(?:Uvicorn running on|on Ray Serve:) (http://[\d.]+:\d+)")
_STARTED = re.compile(r"Application startup complete")
_WORKER = re.compile(r"Started server process \[(\d+)\]")


def _command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "rerank-rag"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "rerank_rag"]
    return [*base, "serve", *args]


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.pop("RERANK_RAG_API_KEYS", None)
    env.pop("RAY_ADDRESS", None)  # --ray must start its own local instance here
    return {**env, **extra}


def _session(sid: int) -> list[int]:
    """The live (not zombie) processes of session ``sid``: the child and all it started."""
    pids: list[int] = []
    if not os.path.isdir("/proc"):  # pragma: no cover - Linux is where the suite runs
        return pids
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class _Proc:
    """``rerank-rag serve ARGS`` (or ``command``) in a child process and its own session.

    ``wait()`` returns once ``ready`` has appeared ``count`` times in its output and sets
    ``url`` from uvicorn's or Ray Serve's startup line; ``stop()`` sends SIGTERM, waits,
    and kills whatever of the session is left (``leftovers`` lists it)."""

    def __init__(self, *args: str, command: list[str] | None = None, env: dict[str, str] | None = None,
                 ready: re.Pattern[str] = _URL, count: int = 1, timeout: float = 90.0) -> None:  # fmt: skip
        self.proc = subprocess.Popen(
            command or _command("--port", "0", *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, env=env or _child_env(), start_new_session=True,
        )  # fmt: skip
        self.log: list[str] = []
        self.url = ""
        self.leftovers: list[int] = []
        self._ready, self._count, self._seen = ready, count, 0
        self._found = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        self.timeout = timeout

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            m = _URL.search(line)
            if m and not self.url:
                self.url = m.group(1)
            if self._ready.search(line):
                self._seen += 1
                if self._seen >= self._count:
                    self._found.set()

    @property
    def text(self) -> str:
        return "".join(self.log)

    def wait(self) -> _Proc:
        deadline = time.monotonic() + self.timeout
        while not self._found.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("rerank-rag serve did not start:\n" + self.text[-5000:])
        return self

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM, wait (then SIGKILL); kill what is left of the session. The exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        deadline = time.monotonic() + 5.0  # children exit just after their parent
        while (left := _session(self.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.leftovers = left
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)  # let the pump read the last lines
        return self.proc.returncode

    def drained(self) -> bool:
        """uvicorn's clean SIGTERM: drain, close the app, exit 0 (or re-raise SIGTERM)."""
        return self.stop() in (0, -signal.SIGTERM) and "Application shutdown complete" in self.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readme_curl() -> tuple[str, dict]:
    """The URL and the exact JSON body of the README's curl (so the README cannot drift)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"curl -s (http://127\.0\.0\.1:8000\S+) .*?-d '(\{.*?\})'", text, re.DOTALL)
    assert m, "the README's serve section lost its curl example"
    return m.group(1), json.loads(m.group(2))


def _fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A VENV for scripts/serve.sh whose ``python -m pip`` only records its arguments
    (nothing is installed) and whose ``rerank-rag`` is this checkout's CLI."""
    venv, pip_log = tmp_path / "venv", tmp_path / "pip.log"
    (venv / "bin").mkdir(parents=True)
    wrappers = {
        "python": f'if [ "$1 $2" = "-m pip" ]; then echo "$@" >> "{pip_log}"; exit 0; fi\n'
                  f'exec "{sys.executable}" "$@"\n',
        "rerank-rag": f'exec "{sys.executable}" -m rerank_rag "$@"\n',
    }  # fmt: skip
    for name, body in wrappers.items():
        path = venv / "bin" / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return venv, pip_log


def test_serve_script_answers_the_readme_curl_on_the_offline_default(tmp_path):
    """What the README tells a user to run, from a fresh clone: scripts/serve.sh sets up the
    `serve` profile (the serve extra; no torch, no compiler) and runs `rerank-rag serve`,
    which answers the README's curl body on the offline default, bound to loopback."""
    script = REPO / "scripts" / "serve.sh"
    assert "bash scripts/serve.sh" in (REPO / "README.md").read_text(encoding="utf-8")
    subprocess.run(["bash", "-n", str(script)], capture_output=True, check=True, timeout=30)  # valid bash
    venv, pip_log = _fake_venv(tmp_path)
    url, body = _readme_curl()
    env = _child_env(VENV=str(venv), SETUP_PROFILE="dev")  # the script picks its own profile
    proc = _Proc(command=["bash", str(script), "--port", "0"], env=env)
    try:
        proc.wait()
        installs = pip_log.read_text().splitlines()
        assert installs == ["-m pip install -q -e .[serve]"], installs  # the serve profile, nothing heavier
        assert proc.url.startswith("http://127.0.0.1:")  # loopback by default
        target = url.replace("http://127.0.0.1:8000", proc.url)
        if shutil.which("curl"):
            cmd = ["curl", "-s", target, "-H", "Content-Type: application/json", "-d", json.dumps(body)]
            out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout)
        else:  # pragma: no cover - curl is on every CI image we use
            out = httpx.post(target, json=body, timeout=60).json()
        assert out["model"] == "minilm"
        assert [r["index"] for r in out["results"]] == [0, 1]
        assert out["results"][0]["relevance_score"] >= 0.5 > out["results"][1]["relevance_score"]
    finally:
        assert proc.drained(), proc.text
    assert not proc.leftovers


def test_workers_serve_concurrent_requests_and_stop_together():
    """--workers 2: two uvicorn worker processes answer concurrent requests; SIGTERM stops
    the supervisor and both workers."""
    _, body = _readme_curl()
    proc = _Proc("--workers", "2", ready=_STARTED, count=2)
    try:
        proc.wait()
        workers = {int(pid) for pid in _WORKER.findall(proc.text)}
        assert len(workers) == 2 and workers <= set(_session(proc.proc.pid)), proc.text
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: httpx.post(f"{proc.url}/v1/rerank", json=body, timeout=60), range(16)))
        assert {r.status_code for r in answers} == {200}
        ranked = {tuple((x["index"], x["relevance_score"]) for x in r.json()["results"]) for r in answers}
        assert len(ranked) == 1 and [i for i, _ in next(iter(ranked))] == [0, 1]  # the same answer from either
        health = httpx.get(f"{proc.url}/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        assert proc.drained(), proc.text
    assert not proc.leftovers and not set(_session(proc.proc.pid)) & workers
    assert proc.text.count("Application shutdown complete") == 2  # each worker drained and closed its app
    assert all(f"Finished server process [{pid}]" in proc.text for pid in workers), proc.text


RAY_CONFIG = """
api_keys_env = ""                  # no authentication, like the plain server below
[pipelines.minilm]
ranker = "minilm"
[pipelines.lexical]
ranker = "bm25"
[ray.autoscaling]
min_replicas = 1
max_replicas = 2
target_ongoing_requests = 4
[ray.ray_actor_options]
num_cpus = 0.5
"""
QUERY = "Which volcano in Sicily erupts most often?"
DOCS = [
    "The stock market closed higher on Tuesday after the bank report.",
    "Mount Etna is an active volcano on the east coast of Sicily that erupts often.",
    "Knitting patterns for a wool scarf with a cable stitch.",
    "Stromboli, a volcano north of Sicily, has erupted almost continuously for centuries.",
]
RAY_REQUESTS = [
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "return_documents": True}),
    ("/v2/rerank", {"model": "lexical", "query": QUERY, "documents": DOCS, "top_n": 2}),
    ("/rerank", {"query": QUERY, "texts": DOCS, "raw_scores": True}),
    ("/rerank", {"model": "nope", "query": QUERY, "documents": DOCS}),
]


def _answers(base: str) -> list[tuple[int, object]]:
    out = []
    for path, body in RAY_REQUESTS:
        r = httpx.post(base + path, json=body, timeout=60)
        data = r.json()
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "id"}  # a fresh id per response
        out.append((r.status_code, data))
    return out


@pytest.mark.timeout(240)
def test_serve_ray_gives_the_plain_servers_answers_and_stops_ray(tmp_path):
    """`rerank-rag serve --ray` with a config file (autoscaling 1-2 replicas of half a CPU)
    on a local Ray instance: the plain server's answers; SIGTERM stops Ray with it."""
    pytest.importorskip("ray.serve", reason="needs the ray extra")
    cfg = tmp_path / "serve.toml"
    cfg.write_text(RAY_CONFIG)
    port = _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="rr-", dir="/tmp")  # short: Ray's socket paths; not /tmp/ray
    command = _command("--ray", "--config", str(cfg), "--port", str(port))
    proc = _Proc(command=command, env=_child_env(RAY_TMPDIR=ray_tmp), timeout=180)
    try:
        with BackgroundServer(load_config(cfg)) as plain:  # while Ray starts
            expected = _answers(plain.url)
        proc.wait()
        assert proc.url == f"http://127.0.0.1:{port}" and "autoscaling, 1 to 2 replicas" in proc.text
        got = _answers(proc.url)
        assert [c for c, _ in got] == [200, 200, 200, 404]
        assert got == expected
        health = httpx.get(f"{proc.url}/health", timeout=30).json()
        assert health["status"] == "ok" and health["models"] == ["minilm", "lexical"]
    finally:
        status = proc.stop(timeout=60)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert status == 0, proc.text[-5000:]
    assert not proc.leftovers, f"Ray processes outlived rerank-rag serve --ray: {proc.leftovers}"


def test_sigterm_drains_the_request_in_flight(tmp_path):
    seen = threading.Event()

    def slow(body):
        seen.set()
        return Reply(text="[2] > [1]", delay=1.5)

    with ChatServer(slow, model="slow") as llm:
        cfg = tmp_path / "serve.yaml"
        cfg.write_text(
            "pipelines:\n  slow:\n    ranker: listwise\n    options: {mode: single}\n"
            f"    llm: {{base_url: '{llm.base_url}', model: slow, max_retries: 0}}\n"
        )
        proc = _Proc("--config", str(cfg)).wait()
        result: dict = {}

        def call() -> None:
            try:
                r = httpx.post(f"{proc.url}/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=30)
                result["status"], result["body"] = r.status_code, r.json()
            except Exception as exc:  # noqa: BLE001
                result["error"] = exc

        t = threading.Thread(target=call)
        try:
            t.start()
            assert seen.wait(30), proc.text
            t0 = time.monotonic()
            proc.proc.send_signal(signal.SIGTERM)
            t.join(30)
            clean = proc.drained()
        finally:
            proc.stop()
        assert result.get("status") == 200, (result, proc.text)
        assert [r["index"] for r in result["body"]["results"]] == [1, 0]
        assert clean, proc.text
        assert time.monotonic() - t0 < 20
        with pytest.raises(httpx.TransportError):  # no longer accepting
            httpx.get(f"{proc.url}/health", timeout=2)


def test_config_files_and_flags(tmp_path, monkeypatch):
    toml = tmp_path / "a.toml"
    toml.write_text(
        'host = "0.0.0.0"\ndefault_model = "lex"\n[limits]\nmax_in_flight = 3\n'
        '[pipelines.lex]\nranker = "bm25"\n'
        '[pipelines.jr]\nranker = "jointrank"\noptions = { block_size = 10 }\n'
        '[pipelines.jr.llm]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\napi_key_env = "SOME_KEY_VAR"\n'
    )
    cfg = load_config(toml)
    assert cfg.host == "0.0.0.0" and cfg.limits.max_in_flight == 3 and cfg.default_model == "lex"
    assert cfg.pipelines["jr"].llm.api_key_env == "SOME_KEY_VAR"
    monkeypatch.setenv("SOME_KEY_VAR", "sk-secret-value")
    assert "sk-secret-value" not in json.dumps(cfg.to_dict())  # names of variables, never keys
    # flags on top of the file
    args = _parser().parse_args(["--config", str(toml), "--port", "9100", "--max-documents", "7",
                                 "--pipeline", "yn=llm-pointwise,base_url=http://127.0.0.1:9/v1,model=x,top_logprobs=5"])  # fmt: skip
    cfg2 = build_config(args)
    assert cfg2.port == 9100 and cfg2.limits.max_documents == 7 and cfg2.limits.max_in_flight == 3
    assert cfg2.pipelines["yn"].options == {"top_logprobs": 5} and cfg2.pipelines["yn"].llm.model == "x"
    # uvicorn workers rebuild the same config from the environment
    from rerank_rag.serve._cli import CONFIG_ENV, app_from_env

    monkeypatch.setenv(CONFIG_ENV, json.dumps(cfg2.to_dict()))
    assert app_from_env().state.service.config == cfg2
    # the defaults run offline and bind loopback
    d = default_config()
    assert d.host == "127.0.0.1" and d.default_model == "minilm" and d.pipelines["minilm"].llm is None
    # clear errors
    for text, msg in (
        ('[pipelines.a]\nranker = "bm25"\ncolour = 1\n', "colour"),
        ('[limits]\nmax_documents = 0\n', "max_documents"),
        ('default_model = "zzz"\n[pipelines.a]\nranker = "bm25"\n', "zzz"),
        ('[pipelines.a]\nranker = "jointrank"\n[pipelines.a.llm]\nbase_url = "http://x/v1"\n', "model is required"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_config(bad)
    with pytest.raises(ConfigError, match="NAME=RANKER"):
        parse_pipeline_flag("justaname")
    # a key variable that is unset is named at startup, never a key value
    from rerank_rag.serve._pipelines import Pipeline

    monkeypatch.delenv("SOME_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match="SOME_KEY_VAR"):
        Pipeline(cfg.pipelines["jr"]).start()
    with pytest.raises(ConfigError, match="unknown ranker"):
        Pipeline(parse_pipeline_flag("x=nope"))


def test_cli_reports_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nmax_in_flight = -1\n")
    out = subprocess.run(
        [sys.executable, "-m", "rerank_rag", "serve", "--config", str(bad)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))},
    )  # fmt: skip
    assert out.returncode == 2 and "max_in_flight" in out.stderr


def test_every_bundled_llm_ranker_builds_as_a_pipeline():
    from rerank_rag import FakeLLM
    from rerank_rag.serve import RANKERS

    for name, (needs_llm, build) in RANKERS.items():
        if needs_llm:
            ranker = build({}, FakeLLM(lambda m: "[1]"))
            assert callable(ranker.arank), name
    assert {"jointrank", "listwise", "llm-pointwise", "setwise", "tdpart"} <= set(RANKERS)
