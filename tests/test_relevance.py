"""``Ranking.relevance``: a threshold at 0.5 keeps what the ranker judged relevant.

The rankers run for real over a judging FakeLLM (the relevant-only prompt lists the
passages that mention the topic word) and over the real MiniLM model; the mapping
functions are checked for the contract (values in [0, 1], non-increasing, one per
entry of the order) on generated input.
"""

from __future__ import annotations

import asyncio
import math
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_rag import Completion, FakeLLM, LLMConnectionError, Ranking
from rerank_rag._relevance import (
    COSINE_MIDPOINT,
    from_cosine,
    from_log_odds,
    judged,
    judges_relevance,
    positional,
    scorer_relevance,
)
from rerank_rag.jointrank import JointRanker
from rerank_rag.listwise import ListwiseRanker, RankGPTPrompt, RelevantOnlyPrompt
from rerank_rag.pointwise import BM25Scorer, LLMPointwiseRanker, PointwiseRanker

_LINE = re.compile(r"(?m)^\[(\d+)\] (.*)$")
TOPIC = "volcano"


def _relevant_only_judge(messages) -> str:
    """Lists the snippets that mention TOPIC, the longer mention first."""
    text = messages[-1]["content"]
    hits = [(int(i), t) for i, t in _LINE.findall(text) if TOPIC in t]
    hits.sort(key=lambda h: (-h[1].count(TOPIC), h[0]))
    return " > ".join(f"[{i}]" for i, _ in hits) or "NO_RELEVANT_SNIPPETS"


def _yes_no_judge(messages, **params) -> Completion:
    passage = messages[-1]["content"].split("Passage:", 1)[1]
    strength = passage.count(TOPIC)
    lp_yes = -0.1 if strength else -3.0
    lp_no = -3.0 + strength if strength else -0.1
    return Completion(text="Yes" if strength else "No", top_logprobs={"Yes": lp_yes, "No": lp_no})


def _corpus(n: int, relevant: set[int]) -> list[str]:
    rng = random.Random(n)
    out = []
    for i in range(n):
        filler = " ".join(rng.choice(["river", "stone", "market", "cloud", "paper"]) for _ in range(8))
        out.append(f"passage {i} {filler}" + (f" {TOPIC}" * (1 + i % 3) if i in relevant else ""))
    return out


def _check_contract(r: Ranking) -> None:
    assert r.relevance is not None
    assert len(r.relevance) == len(r.order)
    assert all(0.0 <= v <= 1.0 for v in r.relevance)
    assert all(a >= b for a, b in zip(r.relevance, r.relevance[1:]))


def _kept(r: Ranking, threshold: float = 0.5) -> set[int]:
    assert r.relevance is not None
    return {i for i, v in zip(r.order, r.relevance) if v >= threshold}


# -- mapping functions ------------------------------------------------------------------


def test_judged_prefix_is_exact():
    rel = judged([4, 2, 0, 1, 3], {4, 2})
    assert [v >= 0.5 for v in rel] == [True, True, False, False, False]
    assert rel[0] == 1.0 and 0 < rel[-1] < 0.5


def test_judged_out_of_order_evidence_cuts_where_fewest_judgments_disagree():
    # relevant at ranks 0, 1, 2 and 7: the cut after rank 2 contradicts one judgment,
    # the cut after rank 7 five
    order = list(range(10))
    rel = judged(order, {0, 1, 2, 7})
    assert sum(v >= 0.5 for v in rel) == 3


def test_judged_nothing_relevant_and_everything_relevant():
    assert all(v < 0.5 for v in judged([0, 1, 2], set()))
    assert all(v >= 0.5 for v in judged([2, 1, 0], {0, 1, 2}))
    assert judged([], set()) == []


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_judged_contract_on_generated_input(data):
    n = data.draw(st.integers(0, 40))
    order = data.draw(st.permutations(list(range(n))))
    relevant = data.draw(st.sets(st.integers(0, max(0, n - 1)), max_size=n)) if n else set()
    rel = judged(order, relevant)
    assert len(rel) == n
    assert all(0.0 <= v <= 1.0 for v in rel)
    assert all(a >= b for a, b in zip(rel, rel[1:]))
    # when the judged-relevant candidates lead the order, exactly they pass 0.5
    k = len(relevant)
    if set(order[:k]) == relevant:
        assert {i for i, v in zip(order, rel) if v >= 0.5} == relevant


