"""The opt-in wrappers over any ranker: dynamic cut-off, first-stage fusion and
first-stage evidence in prompts (InsertRank), alone and composed."""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import re

import pytest

from rerank_rag import (
    Candidate,
    DynamicCutoff,
    FakeLLM,
    FirstStageEvidence,
    FirstStageFusion,
    JointRanker,
    ListwiseRanker,
    LLMServerError,
    PairwiseRanker,
    Ranking,
    SetwiseRanker,
    TDPartRanker,
    TourRanker,
    Usage,
)
from rerank_rag._evidence import EvidenceText
from rerank_rag.compose import annotate, fuse
from rerank_rag.eval._methods import FirstStageRanker

STRENGTH = [0.2, 0.9, 0.1, 0.7, 0.95, 0.3, 0.6, 0.05]
DOCS = [f"doc {i} text" for i in range(len(STRENGTH))]


def rel(text):
    return STRENGTH[int(re.search(r"doc (\d+)", text).group(1))]


def relevant_only(messages, **params):
    """A relevant-only answer: the passages with ``rel > 0.5``, best first (or none)."""
    text = messages[-1]["content"]
    shown = re.findall(r"(?m)^\[(\d+)\] (doc \d+ text)", text)
    good = sorted((s for s in shown if rel(s[1]) > 0.5), key=lambda s: -rel(s[1]))
    return " > ".join(f"[{lab}]" for lab, _ in good) or "NO_RELEVANT_SNIPPETS"


class Fixed:
    """A ranker returning a fixed ranking (order, scores, relevance) of every input."""

    judges_relevance = True

    def __init__(self, order, relevance=None, scores=None, usage=None):
        self.order, self.relevance, self.scores, self.usage = order, relevance, scores, usage

    def _make(self, cands, top_n):
        k = len(cands) if top_n is None else min(top_n, len(cands))
        n = len(self.order)
        scores = self.scores or [1.0 - r / n for r in range(n)]
        rel = None if self.relevance is None else tuple(self.relevance[:k])
        return Ranking(tuple(self.order[:k]), tuple(scores[:k]), self.usage or Usage(), rel)

    def rank(self, query, candidates, top_n=None):
        return self._make(list(candidates), top_n)

    async def arank(self, query, candidates, top_n=None):
        return self._make(list(candidates), top_n)


# -- dynamic cut-off ---------------------------------------------------------------------


def test_cutoff_keeps_the_judged_relevant_prefix():
    inner = Fixed([3, 1, 0, 2, 4], relevance=[0.9, 0.7, 0.5, 0.2, 0.0])
    r = DynamicCutoff(inner).rank("q", list("abcde"))
    assert r.order == (3, 1, 0) and r.usage.kept == 3 and r.relevance == (0.9, 0.7, 0.5)
    assert DynamicCutoff(inner, threshold=0.8).rank("q", list("abcde")).order == (3,)


def test_cutoff_floor_ceiling_and_top_n():
    nothing = Fixed([2, 0, 1, 3], relevance=[0.3, 0.2, 0.1, 0.0])
    assert DynamicCutoff(nothing).rank("q", list("abcd")).order == (2,)  # floor 1
    assert DynamicCutoff(nothing, floor=0).rank("q", list("abcd")).order == ()
    assert DynamicCutoff(nothing, floor=3).rank("q", list("abcd")).usage.kept == 3
    everything = Fixed([2, 0, 1, 3], relevance=[1.0, 1.0, 0.9, 0.8])
    assert DynamicCutoff(everything, ceiling=2).rank("q", list("abcd")).order == (2, 0)
    assert DynamicCutoff(everything).rank("q", list("abcd"), top_n=3).usage.kept == 3
    assert DynamicCutoff(nothing, floor=3).rank("q", list("abcd"), top_n=2).usage.kept == 2


def test_cutoff_refuses_rankers_that_do_not_judge_relevance():
    for ranker in (PairwiseRanker(FakeLLM()), SetwiseRanker(FakeLLM()), TourRanker(FakeLLM()), TDPartRanker(FakeLLM())):
        with pytest.raises(ValueError, match="does not judge relevance"):
            DynamicCutoff(ranker)
        DynamicCutoff(ranker, allow_positional=True)
    DynamicCutoff(TDPartRanker(FakeLLM(), prompt="relevant-only"))


def test_cutoff_needs_relevance_values():
    with pytest.raises(ValueError, match="without relevance"):
        DynamicCutoff(Fixed([1, 0, 2])).rank("q", ["a", "b", "c"])
    assert DynamicCutoff(Fixed([0])).rank("q", ["a"]).order == (0,)  # one candidate: nothing to cut
    assert DynamicCutoff(FirstStageRanker()).rank("q", []).order == ()


