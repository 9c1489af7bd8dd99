"""A short load test: a burst far above the in-flight cap, against a JointRank pipeline
over the LLM simulator at 300 ms per call. Every request gets 200 or 429 (with
Retry-After), none hangs, no 5xx, memory stays bounded, and the service recovers.

(The 500-request run and the overhead numbers live in ``benchmarks/bench_serve.py``.)
"""

from __future__ import annotations

import asyncio
import resource

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra")

from rerank_rag.eval._simulator import LatencyModel, SimulatedLLM  # noqa: E402
from rerank_rag.serve import BackgroundServer, Limits, LLMSpec, PipelineSpec, ServeConfig  # noqa: E402

DOCS = [f"passage {i} about {'volcanoes and lava' if i % 3 == 0 else 'gardens and hedges'} number {i}" for i in range(8)]


def _grade(query: str, passage: str) -> float:
    return 2.0 if "volcano" in passage else 0.0


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def test_burst_above_the_in_flight_cap():
    with SimulatedLLM(_grade, latency=LatencyModel(per_call=0.3), noise=0.0, seed=1) as sim:
        cfg = ServeConfig(
            pipelines={
                "jr": PipelineSpec(
                    "jr", "jointrank", {"block_size": 4, "replicas": 2},
                    LLMSpec(base_url=sim.base_url, model=sim.model, max_concurrency=16, max_retries=0),
                )
            },
            limits=Limits(max_in_flight=6, request_timeout=20.0),
            api_keys_env=None,
        )  # fmt: skip
        with BackgroundServer(cfg) as srv:

            async def burst(n: int) -> list[httpx.Response]:
                limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
                async with httpx.AsyncClient(base_url=srv.url, limits=limits, timeout=30) as c:
                    body = {"query": "volcano facts", "documents": DOCS}
                    return await asyncio.gather(*(c.post("/rerank", json=body) for _ in range(n)))

            before = _rss_mb()
            responses = asyncio.run(asyncio.wait_for(burst(60), 60))  # none hangs
            grew = _rss_mb() - before
            codes = [r.status_code for r in responses]
            assert set(codes) <= {200, 429}, codes
            assert codes.count(200) >= 6 and codes.count(429) >= 1
            for r in responses:
                if r.status_code == 429:
                    assert r.headers["retry-after"] == "1" and "limit 6" in r.json()["message"]
                else:
                    top = r.json()["results"]
                    assert {x["index"] for x in top if x["relevance_score"] >= 0.5} == {0, 3, 6}
            assert grew < 150, f"RSS grew by {grew:.0f} MB"
            assert srv.service.in_flight.count == 0
            after = httpx.post(f"{srv.url}/rerank", json={"query": "volcano", "documents": DOCS}, timeout=30)
            assert after.status_code == 200
            assert 'rerank_rag_rejected_total{reason="overloaded"}' in httpx.get(f"{srv.url}/metrics").text
