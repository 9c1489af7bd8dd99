"""TDPartRanker: pivot partition in parallel rounds, early stop, ordering of settled
groups, judged relevance with the relevant-only prompt, failures and bad input."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from rerank_rag import FakeLLM, LLMConfigurationError, LLMServerError, RankingFailedError, TDPartRanker

RNG = random.Random(5)
STRENGTH = [RNG.random() for _ in range(100)]
GOLD = sorted(range(100), key=lambda i: -STRENGTH[i])


def docs(order):
    return [f"doc {i} text" for i in order]


def back(cands, ranking):
    return [cands[i] for i in ranking.order]


def test_good_first_stage_costs_seven_calls_in_three_rounds(relevance_oracle):
    first = GOLD[:8] + GOLD[12:] + GOLD[8:12]  # ranks 9-12 retrieved late
    llm = FakeLLM(relevance_oracle(STRENGTH))
    r = TDPartRanker(llm).rank("q", docs(first))
    got = back(first, r)
    assert got[:11] == GOLD[:11]
    # 1 first block, ceil(80 / 19) = 5 blocks with the pivot, 1 block for the head
    assert r.usage.llm_calls == 7 and r.usage.depth == 3
    shown_first = {re.search(r"doc (\d+)", m[3]["content"]).group(1) for m, _ in llm.calls[1:6]}
    assert shown_first == {str(GOLD[14])}  # the pivot, [1] in each block: 11th of the first block


def test_random_first_stage_still_sorts_the_head(relevance_oracle):
    first = list(range(100))
    r = TDPartRanker(FakeLLM(relevance_oracle(STRENGTH))).rank("q", docs(first))
    got = back(first, r)
    assert got[:11] == GOLD[:11]
    assert r.usage.depth % 2 == 1 and r.usage.depth <= 2 * 10 + 1
    # every candidate settled behind the head is worse than every head candidate
    assert min(STRENGTH[i] for i in got[:11]) > max(STRENGTH[i] for i in got[11:])


def test_settled_groups_are_ordered_best_first(relevance_oracle):
    first = list(range(100))
    r = TDPartRanker(FakeLLM(relevance_oracle(STRENGTH)), block_size=10, sort_depth=3).rank("q", docs(first))
    got = back(first, r)
    assert got[:4] == GOLD[:4]
    assert r.usage.depth > 3  # several partition rounds, each settling a group
    # the first pivot (4th best of the first block) splits the final order exactly:
    # the groups settled in later rounds are better, so they all come before it
    pivot = sorted(range(10), key=lambda i: -STRENGTH[i])[3]
    k = got.index(pivot)
    assert all(STRENGTH[i] > STRENGTH[pivot] for i in got[:k])
    assert all(STRENGTH[i] < STRENGTH[pivot] for i in got[k + 1 :])


def test_relevant_only_prompt_judges_relevance(relevance_oracle):
    llm = FakeLLM(lambda m, **p: relevant_only(m))
    ranker = TDPartRanker(llm, prompt="relevant-only")
    assert ranker.judges_relevance and not TDPartRanker(llm).judges_relevance
    first = GOLD[::-1]
    r = ranker.rank("q", docs(first))
    judged = {first[i] for i, v in zip(r.order, r.relevance) if v >= 0.5}
    assert judged == {i for i in range(100) if STRENGTH[i] > 0.8}
    # the bands of the listwise relevant-only prompt: (0.5, 1] and [0, 0.5), no exact 0.5
    assert r.relevance[0] == 1.0 and 0.5 not in r.relevance and len(set(r.relevance)) > 2


def relevant_only(messages):
    text = messages[-1]["content"]
    shown = re.findall(r"(?m)^\[(\d+)\] doc (\d+)", text)
    good = sorted((s for s in shown if STRENGTH[int(s[1])] > 0.8), key=lambda s: -STRENGTH[int(s[1])])
    return " > ".join(f"[{lab}]" for lab, _ in good) or "NO_RELEVANT_SNIPPETS"


def test_failures_keep_first_stage_order(caplog):
    def down(messages, **params):
        raise LLMServerError("500")

    r = TDPartRanker(FakeLLM(down)).rank("q", docs(range(60)))
    assert r.order == tuple(range(60)) and r.usage.fallbacks == r.usage.llm_calls == 4
    assert sum(rec.name == "rerank_rag.tdpart" for rec in caplog.records) == 1
    with pytest.raises(RankingFailedError):
        TDPartRanker(FakeLLM(down), strict=True).rank("q", docs(range(5)))

    def bad(messages, **params):
        raise LLMConfigurationError("403")

    with pytest.raises(LLMConfigurationError):
        TDPartRanker(FakeLLM(bad)).rank("q", docs(range(5)))
    garbage = TDPartRanker(FakeLLM(lambda m, **p: "hmm")).rank("q", docs(range(30)))
    assert garbage.order == tuple(range(30)) and garbage.usage.fallbacks == garbage.usage.llm_calls


def test_small_inputs(relevance_oracle):
    ranker = TDPartRanker(FakeLLM(relevance_oracle(STRENGTH)), block_size=5, sort_depth=2)
    assert ranker.rank("q", []).order == () and ranker.rank("q", ["x"]).order == (0,)
    two = ranker.rank("q", docs([0, 1]))
    assert two.order == ((1, 0) if STRENGTH[1] > STRENGTH[0] else (0, 1)) and two.usage.llm_calls == 1
    six = ranker.rank("q", docs(range(6)), top_n=2)
    assert [i for i in six.order] == sorted(range(6), key=lambda i: -STRENGTH[i])[:2]


def test_sync_and_async_agree(relevance_oracle):
    ranker = TDPartRanker(FakeLLM(relevance_oracle(STRENGTH)))
    a, b = ranker.rank("q", docs(range(100))), asyncio.run(ranker.arank("q", docs(range(100))))
    assert a.order == b.order and a.usage.depth == b.usage.depth


def test_bad_arguments():
    llm = FakeLLM()
    with pytest.raises(ValueError, match="sort_depth"):
        TDPartRanker(llm, block_size=10, sort_depth=10)
    with pytest.raises(ValueError):
        TDPartRanker(llm, block_size=2)
    with pytest.raises(ValueError, match="unknown prompt"):
        TDPartRanker(llm, prompt="nope")
    assert TDPartRanker(llm, id_style="alpha").prompt.id_style == "alpha"
    assert TDPartRanker(llm).to_config()["type"] == "tdpart"
