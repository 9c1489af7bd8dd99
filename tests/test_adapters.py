"""``rerank_rag.adapters``: the framework-free half the LangChain, LlamaIndex and Haystack
adapters share (their own tests run it inside each framework's pipelines)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rerank_rag import (
    BM25Scorer,
    FakeLLM,
    LLMPointwiseRanker,
    MiniLMScorer,
    PointwiseRanker,
    Ranking,
    Usage,
)
from rerank_rag.adapters import (
    arank,
    as_ranker,
    checked_ranking,
    make_scorer,
    pointwise_ranker,
    wrap_or_build,
)


class LengthScorer:
    """Longer passages score higher."""

    def score(self, query, passages):
        return [float(len(p)) for p in passages]


class RankOnly:
    """A ranker without ``arank``: the passages in reverse; records the calling thread."""

    def __init__(self):
        self.threads = []

    def rank(self, query, candidates, top_n=None):
        self.threads.append(threading.get_ident())
        n = len(candidates)
        return Ranking(tuple(range(n - 1, -1, -1))[:top_n], tuple(float(i) for i in range(n))[:top_n], Usage())


def test_as_ranker_keeps_rankers_wraps_scorers_and_refuses_the_rest():
    ranker = RankOnly()
    assert as_ranker(ranker) is ranker
    wrapped = as_ranker(LengthScorer())
    assert isinstance(wrapped, PointwiseRanker)
    assert wrapped.rank("q", ["ab", "abcd", "a"]).order == (1, 0, 2)
    with pytest.raises(TypeError, match="got str"):
        as_ranker("listwise")


def test_wrap_or_build_generic_wraps_presets_build():
    ranker = RankOnly()
    assert wrap_or_build(ranker, None, generic="Generic", name="Generic") is ranker
    assert isinstance(wrap_or_build(LengthScorer(), None, generic="Generic", name="Sub"), PointwiseRanker)
    assert wrap_or_build(None, lambda: ranker, generic="Generic", name="Preset") is ranker
    with pytest.raises(TypeError, match=r"Generic needs ranker="):
        wrap_or_build(None, None, generic="Generic", name="Generic")
    with pytest.raises(ValueError, match=r"Preset builds its own ranker; .* use Generic\(ranker=...\)"):
        wrap_or_build(ranker, lambda: ranker, generic="Generic", name="Preset")


def test_make_scorer_by_name_or_object():
    assert isinstance(make_scorer(None), MiniLMScorer)  # the default; loads lazily
    assert isinstance(make_scorer("BM25"), BM25Scorer)  # names are case-insensitive
    scorer = LengthScorer()
    assert make_scorer(scorer) is scorer
    with pytest.raises(ValueError, match="unknown scorer 'splade'"):
        make_scorer("splade")
    with pytest.raises(TypeError, match="score"):
        make_scorer(object())


def test_pointwise_ranker_takes_a_scorer_or_an_llm_not_both():
    r = pointwise_ranker("bm25", batch_size=4)
    assert isinstance(r, PointwiseRanker) and isinstance(r.scorer, BM25Scorer) and r.batch_size == 4
    llm = FakeLLM(lambda messages: "Yes")
    assert isinstance(pointwise_ranker(llm=llm, max_passage_tokens=50, strict=True), LLMPointwiseRanker)
    with pytest.raises(ValueError, match="either scorer or llm"):
        pointwise_ranker("bm25", llm)


def test_arank_uses_arank_or_runs_rank_in_a_worker_thread():
    ranker = RankOnly()
    got = asyncio.run(arank(ranker, "q", ["a", "b", "c"], 2))
    assert got.order == (2, 1)
    assert ranker.threads and ranker.threads[0] != threading.get_ident()
    native = PointwiseRanker(LengthScorer())
    assert asyncio.run(arank(native, "q", ["ab", "a", "abc"], None)).order == (2, 0, 1)


def test_checked_ranking_refuses_lost_invented_or_repeated_positions():
    ok = Ranking((1, 0), (1.0, 0.5), Usage())
    assert checked_ranking(ok, 2) is ok
    with pytest.raises(TypeError, match="returned list, expected a Ranking"):
        checked_ranking([1, 0], 2)
    with pytest.raises(ValueError, match=r"invalid order over 2 nodes: \(2, 0\)"):
        checked_ranking(Ranking((2, 0), (1.0, 0.5), Usage()), 2, "nodes")
    with pytest.raises(ValueError, match="invalid order over 3 documents"):
        checked_ranking(Ranking((1, 1), (1.0, 0.5), Usage()), 3)
