"""DecomposeRetrieveRerank: concurrency, merge, rerank against the original question,
bad input and failures, with FakeLLM and the in-memory BM25 retriever."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rerank_rag import Candidate, FakeLLM, Ranking, Usage
from rerank_rag.decompose import (
    DecomposeRetrieveRerank,
    Decomposer,
    PipelineResult,
    RetrievalError,
    candidate_key,
)
from rerank_rag.retrievers import BM25Retriever

CORPUS = [
    Candidate("The Journal of Psychotherapy Integration is published by the American Psychological Association.", id="jpi"),
    Candidate("G. Stanley Hall was the first president of the American Psychological Association.", id="hall"),
    Candidate("The Journal of Mathematical Physics is published by the American Institute of Physics.", id="jmp"),
    Candidate("Psychotherapy is a treatment for mental health.", id="psy"),
    Candidate("Integration is a concept of calculus.", id="calc"),
    Candidate("The first president of the United States was George Washington.", id="gw"),
    Candidate("An association is a group of people organised for a purpose.", id="assoc"),
    Candidate("Hall effect: a voltage across an electrical conductor.", id="halleffect"),
]
QUESTION = "Who was the first president of the association that published the Journal of Psychotherapy Integration?"
SUBS = [
    "Which association publishes the Journal of Psychotherapy Integration?",
    "Who was the first president of the American Psychological Association?",
]


class OverlapRanker:
    """Test ranker: score = number of shared lower-case words with the query.

    Records the queries it was asked to rank for.
    """

    def __init__(self):
        self.queries: list[str] = []
        self.sizes: list[int] = []

    def _scores(self, query, candidates):
        q = set(query.lower().replace("?", "").split())
        return [float(len(q & set(c.text.lower().rstrip(".").split()))) for c in candidates]

    def rank(self, query, candidates, top_n=None):
        self.queries.append(query)
        self.sizes.append(len(candidates))
        return Ranking.from_scores(self._scores(query, candidates), top_n, Usage(llm_calls=1))

    async def arank(self, query, candidates, top_n=None):
        return self.rank(query, candidates, top_n)


def gold_decomposer(question):
    return SUBS


def make(decomposer=gold_decomposer, **kw):
    ranker = kw.pop("ranker", OverlapRanker())
    return DecomposeRetrieveRerank(BM25Retriever(CORPUS), ranker, decomposer=decomposer, **kw)


def check_result(res: PipelineResult):
    keys = [candidate_key(c) for c in res.candidates]
    assert len(keys) == len(set(keys)), "final list has repeats"
    assert res.scores == sorted(res.scores, reverse=True)
    pool_keys = {p.key for p in res.pool}
    assert set(keys) <= pool_keys


def test_decomposition_finds_the_second_hop_passage():
    base = make(decomposer=None, k=1, top_n=2).run(QUESTION)
    dec = make(k=1, top_n=8).run(QUESTION)
    for r in (base, dec):
        check_result(r)
    assert base.queries == (QUESTION,)
    assert dec.queries == (QUESTION, *SUBS)
    assert "hall" not in {p.candidate.id for p in base.pool}
    assert "hall" in {c.id for c in dec.candidates}
    hall = next(it for it in dec.items if it.candidate.id == "hall")
    assert 2 in {h.query_index for h in hall.hits}  # found by the second sub-question


def test_rerank_uses_the_original_question_and_whole_pool():
    ranker = OverlapRanker()
    res = make(ranker=ranker, k=3, top_n=4).run(QUESTION)
    assert ranker.queries == [QUESTION]
    assert ranker.sizes == [len(res.pool)]
    assert len(res.candidates) == min(4, len(res.pool))
    assert res.usage["rerank"].llm_calls == 1


def test_usage_per_stage_is_filled():
    llm = FakeLLM(lambda m: "\n".join(f"{i + 1}. {s}" for i, s in enumerate(SUBS)))
    res = make(decomposer=Decomposer(llm)).run(QUESTION)
    u = res.usage
    assert u["decompose"].llm_calls == 1 and u["decompose"].wall_time > 0
    assert u["retrieve"].calls == 3 and u["retrieve"].failed_calls == 0
    assert u["retrieve"].unique == len(res.pool) <= u["retrieve"].hits
    assert len(u["retrieve"].per_query_time) == 3
    assert res.wall_time >= u["retrieve"].wall_time
    assert res.llm_usage().llm_calls == 2
    d = res.as_dict()
    assert d["queries"] == [QUESTION, *SUBS] and len(d["results"]) == len(res.candidates)


def test_decomposer_with_fake_llm_is_cached_across_runs():
    llm = FakeLLM(lambda m: f"- {SUBS[0]}\n- {SUBS[1]}")
    pipe = make(decomposer=Decomposer(llm))
    first = pipe.run(QUESTION)
    second = pipe.run(QUESTION)
    assert len(llm.calls) == 1
    assert second.decomposition is not None and second.decomposition.from_cache
    assert [c.id for c in first.candidates] == [c.id for c in second.candidates]


def test_an_llm_backend_is_wrapped_in_a_default_decomposer():
    llm = FakeLLM(lambda m: f"1. {SUBS[0]}\n2. {SUBS[1]}")
    pipe = make(decomposer=llm)
    assert isinstance(pipe.decomposer, Decomposer)
    assert pipe.run(QUESTION).queries == (QUESTION, *SUBS)


def test_subquestions_repeating_the_question_are_dropped():
    res = make(decomposer=lambda q: [q, " " + q.rstrip("?"), SUBS[0], SUBS[0] + " "]).run(QUESTION)
    assert res.queries == (QUESTION, SUBS[0])


class SlowRetriever:
    def __init__(self, delay):
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def __call__(self, query, k):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        return [Candidate(f"{query} passage {i}") for i in range(k)]


FIVE = [f"sub-question number {i}?" for i in range(5)]


def test_sync_retrieval_is_concurrent():
    slow = SlowRetriever(0.4)
    pipe = DecomposeRetrieveRerank(slow, OverlapRanker(), decomposer=lambda q: FIVE, k=3)
    t0 = time.perf_counter()
    res = pipe.run("the original question?")
    wall = time.perf_counter() - t0
    assert len(res.queries) == 6 and slow.max_active == 6
    assert wall < 6 * 0.4 * 0.5, f"retrieval looks sequential: {wall:.2f}s"
    assert res.usage["retrieve"].wall_time < 1.2


def test_async_retrieval_is_concurrent_for_async_and_sync_retrievers():
    async def aslow(query, k):
        await asyncio.sleep(0.4)
        return [Candidate(f"{query} passage {i}") for i in range(k)]

    for retriever in (aslow, SlowRetriever(0.4)):
        pipe = DecomposeRetrieveRerank(retriever, OverlapRanker(), decomposer=lambda q: FIVE, k=3)
        t0 = time.perf_counter()
        res = asyncio.run(pipe.arun("the original question?"))
        wall = time.perf_counter() - t0
        assert len(res.pool) == 18
        assert wall < 6 * 0.4 * 0.5, f"retrieval looks sequential: {wall:.2f}s"


def test_async_matches_sync():
    llm = FakeLLM(lambda m: f"1. {SUBS[0]}\n2. {SUBS[1]}")
    for merge in ("union", "interleave", "rrf"):
        sync = make(decomposer=Decomposer(llm), merge=merge, k=3).run(QUESTION)
        asy = asyncio.run(make(decomposer=Decomposer(llm), merge=merge, k=3).arun(QUESTION))
        assert [c.id for c in sync.candidates] == [c.id for c in asy.candidates]
        assert [p.key for p in sync.pool] == [p.key for p in asy.pool]
        assert sync.scores == asy.scores


def test_rrf_order_is_the_reranker_input_order():
    seen = []

    class Recorder(OverlapRanker):
        def rank(self, query, candidates, top_n=None):
            seen.append([c.id for c in candidates])
            return super().rank(query, candidates, top_n)

    res = make(ranker=Recorder(), merge="rrf", k=4).run(QUESTION)
    assert seen[0] == [p.candidate.id for p in res.pool]
    fused = [p.fused_score for p in res.pool]
    assert fused == sorted(fused, reverse=True)


def test_without_ranker_keeps_the_merged_order():
    res = make(ranker=None, merge="rrf", k=3, top_n=None).run(QUESTION)
    assert [c.id for c in res.candidates] == [p.candidate.id for p in res.pool]
    assert res.scores == [p.fused_score for p in res.pool]


def test_a_scorer_is_accepted_as_ranker():
    class LenScorer:
        def score(self, query, passages):
            return [-float(len(p)) for p in passages]

        async def ascore(self, query, passages):
            return self.score(query, passages)

    res = make(ranker=LenScorer(), k=3, top_n=3).run(QUESTION)
    lengths = [len(c.text) for c in res.candidates]
    assert lengths == sorted(len(p.candidate.text) for p in res.pool)[:3]


# -- bad input and failures -----------------------------------------------------------


def test_empty_question_is_a_clear_error():
    pipe = make()
    with pytest.raises(ValueError, match="non-empty"):
        pipe.run("  ")
    with pytest.raises(ValueError, match="non-empty"):
        asyncio.run(pipe.arun(""))


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="k must be positive"):
        make(k=0)
    with pytest.raises(ValueError, match="merge"):
        make(merge="max")
    with pytest.raises(TypeError, match="rank"):
        make(ranker=object())
    with pytest.raises(TypeError, match="decomposer"):
        make(decomposer=42)
    with pytest.raises(TypeError, match="retriever"):
        DecomposeRetrieveRerank(42, None)


def failing_for(bad_query):
    bm25 = BM25Retriever(CORPUS)

    def retriever(query, k):
        if query == bad_query:
            raise ConnectionError("index shard down")
        return bm25(query, k)

    return retriever


def test_failing_subquery_is_skipped_and_recorded():
    pipe = DecomposeRetrieveRerank(failing_for(SUBS[1]), OverlapRanker(), decomposer=gold_decomposer)
    for res in (pipe.run(QUESTION), asyncio.run(pipe.arun(QUESTION))):
        [skip] = res.skipped_queries
        assert skip.index == 2 and skip.query == SUBS[1]
        assert "ConnectionError" in skip.error and "shard down" in skip.error
        assert res.usage["retrieve"].failed_calls == 1
        assert all(h.query_index != 2 for p in res.pool for h in p.hits)
        assert res.candidates  # the other queries still produced results


def test_failing_subquery_raises_in_strict_mode():
    pipe = DecomposeRetrieveRerank(
        failing_for(SUBS[0]), OverlapRanker(), decomposer=gold_decomposer, strict=True
    )
    with pytest.raises(RetrievalError, match="shard down") as info:
        pipe.run(QUESTION)
    assert isinstance(info.value.__cause__, ConnectionError)
    with pytest.raises(RetrievalError):
        asyncio.run(pipe.arun(QUESTION))


def test_every_query_failing_raises_even_when_not_strict():
    def broken(query, k):
        raise TimeoutError("no index")

    pipe = DecomposeRetrieveRerank(broken, OverlapRanker(), decomposer=gold_decomposer)
    with pytest.raises(RetrievalError, match="every query"):
        pipe.run(QUESTION)


def test_retriever_returning_nothing_gives_an_empty_result():
    ranker = OverlapRanker()
    pipe = DecomposeRetrieveRerank(lambda q, k: [], ranker, decomposer=gold_decomposer)
    res = pipe.run(QUESTION)
    assert res.candidates == [] and res.pool == [] and res.skipped_queries == ()
    assert ranker.queries == []  # no rerank call for an empty pool
    res = asyncio.run(pipe.arun(QUESTION))
    assert res.candidates == []


def test_duplicates_across_subqueries_with_different_scores_appear_once():
    def retriever(query, k):
        # every query returns the same passages with query-dependent scores
        return [Candidate(c.text, id=c.id, score=len(query) / (i + 1)) for i, c in enumerate(CORPUS)][:k]

    res = DecomposeRetrieveRerank(retriever, OverlapRanker(), decomposer=gold_decomposer, top_n=None).run(QUESTION)
    check_result(res)
    assert len(res.pool) == len(CORPUS) == len(res.candidates)
    for p in res.pool:
        assert len(p.hits) == 3
        assert len({h.score for h in p.hits}) == 3


def test_dedup_never_loses_a_gold_candidate():
    # gold passages reachable only through one sub-query each must all reach the pool
    gold = {"jpi", "hall"}
    res = make(k=1, top_n=None, ranker=None).run(QUESTION)
    assert gold <= {p.candidate.id for p in res.pool}
    assert gold <= {c.id for c in res.candidates}


def test_failing_callable_decomposer_degrades_or_raises():
    def bad(q):
        raise RuntimeError("decomposer crashed")

    res = make(decomposer=bad).run(QUESTION)
    assert res.queries == (QUESTION,)
    assert res.usage["decompose"].fallbacks == 1
    assert "crashed" in (res.decomposition.error or "")
    with pytest.raises(RuntimeError, match="crashed"):
        make(decomposer=bad, strict=True).run(QUESTION)


def test_async_callable_decomposer():
    async def adec(q):
        await asyncio.sleep(0)
        return SUBS

    assert make(decomposer=adec).run(QUESTION).queries == (QUESTION, *SUBS)
    assert asyncio.run(make(decomposer=adec).arun(QUESTION)).queries == (QUESTION, *SUBS)


def test_failing_ranker_keeps_merged_order_or_raises_when_strict():
    class Broken:
        def rank(self, query, candidates, top_n=None):
            raise RuntimeError("model OOM")

        async def arank(self, query, candidates, top_n=None):
            raise RuntimeError("model OOM")

    pipe = make(ranker=Broken(), k=3, top_n=3)
    for res in (pipe.run(QUESTION), asyncio.run(pipe.arun(QUESTION))):
        assert "model OOM" in (res.rerank_error or "")
        assert res.usage["rerank"].fallbacks == 1
        assert [c.id for c in res.candidates] == [p.candidate.id for p in res.pool][:3]
    with pytest.raises(RuntimeError, match="OOM"):
        make(ranker=Broken(), strict=True).run(QUESTION)


def test_ranker_returning_repeats_is_caught():
    class Repeats:
        def rank(self, query, candidates, top_n=None):
            return Ranking((0, 0), (1.0, 1.0))

    res = make(ranker=Repeats()).run(QUESTION)
    assert "invalid order" in (res.rerank_error or "")
    check_result(res)


def test_with_the_real_pointwise_ranker_when_available():
    pointwise = pytest.importorskip("rerank_rag.pointwise")
    ranker = pointwise.PointwiseRanker(pointwise.BM25Scorer())
    res = make(ranker=ranker, k=3, top_n=5).run(QUESTION)
    check_result(res)
    assert len(res.candidates) == min(5, len(res.pool))


def test_importing_decompose_and_retrievers_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, rerank_rag.decompose, rerank_rag.retrievers; "
        "heavy = [m for m in ('numpy', 'openai', 'torch', 'pydantic', 'onnxruntime') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sync_run_with_async_retriever_works_inside_a_running_loop():
    bm25 = BM25Retriever(CORPUS)

    async def aretriever(query, k):
        return bm25(query, k)

    pipe = DecomposeRetrieveRerank(aretriever, OverlapRanker())  # single query

    async def main():
        return pipe.run(QUESTION)

    res = asyncio.run(main())
    assert [c.id for c in res.candidates] == [c.id for c in make(decomposer=None).run(QUESTION).candidates]