def test_cutoff_when_every_call_failed_keeps_the_fallback_order(caplog):
    usage = Usage(llm_calls=3, failed_calls=3, fallbacks=3)
    inner = Fixed([0, 1, 2, 3], relevance=[0.0, 0.0, 0.0, 0.0], usage=usage)
    with caplog.at_level(logging.INFO, logger="rerank_rag"):
        r = DynamicCutoff(inner, ceiling=3).rank("q", list("abcd"))
    assert r.order == (0, 1, 2) and r.usage.fallbacks == 4 and r.usage.kept == 3
    # the wrapped ranker reported the failure (its usage counts fallbacks): INFO here
    (rec,) = [rec for rec in caplog.records if "nothing was judged" in rec.getMessage()]
    assert rec.levelno == logging.INFO
    # a wrapped ranker that did not report it: the cut-off warns
    caplog.clear()
    silent = Fixed([0, 1, 2, 3], relevance=[0.0] * 4, usage=Usage(llm_calls=3, failed_calls=3))
    DynamicCutoff(silent, ceiling=3).rank("q", list("abcd"))
    (rec,) = [rec for rec in caplog.records if "nothing was judged" in rec.getMessage()]
    assert rec.levelno == logging.WARNING


def test_cutoff_over_a_real_ranker_that_judges():
    ranker = DynamicCutoff(TDPartRanker(FakeLLM(relevant_only), prompt="relevant-only", block_size=5, sort_depth=2))
    r = ranker.rank("q", DOCS)
    assert set(r.order) == {i for i, s in enumerate(STRENGTH) if s > 0.5} and r.usage.kept == 4
    assert asyncio.run(ranker.arank("q", DOCS)).order == r.order


def test_cutoff_bad_arguments():
    with pytest.raises(ValueError):
        DynamicCutoff(Fixed([0]), threshold=0)
    with pytest.raises(ValueError):
        DynamicCutoff(Fixed([0]), floor=3, ceiling=2)
    with pytest.raises(TypeError):
        DynamicCutoff(object())
    assert DynamicCutoff(Fixed([0]), ceiling=4).to_config()["ceiling"] == 4


# -- fusion ------------------------------------------------------------------------------


def test_fusion_extremes_and_rrf_arithmetic():
    inner = Fixed([3, 2, 1, 0])  # the LLM reverses the first stage
    cands = list("abcd")
    assert FirstStageFusion(inner, weight=1.0).rank("q", cands).order == (3, 2, 1, 0)
    assert FirstStageFusion(inner, weight=0.0).rank("q", cands).order == (0, 1, 2, 3)
    r = FirstStageFusion(inner, weight=0.5, rrf_k=60).rank("q", cands)
    # item 3: llm rank 1, first-stage rank 4; item 1: llm rank 3, first-stage rank 2
    assert r.scores[0] == pytest.approx(0.5 / 61 + 0.5 / 64)
    assert r.order == (3, 0, 2, 1)  # ties keep the LLM order
    assert FirstStageFusion(inner, weight=0.5).rank("q", cands, top_n=2).order == (3, 0)


def test_convex_fusion_uses_first_stage_scores_when_present():
    inner = Fixed([1, 0, 2], scores=[3.0, 2.0, 1.0])
    cands = [Candidate("a", score=10.0), Candidate("b", score=0.0), Candidate("c", score=9.0)]
    r = FirstStageFusion(inner, method="convex", weight=0.5).rank("q", cands)
    # llm norm: 1 -> 1.0, 0 -> 0.5, 2 -> 0.0; first stage norm: a 1.0, b 0.0, c 0.9
    assert r.order == (0, 1, 2) and r.scores == pytest.approx((0.75, 0.5, 0.45))
    by_rank = FirstStageFusion(inner, method="convex", weight=0.5, first_stage="rank").rank("q", cands)
    assert by_rank.order == (1, 0, 2)  # positions 1, 2/3, 1/3 instead of the scores
    with pytest.raises(ValueError, match="candidate 0 has None"):
        FirstStageFusion(inner, method="convex", first_stage="score").rank("q", ["a", "b", "c"])


def test_fusion_carries_relevance_monotone():
    inner = Fixed([3, 2, 1, 0], relevance=[1.0, 1.0, 0.0, 0.0])
    r = FirstStageFusion(inner, weight=0.5).rank("q", list("abcd"))
    assert r.order == (3, 0, 2, 1)
    assert r.relevance == (1.0, 0.5, 0.5, 0.0)  # 0 (irrelevant) moved above 2 (relevant)
    with pytest.raises(ValueError):
        fuse(Ranking((0,), (1.0,)), [Candidate("a"), Candidate("b")])


def test_fusion_over_a_real_ranker_sync_and_async(relevance_oracle):
    ranker = FirstStageFusion(SetwiseRanker(FakeLLM(relevance_oracle(rel)), sort_depth=8), weight=0.7)
    a, b = ranker.rank("q", DOCS, top_n=3), asyncio.run(ranker.arank("q", DOCS, top_n=3))
    assert a.order == b.order and len(a.order) == 3 and a.usage.llm_calls > 0


