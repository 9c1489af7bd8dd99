"""Faults: with 10% of LLM calls failing (429 with Retry-After, 500, timeouts) every query
still completes within the retry bounds, the rankings equal a fault-free run, and the
usage report accounts for every injected fault as a retry (or a failed call) per query."""

from __future__ import annotations

import json

import pytest

from rerank_rag import JointRanker, ListwiseRanker, LLMPointwiseRanker
from rerank_rag.batch import rerank_to_run
from rerank_rag.eval import FaultConfig, SimulatedLLM
from rerank_rag.llm import OpenAICompatibleLLM, RetryPolicy
from rerank_rag.testing import synthetic_qrels, synthetic_queries

NQ, NC = 12, 12
QRELS, CORPUS, TOPICS = synthetic_qrels(NQ, NC, seed=7, words=12)
FAULTS = FaultConfig(rate_429=0.034, rate_500=0.033, rate_timeout=0.033, retry_after=0.02, timeout_delay=1.0)


@pytest.fixture(scope="module")
def servers():
    faulty = SimulatedLLM(QRELS, corpus=CORPUS, queries=TOPICS, faults=FAULTS, seed=1)
    clean = SimulatedLLM(QRELS, corpus=CORPUS, queries=TOPICS, seed=1)
    with faulty, clean:
        yield faulty, clean


def _client(sim):
    policy = RetryPolicy(max_retries=6, initial_delay=0.01, max_delay=0.05)
    return OpenAICompatibleLLM(sim.model, base_url=sim.base_url, api_key="x", max_concurrency=16, timeout=0.5, retry_policy=policy)


@pytest.mark.parametrize(
    "make",
    [
        lambda llm: JointRanker(llm, block_size=8, replicas=2),
        lambda llm: ListwiseRanker(llm, window_size=8, step=4),
        lambda llm: LLMPointwiseRanker(llm),
    ],
    ids=["jointrank", "sliding", "pointwise"],
)
def test_ten_percent_failing_calls_still_complete_every_query(servers, make, tmp_path):
    faulty, clean = servers
    before = faulty.stats
    queries = list(synthetic_queries(NQ, NC, seed=7, words=12))
    rep = rerank_to_run(make(_client(faulty)), queries, tmp_path / "faulty.trec", max_calls_in_flight=16, progress="off")
    after = faulty.stats
    injected = sum(after["faults"].values()) - sum(before["faults"].values())
    ref = rerank_to_run(make(_client(clean)), queries, tmp_path / "clean.trec", max_calls_in_flight=16, progress="off")

    assert rep["queries"] == NQ and ref["queries"] == NQ
    assert injected > 0
    totals = rep["usage"]["totals"]
    # every attempt the server saw is a call or a retry in the report; on a loaded machine
    # the client may time out on a request still queued in the server's accept backlog, so
    # the server can have seen fewer attempts than were made, never more, and at least one
    # per call that succeeded
    seen = after["requests"] - before["requests"]
    attempts = totals["llm_calls"] + totals["retries"]
    assert totals["llm_calls"] - totals["failed_calls"] <= seen <= attempts
    # ...and every injected fault became a retry (or, after the last attempt, a failed
    # call); a slow answer on a loaded machine may add a client-side timeout retry
    assert totals["retries"] + totals["failed_calls"] >= injected
    assert sum(u["retries"] for u in rep["per_query"].values()) == totals["retries"]
    assert rep["queries_with_retries"] > 0
    report_file = json.loads((tmp_path / "faulty.trec.usage.json").read_text())
    assert report_file["per_query"] == rep["per_query"]
    if totals["failed_calls"] == 0:
        # retries change nothing: the rankings are the fault-free ones
        assert (tmp_path / "faulty.trec").read_text() == (tmp_path / "clean.trec").read_text()
        assert totals["fallbacks"] == 0
