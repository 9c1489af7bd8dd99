"""TourRanker: stage schedule, one round per stage for any number of tournaments,
points as scores, shuffles, failures and bad input."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from rerank_rag import FakeLLM, LLMConfigurationError, LLMServerError, RankingFailedError, TourRanker
from rerank_rag.listwise import RankGPTPrompt
from rerank_rag.tournament import SelectPrompt, halving_stages, split_picks

RNG = random.Random(11)
STRENGTH = [RNG.random() for _ in range(100)]
DOCS = [f"doc {i} text" for i in range(100)]
GOLD = sorted(range(100), key=lambda i: -STRENGTH[i])


def test_schedule_arithmetic():
    assert halving_stages(100) == [50, 25, 13, 7, 4, 2, 1]
    assert halving_stages(2) == [1] and halving_stages(1) == []
    assert split_picks([20] * 5, 50) == [10] * 5
    assert split_picks([17, 17, 16], 25) == [9, 8, 8]
    assert sum(split_picks([7, 6, 6], 10)) == 10
    assert TourRanker(FakeLLM(), stages=(50, 20, 10, 5, 2)).schedule(30) == [20, 10, 5, 2]


@pytest.mark.parametrize("tournaments", [1, 3])
def test_calls_and_rounds(relevance_oracle, tournaments):
    llm = FakeLLM(relevance_oracle(STRENGTH))
    r = TourRanker(llm, tournaments=tournaments).rank("q", DOCS)
    # halving from 100 with groups of <= 20: 5 + 3 + 2 + 1 + 1 + 1 + 1 groups, 7 stages
    assert r.usage.llm_calls == 14 * tournaments == len(llm.calls)
    assert r.usage.depth == 7
    assert r.order[0] == GOLD[0]  # the final stage picks the single best
    assert set(r.order[:7]) == set(GOLD[:7])
    assert r.scores[0] == 7.0 * tournaments and r.relevance[0] == 1.0
    assert all(a >= b for a, b in zip(r.scores, r.scores[1:]))


def test_the_paper_schedule(relevance_oracle):
    r = TourRanker(FakeLLM(relevance_oracle(STRENGTH)), tournaments=1, stages=(50, 20, 10, 5, 2)).rank("q", DOCS)
    assert r.usage.depth == 5 and r.usage.llm_calls == 5 + 3 + 1 + 1 + 1
    assert set(r.order[:2]) == set(GOLD[:2]) and set(r.order[:10]) == set(GOLD[:10])


def test_groups_mix_pool_ranks_and_are_shuffled(relevance_oracle):
    llm = FakeLLM(relevance_oracle(STRENGTH))
    TourRanker(llm, seed=3).rank("q", DOCS)
    first = [int(d) for d in re.findall(r"(?m)^\[\d+\] doc (\d+)", llm.calls[0][0][-1]["content"])]
    assert sorted(first) == list(range(0, 100, 5))  # group 0 gets pool ranks 0, 5, 10, ...
    assert first != sorted(first)  # shown shuffled
    again = FakeLLM(relevance_oracle(STRENGTH))
    TourRanker(again, seed=3).rank("q", DOCS)
    assert [m for m, _ in again.calls] == [m for m, _ in llm.calls]  # same seed, same prompts


def test_the_prompt_asks_for_m():
    req = SelectPrompt().build("q", ["a", "b", "c", "d"], picks=2)
    content = req.messages[0]["content"]
    assert "Select the 2 passages" in content and "[4] d" in content
    assert req.params["max_tokens"] == 4 * 2 + 16
    with pytest.raises(ValueError):
        SelectPrompt().build("q", ["a", "b"], picks=2)


def test_a_listwise_prompt_works_too(relevance_oracle):
    r = TourRanker(FakeLLM(relevance_oracle(STRENGTH)), prompt=RankGPTPrompt()).rank("q", DOCS[:30])
    assert r.order[0] == sorted(range(30), key=lambda i: -STRENGTH[i])[0]


def test_fewer_ids_than_asked_advance_only_those():
    r = TourRanker(FakeLLM(lambda m, **p: "[2]"), block_size=4).rank("q", DOCS[:4])
    assert r.usage.parse_repairs >= 1 and sorted(r.order) == [0, 1, 2, 3]


def test_failures_advance_the_first_retrieved(caplog):
    def down(messages, **params):
        raise LLMServerError("500")

    r = TourRanker(FakeLLM(down), tournaments=2).rank("q", DOCS)
    assert r.order == tuple(range(100))
    assert r.usage.fallbacks == r.usage.failed_calls == r.usage.llm_calls == 28
    assert sum(rec.name == "rerank_rag.tournament" for rec in caplog.records) == 1
    with pytest.raises(RankingFailedError):
        TourRanker(FakeLLM(down), strict=True).rank("q", DOCS[:5])

    def bad(messages, **params):
        raise LLMConfigurationError("401")

    with pytest.raises(LLMConfigurationError):
        TourRanker(FakeLLM(bad)).rank("q", DOCS[:5])
    garbage = TourRanker(FakeLLM(lambda m, **p: "nothing useful")).rank("q", DOCS[:9])
    assert garbage.order == tuple(range(9)) and garbage.usage.fallbacks == garbage.usage.llm_calls


def test_small_inputs(relevance_oracle):
    ranker = TourRanker(FakeLLM(relevance_oracle(STRENGTH)), tournaments=2)
    assert ranker.rank("q", []).order == () and ranker.rank("q", ["x"]).order == (0,)
    two = ranker.rank("q", [DOCS[0], DOCS[1]])
    assert two.order == ((1, 0) if STRENGTH[1] > STRENGTH[0] else (0, 1))
    assert two.usage.llm_calls == 2 and two.usage.depth == 1


def test_sync_and_async_agree(relevance_oracle):
    ranker = TourRanker(FakeLLM(relevance_oracle(STRENGTH)), tournaments=3)
    a, b = ranker.rank("q", DOCS), asyncio.run(ranker.arank("q", DOCS))
    assert a.order == b.order and a.scores == b.scores


def test_bad_arguments():
    llm = FakeLLM()
    for kw in ({"tournaments": 0}, {"block_size": 1}, {"stages": (10, 20)}, {"stages": ()}, {"stages": (5, 0)}):
        with pytest.raises(ValueError):
            TourRanker(llm, **kw)
    with pytest.raises(TypeError):
        TourRanker(llm, stages="50,20")
    with pytest.raises(TypeError):
        TourRanker(llm, seed="x")
    assert TourRanker(llm).to_config()["tournaments"] == 2
