"""Faults: the simulator injects each fault type over real HTTP on 127.0.0.1; the
rankers retry within their bounds, return a complete ranking, and report the failures
in ``usage``."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("openai")

from rerank_rag.eval._simulator import FaultConfig, SimulatedLLM  # noqa: E402
from rerank_rag.jointrank import JointRanker  # noqa: E402
from rerank_rag.listwise import ListwiseRanker  # noqa: E402
from rerank_rag.llm import RetryPolicy  # noqa: E402

TRANSPORT = ("429", "500", "timeout", "reset")
ALL = FaultConfig.KINDS
TOPICS = ["glaciers", "volcanoes", "tides", "comets", "deserts", "rivers", "forests", "storms"]

CORPUS = {
    f"d{i}": f"Passage {i} explains {TOPICS[i % 8]} with measurement {i * 131 % 97} and a long "
    f"description of {TOPICS[(i + 3) % 8]} observed in the field during season {i}."
    for i in range(8)
}
GRADES = {f"d{i}": g for i, g in enumerate([0, 1, 3, 0, 2, 0, 3, 1])}
QUERY = "which passages describe the field observations best"
CANDS = [CORPUS[f"d{i}"] for i in range(8)]
TRUE_ORDER = sorted(range(8), key=lambda i: (-GRADES[f"d{i}"], i))


def _sim(faults: FaultConfig) -> SimulatedLLM:
    return SimulatedLLM({"q": GRADES}, corpus=CORPUS, queries={"q": QUERY}, noise=0.0, faults=faults)


def _client(sim: SimulatedLLM, retries: int):
    policy = RetryPolicy(max_retries=retries, initial_delay=0.01, max_delay=0.2, jitter="none")
    return sim.client(retry_policy=policy, timeout=0.4, max_concurrency=4)


def _faults(kind: str, **kw) -> FaultConfig:
    return FaultConfig(**{f"rate_{kind}": 1.0}, retry_after=0.05, timeout_delay=1.2, **kw)


def _complete(ranking) -> None:
    assert sorted(ranking.order) == list(range(8))
    assert all(a >= b for a, b in zip(ranking.scores, ranking.scores[1:]))


@pytest.mark.parametrize("kind", TRANSPORT)
def test_listwise_retries_through_transient_transport_faults(kind):
    with _sim(_faults(kind, max_faults=2)) as sim:
        llm = _client(sim, retries=2)
        r = ListwiseRanker(llm, window_size=4, step=2).rank(QUERY, CANDS)
        llm.close()
        stats = sim.stats
    _complete(r)
    # the faults were absorbed by retries: same answer as without faults
    assert r.order[:2] == tuple(TRUE_ORDER[:2])
    assert r.usage.retries == 2 and r.usage.failed_calls == 0 and r.usage.fallbacks == 0
    assert stats["faults"][kind] == 2 and stats["requests"] == 3 + 2


@pytest.mark.parametrize("kind", TRANSPORT)
def test_listwise_gives_up_within_bounds_and_keeps_a_complete_ranking(kind):
    with _sim(_faults(kind)) as sim:
        llm = _client(sim, retries=1)
        r = ListwiseRanker(llm, window_size=4, step=2).rank(QUERY, CANDS)
        llm.close()
        stats = sim.stats
    _complete(r)
    assert r.order == tuple(range(8))  # every window kept its previous (first-stage) order
    u = r.usage
    assert u.failed_calls == 3 and u.fallbacks == 3 and u.llm_calls == 3 and u.retries == 3
    assert stats["requests"] == 3 * 2  # bounded: (1 + max_retries) attempts per window


@pytest.mark.parametrize("kind", ["empty", "truncated"])
def test_listwise_degrades_on_empty_or_truncated_replies(kind):
    with _sim(_faults(kind)) as sim:
        llm = _client(sim, retries=1)
        r = ListwiseRanker(llm, window_size=4, step=2).rank(QUERY, CANDS)
        llm.close()
    _complete(r)
    u = r.usage
    assert u.failed_calls == 0 and u.llm_calls == 3
    if kind == "empty":
        assert u.fallbacks == 3 and r.order == tuple(range(8))
    else:  # half an answer: the ids it still has are used, the rest appended
        assert u.parse_repairs + u.fallbacks >= 1


@pytest.mark.parametrize("kind", ALL)
def test_jointrank_recovers_from_a_burst_of_each_fault(kind):
    async def go(faults):
        with _sim(faults) as sim:
            llm = _client(sim, retries=2)
            ranker = JointRanker(llm, block_size=4, replicas=2, prompt="rankgpt", seed=0, max_block_retries=2)
            r = await ranker.arank(QUERY, CANDS)
            await llm.aclose()
            return r, sim.stats

    r, stats = asyncio.run(asyncio.wait_for(go(_faults(kind, max_faults=2)), 60))
    _complete(r)
    assert stats["faults"][kind] == 2
    assert r.usage.failed_calls == 0 and r.usage.fallbacks == 0
    if kind in TRANSPORT:
        assert r.usage.retries == 2
        clean, _ = asyncio.run(asyncio.wait_for(go(FaultConfig()), 60))
        assert r.order == clean.order  # same blocks, same answers as without the faults
    elif kind == "empty":  # a 200 naming no id: the block is re-sent in a new round
        assert r.usage.llm_calls == 4 + 2 and r.usage.depth == 2
    else:  # half an answer: its ids are used, the rest counts as omitted
        assert r.usage.parse_repairs == 2 and r.usage.llm_calls == 4
    assert r.order[0] in (2, 6)  # a grade-3 passage first


@pytest.mark.parametrize("kind", ["500", "reset", "empty"])
def test_jointrank_with_every_call_failing_returns_first_stage_order(kind):
    with _sim(_faults(kind)) as sim:
        llm = _client(sim, retries=1)
        r = JointRanker(llm, block_size=4, replicas=2, seed=0, max_block_retries=1).rank(QUERY, CANDS)
        llm.close()
    _complete(r)
    assert r.order == tuple(range(8))
    assert r.usage.fallbacks >= 4
    if kind != "empty":
        assert r.usage.failed_calls >= 4 and r.usage.retries >= 4
