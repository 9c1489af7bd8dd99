"""The Ray engine's stages and driver logic, run in-process (no Ray start-up): block rows
answered by the LLM stage and aggregated by the ranker's own code give the local
ranking; a JointRank block without a usable answer is re-sent live from the driver; permanent
errors stop the batch and stop the actor from calling."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow comes with rerank-rag[ray]")

from rerank_rag import (  # noqa: E402
    Completion,
    FakeLLM,
    JointRanker,
    ListwiseRanker,
    LLMConfigurationError,
    LLMPointwiseRanker,
)
from rerank_rag.batch import BatchError, RayEngine  # noqa: E402
from rerank_rag.batch._backend import CappedLLM, outcome_from_json  # noqa: E402
from rerank_rag.batch._stages import LLMStage, QueryStage, expand_rows, is_one_round  # noqa: E402
from rerank_rag.batch._types import as_batch_query  # noqa: E402
from rerank_rag.testing import synthetic_queries  # noqa: E402

QUERIES = [as_batch_query(q) for q in synthetic_queries(4, 10, seed=9, words=8)]


def _answer(messages, **params):
    import re

    text = "\n".join(m["content"] for m in messages)
    if params.get("top_logprobs"):
        u = zlib.crc32(text.encode()) % 1000 / 1000
        return Completion(text="Yes", top_logprobs={"Yes": -u, "No": -(1 - u)})
    ids = sorted(set(re.findall(r"\[(\d+)\]", text)), key=lambda x: (zlib.crc32((x + text[-40:]).encode()), x))
    return " > ".join(f"[{i}]" for i in ids)


def _query_table(qs):
    from rerank_rag.batch._stages import _cands_json

    return pa.table({"qid": [q.qid for q in qs], "query": [q.query for q in qs], "cands": [_cands_json(q) for q in qs]})


def _through_stages(ranker, llm_for_stage):
    """expand -> LLM stage -> rows grouped by query (what the driver receives)."""
    rows = expand_rows(_query_table(QUERIES), ranker)
    out = asyncio.run(LLMStage(llm_for_stage, cap=4)(rows)).to_pylist()
    grouped: dict[str, dict[str, list]] = {}
    for r in out:
        grouped.setdefault(r["qid"], {}).setdefault(r["key"], []).append(outcome_from_json(json.loads(r["out"])))
    return out, grouped


@pytest.mark.parametrize(
    "make",
    [lambda llm: JointRanker(llm, block_size=4, replicas=2), lambda llm: LLMPointwiseRanker(llm)],
    ids=["jointrank", "pointwise"],
)
def test_block_rows_aggregated_by_the_ranker_equal_the_local_ranking(make):
    ranker = make(FakeLLM(_answer))
    assert is_one_round(ranker)
    rows, grouped = _through_stages(ranker, FakeLLM(_answer))
    per_query = {q.qid: sum(1 for r in rows if r["qid"] == q.qid) for q in QUERIES}
    engine = RayEngine(ranker)
    for i, q in enumerate(QUERIES):
        ref = ranker.rank(q.query, list(q.candidates))
        assert per_query[q.qid] == ref.usage.llm_calls  # one row per first-round request
        res = asyncio.run(engine._aggregate(i, q, grouped[q.qid], live=None))
        assert res.ranking.order == ref.order and res.ranking.scores == ref.scores
        assert res.ranking.usage.llm_calls == ref.usage.llm_calls
        assert res.ranking.usage.prompt_tokens == ref.usage.prompt_tokens


def test_a_block_without_a_usable_answer_is_resent_live_from_the_driver():
    ranker = JointRanker(FakeLLM(_answer), block_size=4, replicas=2)
    seen = {"n": 0}

    def garbled_once(messages, **params):  # the stage's first answer names no id
        seen["n"] += 1
        return "I cannot rank these." if seen["n"] == 1 else _answer(messages, **params)

    _, grouped = _through_stages(ranker, FakeLLM(garbled_once))
    live_llm = FakeLLM(_answer)

    async def go():
        live = CappedLLM(live_llm, 2)
        results = [await RayEngine(ranker)._aggregate(i, q, grouped[q.qid], live=live) for i, q in enumerate(QUERIES)]
        return results, live.calls

    results, live_calls = asyncio.run(go())
    assert live_calls == 1 and len(live_llm.calls) == 1  # the reshuffled block, sent by the driver
    resent = [r for r in results if r.ranking.usage.resends]
    assert len(resent) == 1 and resent[0].ranking.usage.fallbacks == 0
    assert resent[0].ranking.usage.llm_calls == ranker.rank(QUERIES[0].query, list(QUERIES[0].candidates)).usage.llm_calls + 1


def test_a_permanent_error_stops_the_llm_stage_and_the_driver():
    calls = {"n": 0}

    async def refuse(messages, **params):
        calls["n"] += 1
        await asyncio.sleep(0.01)
        raise LLMConfigurationError("HTTP 401: invalid API key", status=401)

    ranker = JointRanker(FakeLLM(_answer), block_size=4, replicas=2)
    rows = expand_rows(_query_table(QUERIES), ranker)
    stage = LLMStage(FakeLLM(refuse), cap=1)
    out = asyncio.run(stage(rows)).to_pylist()
    assert calls["n"] == 1  # the calls queued behind the first one are never made
    assert all(json.loads(r["out"])["error"] == "LLMConfigurationError" for r in out)
    assert all(json.loads(r["out"])["transient"] is False for r in out)
    engine = RayEngine(ranker)
    pending = {q.qid: (i, q) for i, q in enumerate(QUERIES)}

    async def absorb():
        engine._absorb_block_row(out[0], {}, pending, {}, lambda t: None, None)

    with pytest.raises(LLMConfigurationError, match="invalid API key"):
        asyncio.run(absorb())


def test_query_stage_reports_rankings_and_errors_per_query():
    ranker = ListwiseRanker(FakeLLM(_answer), window_size=4, step=2)
    assert not is_one_round(ranker)
    out = asyncio.run(QueryStage(ranker, cap=3, top_n=None)(_query_table(QUERIES))).to_pylist()
    engine = RayEngine(ranker)
    pending = {q.qid: (i, q) for i, q in enumerate(QUERIES)}
    for row, q in zip(out, QUERIES):
        assert row["error"] == ""
        res = engine._query_row(row, pending)
        assert res.ranking.order == ranker.rank(q.query, list(q.candidates)).order
    assert not pending

    def refuse(messages, **params):
        raise LLMConfigurationError("HTTP 403: forbidden", status=403)

    bad = asyncio.run(QueryStage(ListwiseRanker(FakeLLM(refuse)), cap=3, top_n=None)(_query_table(QUERIES[:1]))).to_pylist()
    with pytest.raises(LLMConfigurationError, match="forbidden"):
        engine._query_row(bad[0], {q.qid: (0, q) for q in QUERIES[:1]})
    broken = dict(bad[0], error=json.dumps({"error": "BatchError", "message": "ValueError: boom", "transient": True}))
    with pytest.raises(BatchError, match="q0.*boom"):
        engine._query_row(broken, {q.qid: (0, q) for q in QUERIES[:1]})


def test_blocks_need_a_deterministic_plan():
    from rerank_rag.batch import rerank_batch

    ranker = JointRanker(FakeLLM(_answer), block_size=4, replicas=2, seed=None)
    with pytest.raises(BatchError, match="fixed seed"):
        rerank_batch(ranker, QUERIES, engine="ray", num_actors=1)
    with pytest.raises(ValueError, match="one-round"):
        RayEngine(ListwiseRanker(FakeLLM(_answer)), split="blocks")
