"""SetwiseRanker and the pick-best prompt: heapsort / bubble sort with groups, generation
and logprob scoring, answer forms, failures and bad input."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from rerank_rag import (
    Completion,
    FakeLLM,
    FirstTokenPrompt,
    LLMConfigurationError,
    LLMTimeoutError,
    ParseError,
    RankingFailedError,
    SetwiseRanker,
)
from rerank_rag.setwise import PickBestPrompt

RNG = random.Random(7)
STRENGTH = [RNG.random() for _ in range(40)]
DOCS = [f"doc {i} text" for i in range(40)]
GOLD = sorted(range(40), key=lambda i: -STRENGTH[i])


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
@pytest.mark.parametrize("block_size", [3, 4, 8])
@pytest.mark.parametrize("scoring", ["generation", "logprobs"])
def test_finds_the_top_k(relevance_oracle, method, block_size, scoring):
    llm = FakeLLM(relevance_oracle(STRENGTH))
    r = SetwiseRanker(llm, method=method, block_size=block_size, scoring=scoring, sort_depth=6).rank("q", DOCS)
    assert list(r.order[:6]) == GOLD[:6]
    head = set(r.order[:6])
    assert list(r.order[6:]) == [i for i in range(40) if i not in head]
    assert r.usage.llm_calls == len(llm.calls)
    assert all(2 <= m[-1]["content"].count("\n[") <= block_size for m, _ in llm.calls)
    assert r.usage.depth < r.usage.llm_calls
    assert r.relevance == tuple(1.0 - i / 40 for i in range(40))
    if scoring == "logprobs":
        assert all(p["max_tokens"] == 1 and p["top_logprobs"] == 20 for _, p in llm.calls)


def test_heapsort_costs_about_what_the_paper_reports(relevance_oracle):
    rng = random.Random(3)
    strength = [rng.random() for _ in range(100)]
    docs = [f"doc {i}" for i in range(100)]
    llm = FakeLLM(relevance_oracle(lambda t: strength[int(t.split()[1])]))
    r = SetwiseRanker(llm, block_size=4, sort_depth=10).rank("q", docs)
    assert 60 <= r.usage.llm_calls <= 140  # Zhuang et al.: ~125 with c=3 on BM25 top-100
    assert r.usage.depth <= 60
    assert list(r.order[:10]) == sorted(range(100), key=lambda i: -strength[i])[:10]


def test_a_listwise_prompt_object_can_be_the_judge(relevance_oracle):
    r = SetwiseRanker(FakeLLM(relevance_oracle(STRENGTH)), prompt=FirstTokenPrompt(), block_size=5).rank("q", DOCS[:12])
    assert list(r.order[:5]) == sorted(range(12), key=lambda i: -STRENGTH[i])[:5]


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("C", 2), ("[C]", 2), ("Passage C", 2), ("C > A > B", 2), ("The most relevant passage is C.", 2),
        ("<think>maybe A or B</think>C", 2), ("Ｃ", 2), ("c", 2), ("3", 2),
    ],
)
def test_pick_best_reads_answer_forms(answer, expected):
    parsed = PickBestPrompt().parse(Completion(text=answer), 4)
    assert parsed.listed[:1] == (expected,)


@pytest.mark.parametrize("answer", ["", "none of them", "E", "A or B", "[Z]", "I think so"])
def test_pick_best_rejects_answers_naming_no_single_passage(answer):
    parsed = PickBestPrompt().parse(Completion(text=answer), 4)
    assert parsed.listed == () and parsed.repaired
    with pytest.raises(ParseError):
        PickBestPrompt().parse(Completion(text=answer), 4, strict=True)


def test_pick_best_logprobs_order_and_fallback_to_text():
    p = PickBestPrompt(scoring="logprobs")
    got = p.parse(Completion(text="B", top_logprobs={" B": -0.1, "A": -2.0, "[C]": -3.0, "Z": -0.01, "x": "bad"}), 3)
    assert got.listed == (1, 0, 2) and got.scores == (-0.1, -2.0, -3.0) and not got.repaired
    got = p.parse(Completion(text="C", top_logprobs=None), 3)
    assert got.listed == (2,) and got.repaired
    req = p.build("q?", ["one", "two"])
    assert req.params == {"max_tokens": 1, "top_logprobs": 20, "temperature": 0}
    assert "[A] one" in req.messages[0]["content"] and "two passages" in req.messages[0]["content"]


def test_pick_best_numeric_ids_and_large_groups():
    p = PickBestPrompt(id_style="numeric")
    content = p.build("q", ["x", "y", "z"]).messages[0]["content"]
    assert "[1] x" in content and "one of 1 to 3" in content
    content = PickBestPrompt().build("q", [f"p{i}" for i in range(30)]).messages[0]["content"]
    assert "[30] p29" in content  # letters only up to 26 passages
    assert PickBestPrompt().parse(Completion(text="[27]"), 30).listed == (26,)
    with pytest.raises(ValueError):
        p.build("q", ["only one"])


def test_failures_decide_by_first_stage_order(caplog):
    def flaky(messages, **params):
        raise LLMTimeoutError("timed out")

    for method in ("heapsort", "bubblesort"):
        r = SetwiseRanker(FakeLLM(flaky), method=method).rank("q", DOCS[:15])
        assert r.order == tuple(range(15)), method
        assert r.usage.fallbacks == r.usage.failed_calls == r.usage.llm_calls > 0
    assert sum(rec.name == "rerank_rag.setwise" for rec in caplog.records) == 2  # once per ranking
    with pytest.raises(RankingFailedError):
        SetwiseRanker(FakeLLM(flaky), strict=True).rank("q", DOCS[:5])


def test_some_failures_still_sort(relevance_oracle):
    good = relevance_oracle(STRENGTH)
    calls = {"n": 0}

    def sometimes(messages, **params):
        calls["n"] += 1
        if calls["n"] % 7 == 0:
            raise LLMTimeoutError("slow")
        return good(messages, **params)

    r = SetwiseRanker(FakeLLM(sometimes, max_concurrency=1)).rank("q", DOCS)
    assert r.usage.failed_calls > 0 and sorted(r.order) == list(range(40))
    assert r.order[0] in GOLD[:3]


def test_configuration_error_raises():
    def bad(messages, **params):
        raise LLMConfigurationError("404 model not found", status=404)

    with pytest.raises(LLMConfigurationError):
        SetwiseRanker(FakeLLM(bad)).rank("q", DOCS[:6])


def test_unusable_answers():
    r = SetwiseRanker(FakeLLM(lambda m, **p: "no idea")).rank("q", DOCS[:9])
    assert r.order == tuple(range(9)) and r.usage.fallbacks == r.usage.llm_calls
    with pytest.raises(ParseError):
        SetwiseRanker(FakeLLM(lambda m, **p: "no idea"), strict=True).rank("q", DOCS[:9])


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
def test_small_inputs_and_groups_larger_than_n(relevance_oracle, method):
    ranker = SetwiseRanker(FakeLLM(relevance_oracle(STRENGTH)), method=method, block_size=8)
    assert ranker.rank("q", []).order == ()
    assert ranker.rank("q", ["x"]).order == (0,)
    r2 = ranker.rank("q", [DOCS[0], DOCS[1]])
    assert r2.order == ((1, 0) if STRENGTH[1] > STRENGTH[0] else (0, 1)) and r2.usage.llm_calls >= 1
    r5 = ranker.rank("q", DOCS[:5], top_n=3)
    assert list(r5.order) == sorted(range(5), key=lambda i: -STRENGTH[i])[:3]


def test_sync_and_async_agree(relevance_oracle):
    for method in ("heapsort", "bubblesort"):
        ranker = SetwiseRanker(FakeLLM(relevance_oracle(STRENGTH)), method=method)
        a, b = ranker.rank("q", DOCS), asyncio.run(ranker.arank("q", DOCS))
        assert a.order == b.order and a.usage.depth == b.usage.depth


def test_bad_arguments():
    llm = FakeLLM()
    with pytest.raises(ValueError, match="block_size"):
        SetwiseRanker(llm, block_size=2)  # a heap needs two children
    SetwiseRanker(llm, method="bubblesort", block_size=2)
    with pytest.raises(ValueError, match="method"):
        SetwiseRanker(llm, method="mergesort")
    with pytest.raises(TypeError):
        SetwiseRanker(llm, block_size=3.5)
    with pytest.raises(ValueError, match="scoring"):
        PickBestPrompt(scoring="x")
    assert SetwiseRanker(llm).to_config()["type"] == "setwise"


def test_logprobs_through_a_real_http_server():
    pytest.importorskip("openai")
    from rerank_rag import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer, Reply

    def handler(body):
        assert body.get("logprobs") is True and body.get("max_tokens") == 1
        shown = re.findall(r"(?m)^\[([A-Z])\] doc (\d+)", body["messages"][-1]["content"])
        tops = {label: -5.0 * (1.0 - STRENGTH[int(d)]) for label, d in shown}
        best = max(tops, key=tops.get)
        return Reply(text=best, top_logprobs={**tops, "The": -9.0})

    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, max_concurrency=4)
        r = SetwiseRanker(llm, scoring="logprobs", sort_depth=3).rank("q", DOCS[:10])
        llm.close()
    assert list(r.order[:3]) == sorted(range(10), key=lambda i: -STRENGTH[i])[:3]
    assert r.usage.failed_calls == 0 and r.usage.parse_repairs == 0