def test_log_odds_cosine_and_positional_maps():
    assert from_log_odds([2.0, 0.0, -2.0, None]) == pytest.approx(
        [1 / (1 + math.exp(-2)), 0.5, 1 / (1 + math.exp(2)), 0.0]
    )
    cos = from_cosine([0.9, COSINE_MIDPOINT, 0.0, float("nan")])
    assert cos[0] > 0.95 and cos[1] == pytest.approx(0.5) and cos[2] < 0.05 and cos[3] == 0.0
    assert positional(4) == [1.0, 0.75, 0.5, 0.25]


def test_judges_relevance_reads_the_prompt_contract():
    assert judges_relevance(RelevantOnlyPrompt())
    assert not judges_relevance(RankGPTPrompt())

    class Custom:
        judges_relevance = True

    assert judges_relevance(Custom())


def test_scorer_may_bring_its_own_calibration():
    class Calibrated:
        def score(self, query, passages):
            return [float(len(p)) for p in passages]

        async def ascore(self, query, passages):
            return self.score(query, passages)

        def relevance(self, scores):
            return [min(1.0, s / 10) for s in scores]

    r = PointwiseRanker(Calibrated()).rank("q", ["a" * 3, "a" * 12, "a" * 6])
    assert r.order == (1, 2, 0)
    assert r.relevance == pytest.approx((1.0, 0.6, 0.3))
    assert scorer_relevance(object(), [3.0, 2.0]) == [1.0, 0.5]


# -- rankers: a threshold keeps what the ranker judged relevant ------------------------------


@pytest.mark.parametrize("mode", ["single", "sliding"])
def test_listwise_relevant_only_threshold_keeps_the_listed(mode):
    relevant = {3, 11, 17, 24}
    docs = _corpus(30, relevant)
    ranker = ListwiseRanker(
        FakeLLM(_relevant_only_judge), prompt="relevant-only", mode=mode, window_size=10, step=5
    )
    r = ranker.rank(f"what about the {TOPIC}?", docs)
    _check_contract(r)
    assert _kept(r) == relevant
    # top_n cuts relevance with the order
    top = ranker.rank(f"what about the {TOPIC}?", docs, top_n=2)
    assert top.relevance == r.relevance[:2]


def test_listwise_rankgpt_relevance_is_positional():
    docs = _corpus(6, {1})
    ranker = ListwiseRanker(FakeLLM(lambda m: "[2] > [1] > [3] > [4] > [5] > [6]"), mode="single")
    r = ranker.rank("q", docs)
    assert r.relevance == pytest.approx(tuple(positional(6)))


def test_listwise_failed_window_judges_nothing():
    def broken(messages):
        raise LLMConnectionError("down")

    r = ListwiseRanker(FakeLLM(broken), prompt="relevant-only", mode="single").rank("q", ["a", "b", "c"])
    _check_contract(r)
    assert _kept(r) == set() and r.usage.fallbacks == 1


def test_jointrank_relevant_only_threshold_keeps_the_listed_sync_and_async():
    relevant = {0, 7, 19, 33, 41, 58}
    docs = _corpus(60, relevant)
    ranker = JointRanker(FakeLLM(_relevant_only_judge), block_size=10, replicas=3)
    r = ranker.rank(f"{TOPIC} facts", docs)
    _check_contract(r)
    assert _kept(r) == relevant
    ra = asyncio.run(ranker.arank(f"{TOPIC} facts", docs))
    assert ra.relevance == r.relevance and ra.order == r.order


