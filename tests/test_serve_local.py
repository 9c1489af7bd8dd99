"""The default config's ``local`` pipeline: the llama.cpp model starts on the first request
that names it (SmolLM2-135M here: plumbing only, it cannot rank) and stops with the
service."""

from __future__ import annotations

import os
import time

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra")

from rerank_rag.serve import BackgroundServer, default_config  # noqa: E402


@pytest.mark.local_llm  # skipped where the local server cannot run (conftest.py)
def test_local_pipeline_starts_on_first_use_and_stops_with_the_service():
    cfg = default_config()
    assert "local" in cfg.pipelines and cfg.default_model == "minilm"
    with BackgroundServer(cfg.with_overrides(api_keys_env=None)) as srv:
        pipeline = srv.service.pipelines["local"]
        assert pipeline.ranker is None  # nothing started yet
        docs = ["Paris is the capital of France.", "Bananas are yellow.", "France is in Europe."]
        r = httpx.post(f"{srv.url}/v1/rerank", json={"model": "local", "query": "capital of France", "documents": docs}, timeout=120)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert sorted(x["index"] for x in results) == [0, 1, 2]
        assert all(0.0 <= x["relevance_score"] <= 1.0 for x in results)
        pid = pipeline._local.pid
        assert pid is not None
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the llama.cpp child outlived the service"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
