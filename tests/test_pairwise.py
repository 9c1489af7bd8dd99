"""PairwiseRanker (PRP): both orders, all pairs in one round, heap and bubble top-k,
logprob scoring (in-process and through a real HTTP server), failures and bad input."""

from __future__ import annotations

import asyncio
import re

import pytest

from rerank_rag import (
    Completion,
    FakeLLM,
    LLMConfigurationError,
    LLMServerError,
    PairwiseRanker,
    ParseError,
    RankingFailedError,
)

STRENGTH = [0.3, 0.9, 0.1, 0.7, 0.5, 0.95, 0.2, 0.6, 0.8, 0.4, 0.05, 0.65]
DOCS = [f"doc {i} about topic" for i in range(len(STRENGTH))]
GOLD = sorted(range(len(STRENGTH)), key=lambda i: -STRENGTH[i])


def shown_pair(messages):
    """The doc numbers shown as [A] and [B]."""
    text = messages[-1]["content"]
    return [int(d) for d in re.findall(r"(?m)^\[[AB]\] doc (\d+)", text)]


def test_allpair_asks_every_ordered_pair_once_in_one_round(relevance_oracle):
    llm = FakeLLM(relevance_oracle(STRENGTH))
    n = 8
    r = PairwiseRanker(llm, method="allpair").rank("q", DOCS[:n])
    pairs = [tuple(shown_pair(m)) for m, _ in llm.calls]
    assert sorted(pairs) == sorted((i, j) for i in range(n) for j in range(n) if i != j)
    assert r.usage.llm_calls == n * (n - 1) == PairwiseRanker.expected_calls(n)
    assert r.usage.depth == 1
    assert list(r.order) == sorted(range(n), key=lambda i: -STRENGTH[i])
    assert r.scores[0] == 1.0  # win rate: won every comparison
    assert r.relevance is not None and r.relevance[0] == 1.0 and r.relevance[-1] == 0.0


def test_allpair_cancels_a_pure_position_bias():
    # a model that always prefers the passage shown first has no opinion at all
    llm = FakeLLM(lambda m: "A")
    r = PairwiseRanker(llm, method="allpair").rank("q", DOCS[:6])
    assert r.order == tuple(range(6))  # every pair tied: first-stage order
    assert len(set(r.scores)) == 1


@pytest.mark.parametrize("aggregator", ["borda", "copeland", "pagerank", "bradley_terry"])
def test_allpair_with_other_aggregators(relevance_oracle, aggregator):
    r = PairwiseRanker(FakeLLM(relevance_oracle(STRENGTH)), method="allpair", aggregator=aggregator).rank("q", DOCS)
    assert list(r.order[:3]) == GOLD[:3]


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
@pytest.mark.parametrize("scoring", ["generation", "logprobs"])
def test_sorting_methods_find_the_top_k(relevance_oracle, method, scoring):
    llm = FakeLLM(relevance_oracle(STRENGTH))
    r = PairwiseRanker(llm, method=method, scoring=scoring, sort_depth=5).rank("q", DOCS)
    assert list(r.order[:5]) == GOLD[:5]
    head = set(r.order[:5])
    assert list(r.order[5:]) == [i for i in range(len(DOCS)) if i not in head]  # first-stage
    assert r.usage.llm_calls == len(llm.calls) and r.usage.llm_calls % 2 == 0
    assert r.usage.depth < r.usage.llm_calls / 2
    if scoring == "logprobs":
        assert all(p.get("top_logprobs") and p.get("max_tokens") == 1 for _, p in llm.calls)


def test_bubblesort_is_prp_sliding_k_with_pipelined_passes(relevance_oracle):
    llm = FakeLLM(relevance_oracle(STRENGTH))
    n, k = len(DOCS), 3
    r = PairwiseRanker(llm, method="bubblesort", sort_depth=k).rank("q", DOCS)
    assert r.usage.llm_calls == 2 * sum(n - 1 - p for p in range(k))
    assert r.usage.depth <= n - 1 + 2 * k


def test_both_orders_must_agree_for_a_swap():
    cands = [DOCS[1], DOCS[0]]  # the model favours doc 0, ranked second by the first stage

    def consistent(messages):
        return "A" if shown_pair(messages)[0] == 0 else "B"

    def only_when_first(messages):  # favours doc 0 only when it is shown first
        return "A"

    ranker = lambda llm: PairwiseRanker(FakeLLM(llm), method="bubblesort", sort_depth=1)  # noqa: E731
    assert ranker(consistent).rank("q", cands).order == (1, 0)
    assert ranker(only_when_first).rank("q", cands).order == (0, 1)


def test_logprob_probabilities_average_over_both_orders():
    # A is strongly preferred in one order, B weakly in the other: the mean decides
    def answer(messages, **params):
        a, b = shown_pair(messages)
        if (a, b) == (1, 0):
            return Completion(text="A", top_logprobs={"A": -0.01, "B": -5.0})
        return Completion(text="B", top_logprobs={"A": -0.9, "B": -0.5})

    r = PairwiseRanker(FakeLLM(answer), method="bubblesort", scoring="logprobs", sort_depth=1).rank("q", DOCS[:2])
    assert r.order == (1, 0)