def test_jointrank_majority_vote_over_blocks():
    # candidate 5 is listed in only one of its blocks: not a majority -> below 0.5
    relevant = {1, 2}
    docs = _corpus(24, relevant | {5})
    seen_5 = {"n": 0}

    def flaky_judge(messages):
        text = messages[-1]["content"]
        hits = []
        for i, t in _LINE.findall(text):
            if TOPIC in t:
                if t.startswith("passage 5 "):
                    seen_5["n"] += 1
                    if seen_5["n"] > 1:
                        continue
                hits.append(int(i))
        return " > ".join(f"[{i}]" for i in hits) or "NO_RELEVANT_SNIPPETS"

    ranker = JointRanker(FakeLLM(flaky_judge), block_size=8, replicas=3)
    r = ranker.rank(TOPIC, docs)
    _check_contract(r)
    assert seen_5["n"] == 3
    assert _kept(r) == relevant


def test_jointrank_with_a_scorer_is_positional():
    r = JointRanker(BM25Scorer(), block_size=4, replicas=2).rank(TOPIC, _corpus(8, {2}))
    assert r.relevance == pytest.approx(tuple(positional(8)))


def test_llm_yes_no_relevance_is_p_yes():
    relevant = {1, 4}
    docs = _corpus(6, relevant)
    r = LLMPointwiseRanker(FakeLLM(_yes_no_judge)).rank(TOPIC, docs)
    _check_contract(r)
    assert _kept(r) == relevant
    by_index = dict(zip(r.order, r.relevance))
    assert by_index[0] == pytest.approx(1 / (1 + math.exp(-(-3.0 - -0.1))))


def test_llm_yes_no_failed_call_scores_zero():
    def half_broken(messages, **params):
        if "passage 2 " in messages[-1]["content"]:
            raise LLMConnectionError("down")
        return _yes_no_judge(messages, **params)

    r = LLMPointwiseRanker(FakeLLM(half_broken)).rank(TOPIC, _corpus(4, {0}))
    _check_contract(r)
    assert r.order[-1] == 2 and r.relevance[-1] == 0.0


def test_bm25_relevance_is_positional():
    r = PointwiseRanker(BM25Scorer()).rank(TOPIC, _corpus(5, {1}))
    assert r.relevance == pytest.approx(tuple(positional(5)))


def test_single_candidate_without_a_model_call_has_no_relevance():
    assert ListwiseRanker(FakeLLM()).rank("q", ["only"]).relevance is None


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("onnxruntime", reason="needs the minilm extra")
    from rerank_rag.pointwise import MiniLMScorer

    return MiniLMScorer()


def test_minilm_cosine_threshold_separates_an_answer_from_unrelated_text(minilm):
    docs = [
        "The stock market closed higher on Tuesday after the bank report.",
        "Mount Etna is an active volcano on the east coast of Sicily; it erupts often.",
        "Knitting patterns for a wool scarf with a cable stitch.",
    ]
    r = PointwiseRanker(minilm).rank("which volcano in Sicily erupts often?", docs)
    _check_contract(r)
    assert _kept(r) == {1}


def test_rankers_say_whether_their_relevance_is_a_judgment():
    from rerank_rag.compose import DynamicCutoff

    llm = FakeLLM(_relevant_only_judge)
    assert ListwiseRanker(llm, prompt="relevant-only").judges_relevance
    assert not ListwiseRanker(llm, prompt="rankgpt").judges_relevance
    assert JointRanker(llm).judges_relevance
    assert not JointRanker(llm, prompt="rankgpt").judges_relevance
    assert not JointRanker(BM25Scorer()).judges_relevance
    assert LLMPointwiseRanker(llm).judges_relevance
    assert not PointwiseRanker(BM25Scorer()).judges_relevance
    # the dynamic cut-off refuses a positional relevance instead of keeping half the list
    with pytest.raises(ValueError, match="does not judge relevance"):
        DynamicCutoff(ListwiseRanker(llm, prompt="rankgpt"))
    docs = _corpus(12, {2, 9})
    kept = DynamicCutoff(JointRanker(llm, block_size=4, replicas=2), floor=0).rank(TOPIC, docs)
    assert set(kept.order) == {2, 9}