# -- first-stage evidence (InsertRank) -------------------------------------------------


def test_evidence_text_is_the_plain_text_with_a_note():
    t = EvidenceText("Paris is\nthe capital", "first-stage\nrank: 2 of 9")
    assert t == "Paris is\nthe capital" and hash(t) == hash("Paris is\nthe capital")
    assert t.evidence == "first-stage rank: 2 of 9"
    assert pickle.loads(pickle.dumps(t)).evidence == t.evidence and copy.deepcopy(t).evidence == t.evidence
    cands = annotate([Candidate("x", id="d1", score=1.5, metadata={"k": 1}), Candidate("y", score=0.25)], "both", "BM25")
    assert cands[0].text.evidence == "BM25 rank: 1 of 2, score: 1.5" and cands[0].id == "d1"
    assert cands[1].metadata == {} and cands[0].metadata == {"k": 1}
    with pytest.raises(ValueError, match="candidate 0"):
        annotate([Candidate("x")], "score")


@pytest.mark.parametrize(
    "make",
    [
        lambda llm: ListwiseRanker(llm, window_size=3, step=2),
        lambda llm: ListwiseRanker(llm, prompt="relevant-only", mode="single"),
        lambda llm: ListwiseRanker(llm, prompt="first-token", mode="single"),
        lambda llm: JointRanker(llm, block_size=3, replicas=2),
        lambda llm: PairwiseRanker(llm, method="allpair"),
        lambda llm: SetwiseRanker(llm, block_size=3),
        lambda llm: TourRanker(llm, block_size=3),
        lambda llm: TDPartRanker(llm, block_size=3, sort_depth=1),
    ],
)
def test_every_prompt_shows_the_note_after_the_passage(relevance_oracle, make):
    llm = FakeLLM(relevance_oracle(rel))
    cands = [Candidate(DOCS[i], score=10.0 - i) for i in range(4)]
    plain = make(FakeLLM(relevance_oracle(rel))).rank("q", cands)
    r = FirstStageEvidence(make(llm), show="score", label="BM25").rank("q", cands)
    assert sorted(r.order) == [0, 1, 2, 3]
    assert r.order == plain.order  # this oracle ignores the note: same ranking
    shown = "\n".join(m["content"] for msgs, _ in llm.calls for m in msgs)
    for i in range(4):
        assert f"doc {i} text (BM25 score: {10 - i:.4g})" in shown


def test_evidence_needs_a_prompt_that_renders_it():
    class Scorer:
        def score(self, query, passages):
            return [0.0] * len(passages)

        async def ascore(self, query, passages):
            return [0.0] * len(passages)

    with pytest.raises(TypeError, match="first-stage evidence"):
        FirstStageEvidence(JointRanker(Scorer(), block_size=2))
    with pytest.raises(TypeError):
        FirstStageEvidence(FirstStageRanker())
    with pytest.raises(ValueError):
        FirstStageEvidence(SetwiseRanker(FakeLLM()), show="stars")


def test_evidence_survives_truncation(relevance_oracle):
    llm = FakeLLM(relevance_oracle(lambda t: 0.0))
    long = ["word " * 500 + f"doc {i}" for i in range(3)]
    FirstStageEvidence(SetwiseRanker(llm, block_size=3, max_passage_tokens=20)).rank("q", long)
    content = llm.calls[0][0][0]["content"]
    assert content.count("(first-stage rank: ") == 3 and "doc 0" not in content


def test_all_three_compose():
    llm = FakeLLM(relevant_only)
    inner = TDPartRanker(llm, prompt="relevant-only", block_size=10, sort_depth=2)  # one call
    ranker = DynamicCutoff(FirstStageFusion(FirstStageEvidence(inner), weight=0.8), ceiling=3)
    r = ranker.rank("q", DOCS)
    assert set(r.order) == {1, 3, 4} and r.usage.kept == 3 and r.usage.llm_calls == 1
    assert "(first-stage rank: 1 of 8)" in llm.calls[0][0][0]["content"]
    # the listwise relevant-only prompt fills relevance too: the cut keeps what it listed
    listed = DynamicCutoff(ListwiseRanker(llm, prompt="relevant-only", mode="single")).rank("q", DOCS)
    assert set(listed.order) == {i for i, d in enumerate(DOCS) if rel(d) > 0.5}


def test_wrapper_failures_pass_through():
    def down(messages, **params):
        raise LLMServerError("500")

    r = FirstStageFusion(SetwiseRanker(FakeLLM(down)), weight=0.5).rank("q", DOCS)
    assert r.order == tuple(range(len(DOCS))) and r.usage.failed_calls > 0
