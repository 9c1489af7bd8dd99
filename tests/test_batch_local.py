"""The local batch engine: the global cap, interleaving, bounded admission, results equal
to ranking each query alone, and the error policy (a permanent error stops the batch)."""

from __future__ import annotations

import asyncio
import sys
import zlib

import pytest

from rerank_rag import (
    Completion,
    FakeLLM,
    JointRanker,
    ListwiseRanker,
    LLMConfigurationError,
    LLMPointwiseRanker,
    LLMServerError,
)
from rerank_rag.batch import BatchError, LocalEngine, arerank_batch, rerank_batch
from rerank_rag.testing import ChatServer, Reply, synthetic_queries


def _answer(messages, **params):
    """Deterministic listwise / yes-no answers from the prompt text (stable across processes)."""
    text = "\n".join(m["content"] for m in messages)
    if params.get("top_logprobs"):
        u = zlib.crc32(text.encode()) % 1000 / 1000
        return Completion(text="Yes", top_logprobs={"Yes": -u, "No": -(1 - u)})
    import re

    ids = sorted(set(re.findall(r"\[(\d+)\]", text)), key=lambda x: (zlib.crc32((x + text[-40:]).encode()), x))
    return " > ".join(f"[{i}]" for i in ids)


class Probe:
    """An async fake LLM that records how many calls run at once."""

    def __init__(self, delay: float = 0.005) -> None:
        self.delay = delay
        self.now = 0
        self.peak = 0
        self.starts: list[str] = []

    async def __call__(self, messages, **params):
        self.now += 1
        self.peak = max(self.peak, self.now)
        self.starts.append(messages[-1]["content"][:40])
        try:
            await asyncio.sleep(self.delay)
            return _answer(messages, **params)
        finally:
            self.now -= 1


QUERIES = list(synthetic_queries(24, 12, seed=3, words=8))


@pytest.mark.parametrize(
    "make",
    [
        lambda llm: ListwiseRanker(llm, window_size=6, step=3),
        lambda llm: JointRanker(llm, block_size=4, replicas=2),
        lambda llm: LLMPointwiseRanker(llm),
    ],
    ids=["sliding", "jointrank", "pointwise"],
)
def test_batch_equals_ranking_each_query_alone_and_never_exceeds_the_cap(make):
    probe = Probe()
    ranker = make(FakeLLM(probe, max_concurrency=100))
    results = rerank_batch(ranker, QUERIES, max_calls_in_flight=5)
    assert [r.qid for r in results] == [q for q, _, _ in QUERIES]
    assert probe.peak == 5  # the cap is reached (the server stays full) and never exceeded
    alone = make(FakeLLM(_answer))
    for r, (qid, query, cands) in zip(results, QUERIES):
        ref = alone.rank(query, cands)
        assert r.ranking.order == ref.order
        assert r.docids == tuple(cands[i].id for i in ref.order)
        assert r.ranking.usage.llm_calls == ref.usage.llm_calls


def test_sliding_windows_of_many_queries_interleave():
    # each query's windows are sequential; with a cap of 8 the engine must keep 8 calls
    # busy by running several queries at once (rank_llm's batched idea)
    probe = Probe(delay=0.01)
    ranker = ListwiseRanker(FakeLLM(probe, max_concurrency=100), window_size=6, step=3)
    rerank_batch(ranker, QUERIES, max_calls_in_flight=8)
    assert probe.peak == 8
    first_query_calls = [i for i, s in enumerate(probe.starts) if "question 0 " in s]
    others_before_q0_done = {s.split(" about")[0] for s in probe.starts[: first_query_calls[-1]]}
    assert len(others_before_q0_done) > 3


