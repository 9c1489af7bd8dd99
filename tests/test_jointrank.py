"""JointRanker end to end with a fake LLM and with pointwise scorers."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time

import pytest

from rerank_rag import FakeLLM, LLMTimeoutError, RankingFailedError, WindowParse
from rerank_rag.jointrank import JointRanker, LatinSquareDesign, borda
from rerank_rag.llm import Completion, LLMRequest

_ITEM = re.compile(r"\[(\d+|[A-Z])\]\s*doc(\d+)\b")


def shown_items(messages) -> list[tuple[str, int]]:
    """(prompt id, candidate number) for every passage shown in a prompt."""
    text = "\n".join(m["content"] for m in messages)
    return [(a, int(b)) for a, b in _ITEM.findall(text)]


def docs(n: int) -> list[str]:
    return [f"doc{i} some passage text number {i}" for i in range(n)]


def perfect_llm(relevance, **kw) -> FakeLLM:
    """Answers every block with its ids sorted by ``relevance[candidate]``."""

    def handler(messages):
        items = shown_items(messages)
        items.sort(key=lambda t: -relevance[t[1]])
        return " > ".join(f"[{pid}]" for pid, _ in items)

    return FakeLLM(handler, **kw)


def expected_order(ranker, rel, n):
    """What the ranker must return for a perfect block ranker: the public building
    blocks applied to its own blocks (an independent path through the API)."""
    from rerank_rag.jointrank import Comparisons, order_from_scores

    blocks = ranker.blocks(n)
    rankings = [sorted(b, key=lambda i: -rel[i]) for b in blocks]
    return tuple(order_from_scores(ranker.aggregator(Comparisons(n, rankings)))[0])


def shuffled_relevance(n, seed=0):
    rel = list(range(n))
    random.Random(seed).shuffle(rel)
    return rel


def test_perfect_llm_finds_the_best_candidates_in_one_round():
    n = 100
    rel = shuffled_relevance(n)
    llm = perfect_llm(rel, max_concurrency=20)
    ranker = JointRanker(llm)
    res = ranker.rank("which doc?", docs(n), top_n=10)
    assert len(res.order) == 10
    assert rel[res.order[0]] >= n - 3 and sum(rel[i] >= n - 15 for i in res.order) >= 8
    assert res.usage.llm_calls == 20 and len(llm.calls) == 20
    assert res.usage.depth == 1
    assert res.usage.prompt_tokens > 0 and res.usage.completion_tokens > 0
    assert res.usage.fallbacks == res.usage.failed_calls == 0
    assert res.usage.wall_time > 0
    assert all(a >= b for a, b in zip(res.scores, res.scores[1:]))


def test_full_ranking_is_a_permutation_and_pagerank_scores_sum_to_one():
    n = 40
    rel = shuffled_relevance(n, 1)
    ranker = JointRanker(perfect_llm(rel), block_size=10, replicas=3, aggregator="pagerank")
    res = ranker.rank("q", docs(n))
    assert sorted(res.order) == list(range(n))
    assert sum(res.scores) == pytest.approx(1.0, abs=1e-9)
    assert all(a >= b for a, b in zip(res.scores, res.scores[1:]))


def test_default_aggregator_is_borda_with_scores_in_unit_range():
    n = 40
    rel = shuffled_relevance(n, 1)
    ranker = JointRanker(perfect_llm(rel), block_size=10, replicas=3)
    assert ranker.aggregator_name == "borda" and ranker.aggregator is borda
    res = ranker.rank("q", docs(n))
    assert sorted(res.order) == list(range(n))
    # the most relevant candidate is first in each of its 3 blocks: score 1, like any
    # other candidate that was first wherever it was shown; such ties keep input order
    top = [i for i, s in zip(res.order, res.scores) if s == 1.0]
    assert max(range(n), key=rel.__getitem__) in top and top == sorted(top)
    assert all(0.0 <= s <= 1.0 for s in res.scores)


def test_sync_and_async_give_the_same_result():
    n = 60
    rel = shuffled_relevance(n, 2)
    ranker = JointRanker(perfect_llm(rel), block_size=20, replicas=3)
    a = ranker.rank("q", docs(n))
    b = asyncio.run(ranker.arank("q", docs(n)))
    assert a.order == b.order and a.scores == b.scores
    assert b.usage.depth == 1 and b.usage.llm_calls == a.usage.llm_calls


def test_all_blocks_go_out_at_once():
    n = 100
    rel = shuffled_relevance(n, 3)
    active = 0
    peak = 0
    lock = threading.Lock()

    async def handler(messages):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        await asyncio.sleep(0.05)
        with lock:
            active -= 1
        items = sorted(shown_items(messages), key=lambda t: -rel[t[1]])
        return " ".join(str(pid) for pid, _ in items)

    res = asyncio.run(JointRanker(FakeLLM(handler)).arank("q", docs(n)))
    assert peak == 20 and res.usage.depth == 1


def test_same_seed_same_prompts_other_seed_other_prompts():
    n = 50
    rel = shuffled_relevance(n, 4)

    def prompts(seed):
        llm = perfect_llm(rel)
        JointRanker(llm, block_size=10, replicas=2, seed=seed).rank("q", docs(n))
        return sorted(m[-1]["content"] for m, _ in llm.calls)

    assert prompts(1) == prompts(1)
    assert prompts(1) != prompts(2)


def test_seed_none_draws_fresh_blocks():
    ranker = JointRanker(FakeLLM(), block_size=10, replicas=2, seed=None)
    assert ranker.blocks(50) != ranker.blocks(50)
    fixed = JointRanker(FakeLLM(), block_size=10, replicas=2, seed=3)
    assert fixed.blocks(50) == fixed.blocks(50)


def test_blocks_are_not_shown_in_first_stage_order():
    llm = perfect_llm(list(range(100)))
    JointRanker(llm, block_size=10, replicas=2, design="latin").rank("q", docs(100))
    orders = [[doc for _, doc in shown_items(m)] for m, _ in llm.calls]
    assert len(orders) == 20
    assert sum(o == sorted(o) for o in orders) == 0


def test_omitted_snippets_lose_to_listed_ones():
    # the LLM lists only the single best snippet of each block
    n = 30
    rel = shuffled_relevance(n, 5)

    def handler(messages):
        best = max(shown_items(messages), key=lambda t: rel[t[1]])
        return f"[{best[0]}]"

    ranker = JointRanker(FakeLLM(handler), block_size=10, replicas=3)
    res = ranker.rank("q", docs(n))
    # each block's best beats the other 9; nothing else is compared
    from rerank_rag.jointrank import Comparisons, order_from_scores

    rankings = []
    for b in ranker.blocks(n):
        best = max(b, key=lambda i: rel[i])
        rankings.append(([best] + [x for x in b if x != best], 1))
    assert res.order == tuple(order_from_scores(ranker.aggregator(Comparisons(n, rankings)))[0])
    assert rel[res.order[0]] == n - 1  # the overall best won all its blocks
    assert res.usage.parse_repairs == 0  # the relevant-only prompt allows omissions


def test_no_relevant_snippets_is_not_a_failure():
    res = JointRanker(FakeLLM(lambda m: "NO_RELEVANT_SNIPPETS"), block_size=5, replicas=2).rank(
        "q", docs(10)
    )
    assert res.order == tuple(range(10))  # no comparison: first-stage order
    assert res.usage.fallbacks == 0 and res.usage.llm_calls == 4 and res.usage.depth == 1


def test_unusable_answers_are_resent_alone_in_another_round():
    # the first answer of each block holding candidate 0 is garbage (2 blocks, r = 2)
    n = 40
    rel = shuffled_relevance(n, 6)
    attempts: dict[tuple[int, ...], int] = {}
    lock = threading.Lock()
    good = perfect_llm(rel).handler

    def handler(messages):
        key = tuple(sorted(d for _, d in shown_items(messages)))
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            first = attempts[key] == 1
        if first and 0 in key:
            return "I would rather not say."
        return good(messages)

    llm = FakeLLM(handler)
    res = JointRanker(llm, block_size=10, replicas=2).rank("q", docs(n))
    assert sorted(attempts.values()) == [1] * 6 + [2] * 2
    assert res.usage.depth == 2
    assert res.usage.llm_calls == 10 and res.usage.resends == 2
    assert res.usage.failed_calls == 0 and res.usage.fallbacks == 0
    assert rel[res.order[0]] == n - 1


def test_failed_calls_are_never_resent(caplog):
    # the backend already retried a timeout (or a 429, a 5xx): re-sending the block
    # would multiply its retries, so the block is left out at once
    n = 40
    rel = shuffled_relevance(n, 6)
    good = perfect_llm(rel).handler

    def handler(messages):
        if 0 in {d for _, d in shown_items(messages)}:
            raise LLMTimeoutError("slow", attempts=5)
        return good(messages)

    llm = FakeLLM(handler)
    with caplog.at_level("WARNING", logger="rerank_rag.jointrank"):
        res = JointRanker(llm, block_size=10, replicas=2, max_block_retries=2).rank("q", docs(n))
    assert len(llm.calls) == 8 and res.usage.llm_calls == 8 and res.usage.resends == 0
    assert res.usage.depth == 1 and res.usage.failed_calls == 2 and res.usage.fallbacks == 2
    assert res.usage.retries == 2 * 4  # the backend's own retries, reported
    assert sorted(res.order) == list(range(n))
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "2 of 8 blocks failed" in warnings[0].getMessage()
    assert warnings[0].getMessage().count("LLM call failed") == 1


def test_resends_per_query_are_bounded_by_the_number_of_blocks():
    calls = []

    def handler(messages):
        calls.append(1)
        return "no idea"  # always unusable

    ranker = JointRanker(FakeLLM(handler), block_size=5, replicas=2, max_block_retries=5)
    res = ranker.rank("q", docs(10))  # 4 blocks
    assert len(calls) == 8 and res.usage.resends == 4 and res.usage.llm_calls == 8
    assert res.usage.depth == 2 and res.usage.fallbacks == 4
    assert res.order == tuple(range(10))


def test_configuration_errors_raise_and_are_never_resent():
    from rerank_rag import LLMConfigurationError

    calls = []

    def handler(messages):
        calls.append(1)
        raise LLMConfigurationError("HTTP 401: invalid API key", status=401)

    for strict in (False, True):
        calls.clear()
        ranker = JointRanker(FakeLLM(handler, max_concurrency=1), block_size=5, replicas=2, strict=strict)
        with pytest.raises(LLMConfigurationError, match="401"):
            ranker.rank("q", docs(10))
        with pytest.raises(LLMConfigurationError):
            asyncio.run(ranker.arank("q", docs(10)))
        assert len(calls) == 8  # one round each (sync, async), nothing re-sent


def test_retry_reshuffles_the_block_so_a_cache_cannot_replay_the_bad_answer():
    prompts: list[str] = []

    def handler(messages):
        prompts.append(messages[-1]["content"])
        return "I cannot rank these." if len(prompts) == 1 else "[1]"

    JointRanker(FakeLLM(handler, max_concurrency=1), block_size=10, replicas=1).rank("q", docs(10))
    assert len(prompts) == 2 and prompts[0] != prompts[1]
    docs0 = sorted(d for _, d in _ITEM.findall(prompts[0]))
    assert docs0 == sorted(d for _, d in _ITEM.findall(prompts[1]))


def test_answer_naming_no_valid_id_counts_as_failed_and_is_left_out(caplog):
    rel = shuffled_relevance(20, 7)
    good = perfect_llm(rel).handler
    bad_docs = {3}

    def handler(messages):
        if any(d in bad_docs for _, d in shown_items(messages)):
            return "[99] > [0]"  # no valid id
        return good(messages)

    ranker = JointRanker(FakeLLM(handler), block_size=5, replicas=2, max_block_retries=1)
    with caplog.at_level("WARNING", logger="rerank_rag.jointrank"):
        res = ranker.rank("q", docs(20))
    assert "2 of 8 blocks failed" in caplog.text and "component" in caplog.text
    assert res.usage.fallbacks == 2  # doc3's two blocks, after 1 retry each
    assert res.usage.depth == 2 and res.usage.resends == 2
    assert sorted(res.order) == list(range(20))


def test_strict_raises_when_a_block_still_fails():
    def handler(messages):
        raise LLMTimeoutError("down")

    ranker = JointRanker(
        FakeLLM(handler), block_size=5, replicas=2, strict=True, max_block_retries=1
    )
    with pytest.raises(RankingFailedError, match="4 of 4 blocks failed"):
        ranker.rank("q", docs(10))


def test_every_block_failing_falls_back_to_first_stage_order():
    calls = []

    def handler(messages):
        calls.append(1)
        raise LLMTimeoutError("down")

    res = JointRanker(FakeLLM(handler), block_size=5, replicas=2, max_block_retries=2).rank(
        "q", docs(10), top_n=4
    )
    assert res.order == (0, 1, 2, 3)
    assert res.usage.fallbacks == 4 and res.usage.failed_calls == 4 and len(calls) == 4
    assert res.usage.depth == 1  # failed calls are not re-sent
    assert len(set(res.scores)) == 1


def test_candidates_of_a_failed_block_with_no_other_comparison_sort_last_in_input_order():
    # r = 1: each candidate is in exactly one block (+ a bridging block); fail the blocks
    # that hold candidates 0..4 so some candidates have no comparison at all
    def handler(messages):
        items = shown_items(messages)
        if any(d < 5 for _, d in items):
            raise LLMTimeoutError("down")
        return " ".join(str(p) for p, _ in sorted(items, key=lambda t: t[1]))

    ranker = JointRanker(FakeLLM(handler), block_size=5, replicas=1, max_block_retries=0)
    res = ranker.rank("q", docs(20))
    blocks = ranker.blocks(20)
    ok_docs = {x for b in blocks if not any(d < 5 for d in b) for x in b}
    uncompared = [i for i in range(20) if i not in ok_docs]
    assert uncompared and res.order[-len(uncompared) :] == tuple(uncompared)


def test_duplicated_texts_are_kept_apart_by_position():
    texts = ["doc1 same text", "doc0 other", "doc1 same text", "doc1 same text"]
    rel_by_doc_number = [0, 5]
    res = JointRanker(perfect_llm(rel_by_doc_number), block_size=4, replicas=2).rank("q", texts)
    assert sorted(res.order) == [0, 1, 2, 3] and res.order[-1] == 1


@pytest.mark.parametrize("n", [0, 1])
def test_trivial_inputs_need_no_call(n):
    llm = FakeLLM(lambda m: "[1]")
    res = JointRanker(llm).rank("q", docs(n))
    assert res.order == tuple(range(n)) and len(llm.calls) == 0


def test_two_candidates_and_fewer_than_block_size():
    llm = perfect_llm([0, 1])
    res = JointRanker(llm).rank("q", docs(2))
    # two candidates have two orders: the 4 replicas collapse to 2 distinct prompts
    assert res.order == (1, 0) and len(llm.calls) == 2
    prompts = [m[0]["content"] for m, _ in llm.calls]
    assert len(set(prompts)) == 2
    rel = shuffled_relevance(7, 8)
    res = JointRanker(perfect_llm(rel), block_size=20, replicas=2).rank("q", docs(7))
    assert [rel[i] for i in res.order] == sorted(rel, reverse=True)


def test_bad_arguments_give_clear_errors():
    llm = FakeLLM()
    with pytest.raises(ValueError, match="block_size must be >= 2"):
        JointRanker(llm, block_size=1)
    with pytest.raises(ValueError, match="replicas must be >= 1"):
        JointRanker(llm, replicas=0)
    with pytest.raises(ValueError, match="max_block_retries"):
        JointRanker(llm, max_block_retries=-1)
    with pytest.raises(ValueError, match="unknown aggregator"):
        JointRanker(llm, aggregator="nope")
    with pytest.raises(ValueError, match="unknown design"):
        JointRanker(llm, design="nope")
    with pytest.raises(TypeError, match="unsupported LLM"):
        JointRanker(object())
    with pytest.raises(ValueError, match="does not apply"):
        JointRanker(llm, design=LatinSquareDesign(), block_size=10).rank("q", docs(50))
    with pytest.raises(ValueError, match="query"):
        JointRanker(llm).rank("  ", docs(3))


@pytest.mark.parametrize("prompt", ["rankgpt", "relevant-only"])
def test_real_prompts_work_as_block_prompts(prompt):
    n = 30
    rel = shuffled_relevance(n, 9)
    ranker = JointRanker(perfect_llm(rel), prompt=prompt, block_size=10, replicas=3)
    res = ranker.rank("q", docs(n))
    assert res.order == expected_order(ranker, rel, n)


def test_first_token_logprob_mode():
    n = 30
    rel = shuffled_relevance(n, 10)

    def handler(messages, **params):
        assert params.get("max_tokens") == 1 and params.get("top_logprobs")
        text = "\n".join(m["content"] for m in messages)
        items = shown_items(messages)
        assert items and text
        items.sort(key=lambda t: -rel[t[1]])
        lp = {pid: -0.1 * r for r, (pid, _) in enumerate(items)}
        return Completion(text=items[0][0], top_logprobs=lp)

    ranker = JointRanker(FakeLLM(handler), prompt="first-token", block_size=10, replicas=3)
    res = ranker.rank("q", docs(n))
    assert res.order == expected_order(ranker, rel, n)


class ReverseOnlyPrompt:
    """A tiny custom WindowPrompt: the LLM answers 'a b c' (1-based, best first)."""

    name = "tiny"

    def build(self, query, passages):
        body = "\n".join(f"[{i + 1}] {p}" for i, p in enumerate(passages))
        return LLMRequest.chat([{"role": "user", "content": f"{query}\n{body}"}])

    def parse(self, completion, n, *, strict=False):
        ids = [int(t) - 1 for t in completion.text.split() if t.isdigit()]
        return WindowParse(listed=tuple(i for i in ids if 0 <= i < n))


def test_custom_window_prompt():
    n = 20
    rel = shuffled_relevance(n, 11)

    def handler(messages):
        items = sorted(shown_items(messages), key=lambda t: -rel[t[1]])
        return " ".join(str(pid) for pid, _ in items)

    ranker = JointRanker(FakeLLM(handler), prompt=ReverseOnlyPrompt(), block_size=5)
    res = ranker.rank("q", docs(n))
    assert res.order == expected_order(ranker, rel, n)


# ----------------------------------------------------------------- scorer as block ranker


class DocNumberScorer:
    """Pointwise scorer: the number in 'docN' through a fixed random map."""

    def __init__(self, rel):
        self.rel = rel
        self.calls = 0

    def score(self, query, passages):
        self.calls += 1
        return [float(self.rel[int(re.match(r"doc(\d+)", p).group(1))]) for p in passages]

    async def ascore(self, query, passages):
        return self.score(query, passages)


def kendall_tau(a, b):
    pos = {x: i for i, x in enumerate(b)}
    n = len(a)
    conc = disc = 0
    for i in range(n):
        for j in range(i + 1, n):
            if pos[a[i]] < pos[a[j]]:
                conc += 1
            else:
                disc += 1
    return (conc - disc) / (conc + disc)


def test_pointwise_scorer_block_ranker_reproduces_the_scorers_global_order():
    # consistent comparisons from a scorer on a connected design (n=60, k=20, r=4):
    # PageRank (the default) and Bradley-Terry recover the scorer's order, tau > 0.95
    n = 60
    taus: dict[str, list[float]] = {"pagerank": [], "bradley_terry": []}
    for seed in range(6):
        rel = shuffled_relevance(n, 100 + seed)
        truth = sorted(range(n), key=lambda i: -rel[i])
        for aggregator, found in taus.items():
            scorer = DocNumberScorer(rel)
            ranker = JointRanker(scorer, block_size=20, replicas=4, aggregator=aggregator)
            res = ranker.rank("q", docs(n))
            assert scorer.calls == 12 and res.usage.llm_calls == 0
            assert res.order == expected_order(ranker, rel, n)
            found.append(kendall_tau(list(res.order), truth))
    assert sum(taus["pagerank"]) / 6 > 0.95 and min(taus["pagerank"]) > 0.93
    assert min(taus["bradley_terry"]) > 0.95


def test_scorer_async_path_matches_sync():
    rel = shuffled_relevance(50, 15)
    ranker = JointRanker(DocNumberScorer(rel), block_size=10, replicas=3)
    assert asyncio.run(ranker.arank("q", docs(50))).order == ranker.rank("q", docs(50)).order


def test_scorer_failures_are_retried_then_left_out_or_raised():
    class Flaky(DocNumberScorer):
        def score(self, query, passages):
            self.calls += 1
            if self.calls <= 2:
                raise RuntimeError("model crashed")
            return super().score(query, passages)

    rel = shuffled_relevance(20, 13)
    ranker = JointRanker(Flaky(rel), block_size=10, replicas=2)
    res = ranker.rank("q", docs(20))
    assert res.usage.fallbacks == 0
    assert res.order == expected_order(ranker, rel, 20)  # retried blocks fully recovered

    class Broken(DocNumberScorer):
        def score(self, query, passages):
            return [1.0]  # wrong length

    res = JointRanker(Broken(rel), block_size=10, replicas=2).rank("q", docs(20))
    assert res.usage.fallbacks == 4 and res.order == tuple(range(20))
    with pytest.raises(RankingFailedError, match="scorer returned 1 scores"):
        JointRanker(Broken(rel), block_size=10, replicas=2, strict=True).rank("q", docs(20))


def test_coverage_helper_reports_the_design():
    cov = JointRanker(FakeLLM()).coverage(100)
    assert cov.blocks == 20 and cov.min_appearances == 4 and cov.connected


def test_wall_time_is_one_round_not_the_sum_of_calls():
    n = 100
    rel = shuffled_relevance(n, 14)

    async def handler(messages):
        await asyncio.sleep(0.2)
        items = sorted(shown_items(messages), key=lambda t: -rel[t[1]])
        return " ".join(str(pid) for pid, _ in items)

    t0 = time.perf_counter()
    res = asyncio.run(JointRanker(FakeLLM(handler)).arank("q", docs(n)))
    elapsed = time.perf_counter() - t0
    assert res.usage.llm_calls == 20
    assert elapsed < 20 * 0.2 / 4  # far below the sequential 4 s


def test_importing_jointrank_loads_no_heavy_module():
    import subprocess
    import sys

    code = (
        "import sys, rerank_rag.jointrank\n"
        "heavy = [m for m in ('numpy', 'openai', 'torch', 'pydantic', 'httpx') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_failure_messages_say_llm_call_failed_once(caplog):
    from rerank_rag.listwise import ListwiseRanker

    def handler(messages):
        raise RuntimeError("backend exploded")

    llm = FakeLLM(handler, max_concurrency=1)
    with caplog.at_level("WARNING", logger="rerank_rag"):
        JointRanker(llm, block_size=3, replicas=1).rank("q", docs(6))
        ListwiseRanker(llm, window_size=3, step=1).rank("q", docs(6))
    assert len(caplog.records) == 2
    for record in caplog.records:
        msg = record.getMessage()
        assert msg.count("LLM call failed") == 1 and "RuntimeError: backend exploded" in msg
    with pytest.raises(RankingFailedError) as info:
        ListwiseRanker(llm, strict=True).rank("q", docs(3))
    assert str(info.value).count("LLM call failed") == 1


@pytest.mark.parametrize("n", [3, 4, 5, 8, 20])
def test_replicas_of_a_small_list_are_distinct_shuffles(n):
    # n <= block_size: every replica holds all candidates; identical prompts would
    # repeat the same question (and a response cache would answer it from the first)
    for seed in range(20):
        blocks = JointRanker(FakeLLM(), block_size=20, replicas=4, seed=seed).blocks(n)
        assert len(blocks) == 4 and all(sorted(b) == list(range(n)) for b in blocks)
        assert len({tuple(b) for b in blocks}) == 4, (n, seed, blocks)


def test_id_style_and_query_budget_reach_the_block_prompt():
    llm = FakeLLM(lambda m: "[B] > [A]")
    ranker = JointRanker(llm, block_size=3, replicas=2, id_style="alpha", max_query_tokens=4)
    ranker.rank("a very long question with many words in it", docs(6))
    text = llm.calls[0][0][0]["content"]
    assert "[A]" in text and "[1]" not in text
    assert "with many words" not in text
    with pytest.raises(ValueError, match="id_style"):
        JointRanker(llm, id_style="roman")
