"""LLMPointwiseRanker: yes/no log-odds scores, text fallback, failures, strict mode."""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from rerank_rag import (
    Completion,
    FakeLLM,
    LLMTimeoutError,
    ParseError,
    RankingFailedError,
)
from rerank_rag.pointwise import LLMPointwiseRanker, yes_no_score

QUERY = "What is the capital of Australia?"
PASSAGES = [
    "Sourdough needs a starter.",
    "Canberra is the capital of Australia.",
    "Sydney is the largest city in Australia.",
    "Photosynthesis happens in leaves.",
]


def passage_of(messages) -> str:  # type: ignore[no-untyped-def]
    m = re.search(r"Passage: (.*?)\n\nDoes", messages[-1]["content"], re.S)
    assert m, messages
    return m.group(1)


def logprob_llm(table: dict[str, dict[str, float]], **kw) -> FakeLLM:  # type: ignore[no-untyped-def]
    """A fake that answers with the first-token logprobs given per passage."""

    def handler(messages, **params):  # type: ignore[no-untyped-def]
        lp = table[passage_of(messages)]
        best = max(lp, key=lp.get)
        return Completion(text=best, prompt_tokens=50, completion_tokens=1, top_logprobs=lp)

    return FakeLLM(handler, **kw)


def test_yes_no_score_sums_variants_and_uses_a_floor() -> None:
    lp = {"Yes": math.log(0.3), " yes": math.log(0.1), "No": math.log(0.4), "Maybe": -5.0}
    assert yes_no_score(lp) == pytest.approx(math.log(0.4) - math.log(0.4))
    # Markers, case and punctuation are normalised.
    assert yes_no_score({"\u2581YES": -0.1, "\u0120no.": -2.5}) == pytest.approx(2.4)
    # A missing answer gets min(logprobs) - 1.
    assert yes_no_score({"Yes": -0.5, "The": -3.0}) == pytest.approx(-0.5 - (-4.0))
    assert yes_no_score({"No": -0.2, "I": -6.0}) == pytest.approx((-7.0) - (-0.2))
    # Neither answer present: no score, the caller falls back to the text.
    assert yes_no_score({"The": -0.1, "A": -3.0}) is None
    assert yes_no_score({}) is None
    # Non-finite logprobs are ignored (the answer then gets the floor).
    assert yes_no_score({"Yes": -0.5, "No": -math.inf, "A": -2.0}) == pytest.approx(2.5)
    assert yes_no_score({"Yes": math.nan, "No": -math.inf}) is None
    # "yesterday" or "Nope" are not answers.
    assert yes_no_score({"yesterday": -0.1, "Nope": -0.2}) is None


def test_ranks_by_log_odds_and_sends_one_round() -> None:
    table = {
        PASSAGES[0]: {"No": -0.01, "Yes": -5.0},
        PASSAGES[1]: {"Yes": -0.05, "No": -3.0},
        PASSAGES[2]: {"Yes": -0.7, "No": -0.7},
        PASSAGES[3]: {"No": -0.1, "Yes": -2.5},
    }
    llm = logprob_llm(table)
    r = LLMPointwiseRanker(llm).rank(QUERY, PASSAGES)
    assert r.order == (1, 2, 3, 0)
    assert r.scores == pytest.approx((2.95, 0.0, -2.4, -4.99))
    assert r.usage.depth == 1 and r.usage.llm_calls == 4
    assert r.usage.prompt_tokens == 200 and r.usage.completion_tokens == 4
    assert r.usage.fallbacks == r.usage.parse_repairs == r.usage.failed_calls == 0
    # Each passage was asked about exactly once, with the documented parameters.
    assert sorted(passage_of(m) for m, _ in llm.calls) == sorted(PASSAGES)
    for messages, params in llm.calls:
        assert params == {"max_tokens": 1, "temperature": 0, "top_logprobs": 20}
        assert QUERY in messages[-1]["content"]
        assert "Yes or No" in messages[-1]["content"]


def test_ties_keep_input_order() -> None:
    same = {"Yes": -0.5, "No": -1.0}
    llm = logprob_llm({p: same for p in PASSAGES})
    assert LLMPointwiseRanker(llm).rank(QUERY, PASSAGES).order == (0, 1, 2, 3)


def test_text_fallback_without_logprobs() -> None:
    answers = {PASSAGES[0]: "No", PASSAGES[1]: " yes.", PASSAGES[2]: "Maybe", PASSAGES[3]: "NO!"}
    llm = FakeLLM(lambda messages: answers[passage_of(messages)])
    r = LLMPointwiseRanker(llm).rank(QUERY, PASSAGES)
    assert r.order == (1, 2, 0, 3)
    assert r.scores == (1.0, 0.0, -1.0, -1.0)
    assert r.usage.parse_repairs == 1 and r.usage.fallbacks == 0


def test_logprobs_without_either_answer_fall_back_to_text() -> None:
    def handler(messages):  # type: ignore[no-untyped-def]
        p = passage_of(messages)
        if p == PASSAGES[1]:
            return Completion(text="Yes", top_logprobs={"Y": -0.1, "Ye": -1.0})
        return Completion(text="No", top_logprobs={"No": -0.1, "Yes": -4.0})

    r = LLMPointwiseRanker(FakeLLM(handler)).rank(QUERY, PASSAGES)
    assert r.order[0] == 1 and r.scores[0] == 1.0


