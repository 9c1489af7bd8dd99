"""``rerank-rag serve`` as a process: the README's curl on the offline default, and a
graceful SIGTERM that lets the request in flight finish."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra")
pytest.importorskip("onnxruntime", reason="needs the minilm extra")

from rerank_rag.serve import ConfigError, default_config, load_config, parse_pipeline_flag  # noqa: E402
from rerank_rag.serve._cli import _parser, build_config  # noqa: E402
from rerank_rag.testing import ChatServer, Reply  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_RUNNING = re.compile(r"Uvicorn running on http://([\d.]+):(\d+)")


def _command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "rerank-rag"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "rerank_rag"]
    return [*base, "serve", "--port", "0", *args]


class _Proc:
    """The CLI in a child process; ``url`` once uvicorn reports its port."""

    def __init__(self, *args: str, timeout: float = 90.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        env.pop("RERANK_RAG_API_KEYS", None)
        self.proc = subprocess.Popen(
            _command(*args), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        self.log: list[str] = []
        found = threading.Event()
        self.url = ""

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                m = _RUNNING.search(line)
                if m and not found.is_set():
                    self.url = f"http://{m.group(1)}:{m.group(2)}"
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout):
            self.stop()
            raise AssertionError("rerank-rag serve did not start:\n" + "".join(self.log))

    def stop(self) -> bool:
        """SIGTERM, wait; True when the shutdown was clean (uvicorn drains, closes the
        app, then re-raises the signal, so the exit status is 0 or -SIGTERM)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.1)  # let the pump read the last lines
        log = "".join(self.log)
        return self.proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in log


def _readme_curl() -> tuple[str, dict]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"curl -s (http://127\.0\.0\.1:8000\S+) .*?-d '(\{.*?\})'", text, re.S)
    assert m, "the README's serve section lost its curl example"
    return m.group(1), json.loads(m.group(2))


def test_readme_curl_on_the_offline_default():
    url, body = _readme_curl()
    proc = _Proc()
    try:
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
        assert proc.stop(), "".join(proc.log)
    assert shlex.join(["rerank-rag", "serve"]) in (REPO / "README.md").read_text(encoding="utf-8")


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
        proc = _Proc("--config", str(cfg))
        result: dict = {}

        def call() -> None:
            try:
                r = httpx.post(f"{proc.url}/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=30)
                result["status"], result["body"] = r.status_code, r.json()
            except Exception as exc:  # noqa: BLE001
                result["error"] = exc

        t = threading.Thread(target=call)
        t.start()
        assert seen.wait(30), "".join(proc.log)
        t0 = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        t.join(30)
        clean = proc.stop()
        assert result.get("status") == 200, (result, "".join(proc.log))
        assert [r["index"] for r in result["body"]["results"]] == [1, 0]
        assert clean, "".join(proc.log)
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