def test_far_apart_logprobs_give_a_verdict_not_an_overflow():
    # log-probabilities 1,000 nats apart: the probability saturates (exp(1000) overflows)
    def answer(messages, **params):
        a, b = shown_pair(messages)
        better, worse = ("A", "B") if a > b else ("B", "A")
        return Completion(text=better, top_logprobs={better: 0.0, worse: -1000.0})

    for method in ("allpair", "bubblesort"):
        r = PairwiseRanker(FakeLLM(answer), method=method, scoring="logprobs", sort_depth=3).rank("q", DOCS[:4])
        assert r.order == (3, 2, 1, 0) and r.usage.fallbacks == 0, method


def test_logprobs_through_a_real_http_server():
    pytest.importorskip("openai")
    from rerank_rag import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer, Reply

    def handler(body):
        assert body.get("logprobs") is True and body.get("top_logprobs") == 20
        a, b = shown_pair(body["messages"])
        better = "A" if STRENGTH[a] > STRENGTH[b] else "B"
        worse = "B" if better == "A" else "A"
        return Reply(text=better, top_logprobs={better: -0.2, worse: -1.8, " the": -4.0})

    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, max_concurrency=4)
        r = PairwiseRanker(llm, method="allpair", scoring="logprobs").rank("q", DOCS[:5])
        llm.close()
    assert list(r.order) == sorted(range(5), key=lambda i: -STRENGTH[i])
    assert r.usage.failed_calls == 0 and r.usage.prompt_tokens > 0


def test_every_call_failing_gives_the_first_stage_order(caplog):
    def down(messages):
        raise LLMServerError("503", status=503)

    for method in ("allpair", "heapsort", "bubblesort"):
        caplog.clear()
        r = PairwiseRanker(FakeLLM(down), method=method, sort_depth=3).rank("q", DOCS[:7])
        assert r.order == tuple(range(7)), method
        assert r.usage.failed_calls == r.usage.llm_calls == r.usage.fallbacks > 0
        warnings = [rec for rec in caplog.records if rec.name == "rerank_rag.pairwise"]
        assert len(warnings) == 1 and "failed call" in warnings[0].getMessage()  # logged once
        with pytest.raises(RankingFailedError):
            PairwiseRanker(FakeLLM(down), method=method, strict=True).rank("q", DOCS[:3])


def test_configuration_errors_are_raised_never_fallen_back_from():
    def unauthorized(messages):
        raise LLMConfigurationError("401 invalid key", status=401)

    for method in ("allpair", "heapsort", "bubblesort"):
        with pytest.raises(LLMConfigurationError):
            PairwiseRanker(FakeLLM(unauthorized), method=method).rank("q", DOCS[:4])


def test_answers_naming_no_passage_fall_back_or_raise_when_strict():
    r = PairwiseRanker(FakeLLM(lambda m: "I cannot decide."), method="heapsort").rank("q", DOCS[:5])
    assert r.order == tuple(range(5)) and r.usage.fallbacks == r.usage.llm_calls
    r = PairwiseRanker(FakeLLM(lambda m: "Passage Z"), method="allpair").rank("q", DOCS[:4])
    assert r.order == tuple(range(4))
    with pytest.raises(ParseError):
        PairwiseRanker(FakeLLM(lambda m: "neither"), strict=True).rank("q", DOCS[:3])


def test_answer_forms_are_read():
    for text in ("B", "[B]", "Passage B", "Passage B is more relevant.", "<think>A?</think>B", "The answer is B."):
        r = PairwiseRanker(FakeLLM(lambda m, t=text, **p: t), method="bubblesort", sort_depth=1).rank("q", DOCS[:2])
        # "B" always: in both orders the second shown wins -> inconsistent -> no swap
        assert r.order == (0, 1) and r.usage.fallbacks == 0, text


@pytest.mark.parametrize("method", ["allpair", "heapsort", "bubblesort"])
def test_small_inputs(relevance_oracle, method):
    ranker = PairwiseRanker(FakeLLM(relevance_oracle(STRENGTH)), method=method)
    assert ranker.rank("q", []).order == () and ranker.rank("q", []).relevance == ()
    one = ranker.rank("q", ["only"])
    assert one.order == (0,) and one.relevance == (1.0,) and one.usage.llm_calls == 0
    two = ranker.rank("q", [DOCS[0], DOCS[1]])  # doc 1 is stronger
    assert two.order == (1, 0) and two.usage.llm_calls == 2
    assert ranker.rank("q", DOCS, top_n=2).order == tuple(GOLD[:2])


def test_sync_and_async_agree(relevance_oracle):
    for method in ("allpair", "heapsort", "bubblesort"):
        ranker = PairwiseRanker(FakeLLM(relevance_oracle(STRENGTH)), method=method)
        a = ranker.rank("q", DOCS)
        b = asyncio.run(ranker.arank("q", DOCS))
        assert a.order == b.order and a.usage.llm_calls == b.usage.llm_calls and a.usage.depth == b.usage.depth


def test_bad_arguments():
    llm = FakeLLM()
    with pytest.raises(ValueError, match="method"):
        PairwiseRanker(llm, method="quicksort")
    with pytest.raises(ValueError, match="scoring"):
        PairwiseRanker(llm, scoring="vibes")
    with pytest.raises(ValueError, match="sort_depth"):
        PairwiseRanker(llm, sort_depth=0)
    with pytest.raises(ValueError, match="aggregator"):
        PairwiseRanker(llm, aggregator="nope")
    with pytest.raises(TypeError, match="prompt"):
        PairwiseRanker(llm, prompt="rankgpt")  # a name is not a pick-best prompt object
    cfg = PairwiseRanker(llm, method="allpair").to_config()
    assert cfg["type"] == "pairwise" and cfg["method"] == "allpair" and cfg["llm"]["type"] == "fake"