def test_failed_calls_get_the_lowest_score_in_input_order() -> None:
    def handler(messages):  # type: ignore[no-untyped-def]
        p = passage_of(messages)
        if p in (PASSAGES[0], PASSAGES[2]):
            raise LLMTimeoutError("timed out", attempts=3)
        lp = {"Yes": -0.1, "No": -3.0} if p == PASSAGES[1] else {"Yes": -2.0, "No": -0.2}
        return Completion(text="x", top_logprobs=lp)

    r = LLMPointwiseRanker(FakeLLM(handler)).rank(QUERY, PASSAGES)
    assert r.order == (1, 3, 0, 2)
    assert r.scores[2] == r.scores[3] == pytest.approx(-1.8 - 1.0)
    assert r.usage.fallbacks == 2 and r.usage.failed_calls == 2
    assert r.usage.retries == 4  # 2 extra attempts per failed call, reported by the error


def test_all_calls_failing_keeps_input_order() -> None:
    def handler(messages):  # type: ignore[no-untyped-def]
        raise ConnectionError("down")

    r = LLMPointwiseRanker(FakeLLM(handler)).rank(QUERY, PASSAGES, top_n=3)
    assert r.order == (0, 1, 2)
    assert len(set(r.scores)) == 1
    assert r.usage.fallbacks == 4


def test_strict_raises_on_failure_and_on_unparsable_text() -> None:
    def failing(messages):  # type: ignore[no-untyped-def]
        if passage_of(messages) == PASSAGES[2]:
            raise RuntimeError("boom")
        return "Yes"

    with pytest.raises(RankingFailedError, match="passage 2"):
        LLMPointwiseRanker(FakeLLM(failing), strict=True).rank(QUERY, PASSAGES)
    with pytest.raises(ParseError, match="Yes/No"):
        LLMPointwiseRanker(FakeLLM(lambda m: "Perhaps"), strict=True).rank(QUERY, PASSAGES)
    # Clean answers pass in strict mode.
    r = LLMPointwiseRanker(FakeLLM(lambda m: "No"), strict=True).rank(QUERY, PASSAGES)
    assert r.order == (0, 1, 2, 3)


def test_async_equals_sync() -> None:
    table = {p: {"Yes": -float(i), "No": -1.0} for i, p in enumerate(PASSAGES)}

    async def ahandler(messages):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        return Completion(text="Yes", top_logprobs=table[passage_of(messages)])

    sync = LLMPointwiseRanker(logprob_llm(table)).rank(QUERY, PASSAGES, top_n=2)
    got = asyncio.run(LLMPointwiseRanker(FakeLLM(ahandler)).arank(QUERY, PASSAGES, top_n=2))
    assert (got.order, got.scores) == (sync.order, sync.scores)
    assert got.usage.depth == 1 and got.usage.llm_calls == 4


def test_long_passages_are_truncated() -> None:
    long = " ".join(f"w{i}" for i in range(2000))
    llm = FakeLLM(lambda m: "Yes")
    LLMPointwiseRanker(llm, max_passage_tokens=50).rank(QUERY, [long, "short"])
    shown = [passage_of(m) for m, _ in llm.calls]
    cut = next(s for s in shown if s.startswith("w0"))
    assert long.startswith(cut) and 10 < len(cut.split()) <= 50


def test_empty_makes_no_call_and_a_single_candidate_keeps_the_log_odds_scale() -> None:
    llm = FakeLLM(lambda m: Completion(text="No", top_logprobs={"No": -0.1, "Yes": -2.5}))
    ranker = LLMPointwiseRanker(llm)
    assert ranker.rank(QUERY, []).order == ()
    assert llm.calls == []
    single = ranker.rank(QUERY, ["only"])
    assert single.order == (0,) and len(llm.calls) == 1
    assert single.scores[0] == pytest.approx(-2.4)  # judged irrelevant, not a 1.0
    assert asyncio.run(ranker.arank(QUERY, ["only"])).scores == single.scores


def test_constructor_validation() -> None:
    with pytest.raises(TypeError):
        LLMPointwiseRanker(None)
    with pytest.raises(TypeError):
        LLMPointwiseRanker(object())
    with pytest.raises(ValueError, match="max_passage_tokens"):
        LLMPointwiseRanker(FakeLLM(), max_passage_tokens=0)
    with pytest.raises(ValueError, match="top_logprobs"):
        LLMPointwiseRanker(FakeLLM(), top_logprobs=21)


def test_over_http_with_the_openai_backend() -> None:
    """End to end: OpenAI-compatible server -> backend -> first-token logprobs -> ranking."""
    pytest.importorskip("openai", reason="needs the openai extra")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer, Reply

    def handler(body):  # type: ignore[no-untyped-def]
        assert body.get("logprobs") is True and body.get("top_logprobs") == 20
        assert body.get("max_tokens") == 1 or body.get("max_completion_tokens") == 1
        relevant = "Canberra" in body["messages"][-1]["content"]
        lp = {"Yes": -0.1, "No": -2.5} if relevant else {"No": -0.05, "Yes": -3.2}
        return Reply(text="Yes" if relevant else "No", top_logprobs=lp)

    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, api_key="x")
        r = LLMPointwiseRanker(llm).rank(QUERY, PASSAGES)
        assert len(srv.requests) == 4
    assert r.order[0] == 1
    assert r.scores[0] == pytest.approx(2.4)
    assert r.scores[1] == pytest.approx(-3.2 + 0.05)