def test_queries_are_pulled_only_as_capacity_frees():
    pulled = 0
    done = 0
    gaps = []

    def source():
        nonlocal pulled
        for q in synthetic_queries(300, 12, seed=1, words=6):
            pulled += 1
            gaps.append(pulled - done)
            yield q

    async def main():
        nonlocal done
        ranker = ListwiseRanker(FakeLLM(Probe(0.001), max_concurrency=100), window_size=6, step=3)
        async for _ in arerank_batch(ranker, source(), max_calls_in_flight=4, max_queries_in_flight=100):
            done += 1

    asyncio.run(main())
    assert done == 300
    # a sliding window holds one call at a time: about cap running + cap waiting queries,
    # plus a few between two windows or finished but not yet read (not the 100 the hard
    # bound would allow)
    assert 4 <= max(gaps) <= 3 * 4


def test_the_cap_holds_through_real_http_whatever_the_clients_own_limit():
    from rerank_rag.llm import OpenAICompatibleLLM

    with ChatServer(lambda body: Reply(text="[2] > [1]", delay=0.02)) as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, max_concurrency=64, max_retries=0)
        ranker = JointRanker(llm, block_size=4, replicas=2)
        results = rerank_batch(ranker, QUERIES[:10], max_calls_in_flight=3)
        srv.wait_idle()
        assert srv.peak_concurrency == 3
        assert len(srv.requests) == sum(r.ranking.usage.llm_calls for r in results)


def test_a_permanent_error_stops_the_batch_without_fallback_results():
    calls = 0

    async def handler(messages, **params):
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.002)
        if calls > 30:
            raise LLMConfigurationError("HTTP 401: invalid API key", status=401)
        return _answer(messages, **params)

    ranker = ListwiseRanker(FakeLLM(handler), window_size=6, step=3)
    got = []

    async def main():
        async for r in arerank_batch(ranker, QUERIES, max_calls_in_flight=4):
            got.append(r)

    with pytest.raises(LLMConfigurationError):
        asyncio.run(main())
    assert 0 < len(got) < len(QUERIES)
    assert all(r.ranking.usage.fallbacks == 0 and r.ranking.usage.failed_calls == 0 for r in got)
    assert calls < 30 + 4 * 3  # stopped promptly: no call for the rest of the queries


def test_transient_failures_degrade_and_are_counted_per_query():
    async def handler(messages, **params):
        if "question 2 " in messages[-1]["content"]:
            raise LLMServerError("HTTP 500 (after retries)", attempts=3, status=500)
        return _answer(messages, **params)

    results = rerank_batch(ListwiseRanker(FakeLLM(handler), window_size=6, step=3), QUERIES[:5])
    by_qid = {r.qid: r.ranking.usage for r in results}
    assert by_qid["q2"].fallbacks == 3 and by_qid["q2"].failed_calls == 3 and by_qid["q2"].retries == 6
    assert all(u.fallbacks == 0 for q, u in by_qid.items() if q != "q2")


def test_a_query_that_cannot_be_ranked_names_itself():
    bad = QUERIES[:3] + [("qbad", "   ", ["a", "b"])]
    with pytest.raises(BatchError, match="qbad"):
        rerank_batch(ListwiseRanker(FakeLLM(_answer)), bad)


def test_duplicate_query_ids_are_refused():
    with pytest.raises(BatchError, match="appears twice"):
        rerank_batch(ListwiseRanker(FakeLLM(_answer)), [QUERIES[0], QUERIES[0]])


def test_skip_and_engine_options():
    ranker = ListwiseRanker(FakeLLM(_answer), window_size=6, step=3)
    eng = LocalEngine(ranker, max_calls_in_flight=2, top_n=3)

    async def main():
        return [r async for r in eng.astream(QUERIES[:6], skip={"q1", "q4"})]

    out = asyncio.run(main())
    assert sorted(r.qid for r in out) == ["q0", "q2", "q3", "q5"]
    assert sorted(r.index for r in out) == [0, 2, 3, 5]
    assert all(len(r.ranking.order) == 3 for r in out)
    assert eng.input_qids == {f"q{i}" for i in range(6)}
    with pytest.raises(ValueError):
        LocalEngine(ranker, max_calls_in_flight=0)


def test_import_batch_loads_no_heavy_module():
    import json
    import subprocess

    code = (
        "import sys, json, rerank_rag.batch; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'ray', 'openai', 'numpy', 'pyarrow', 'pandas', 'httpx'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
