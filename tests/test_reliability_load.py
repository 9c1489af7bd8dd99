"""Load: 200 concurrent async queries through JointRank sharing one client
(``max_concurrency=8``) against the simulator on 127.0.0.1. All complete, no deadlock
(a hard time bound), the server never sees more than 8 requests at once, and the peak
memory (process peak RSS, ``ru_maxrss``; tracemalloc would double the run time) is
printed in the test output."""

from __future__ import annotations

import asyncio
import resource
import time

import pytest

pytest.importorskip("openai")

from rerank_rag.eval._simulator import LatencyModel, SimulatedLLM  # noqa: E402
from rerank_rag.jointrank import JointRanker  # noqa: E402

N_QUERIES = 200
N_CANDS = 10
LIMIT = 8


def _data():
    corpus, qrels, queries = {}, {}, {}
    for q in range(N_QUERIES):
        qid = f"q{q}"
        queries[qid] = f"query number {q} about topic {q % 17}"
        qrels[qid] = {}
        for c in range(N_CANDS):
            docid = f"{qid}-d{c}"
            corpus[docid] = (
                f"Candidate {c} for query {q}: a passage on topic {(q + c) % 17} with "
                f"fact {q * 31 + c * 7} and some more words to make it realistic."
            )
            qrels[qid][docid] = (q + 3 * c) % 4
    return corpus, qrels, queries


def test_200_concurrent_jointrank_queries_under_one_client_limit(capsys):
    corpus, qrels, queries = _data()
    sim = SimulatedLLM(qrels, corpus=corpus, queries=queries, noise=0.3, latency=LatencyModel(per_call=0.002), seed=7)

    async def run_all(llm):
        ranker = JointRanker(llm, block_size=5, replicas=2, seed=0)

        async def one(q: int):
            qid = f"q{q}"
            cands = [corpus[f"{qid}-d{c}"] for c in range(N_CANDS)]
            return await ranker.arank(queries[qid], cands)

        return await asyncio.wait_for(asyncio.gather(*(one(q) for q in range(N_QUERIES))), timeout=120)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with sim:
        llm = sim.client(max_concurrency=LIMIT, timeout=30.0)
        rankings = asyncio.run(run_all(llm))
        llm.close()
        stats = sim.stats
    elapsed = time.perf_counter() - t0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    assert len(rankings) == N_QUERIES
    for r in rankings:
        assert sorted(r.order) == list(range(N_CANDS))
        assert r.usage.failed_calls == 0 and r.usage.fallbacks == 0 and r.usage.depth == 1
    blocks = sum(r.usage.llm_calls for r in rankings)
    assert blocks == stats["requests"] == stats["answered"] >= N_QUERIES * 4
    assert 1 <= stats["peak_concurrency"] <= LIMIT
    with capsys.disabled():
        print(
            f"\n[load] {N_QUERIES} concurrent JointRank queries, {blocks} LLM calls in {elapsed:.1f} s; "
            f"server peak concurrency {stats['peak_concurrency']} (limit {LIMIT}); "
            f"process peak RSS {rss_after / 1024:.0f} MiB (was {rss_before / 1024:.0f} MiB before)"
        )
