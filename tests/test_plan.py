"""The sans-IO plan drivers: batching, depth, usage, failures, sync == async."""

from __future__ import annotations

import asyncio
import threading
import time

from rerank_rag import Completion, FakeLLM, LLMError, Usage
from rerank_rag._plan import arun_plan, run_plan
from rerank_rag.llm import LLMRequest


def two_rounds():
    first = yield [LLMRequest.chat(f"q{i}") for i in range(4)]
    second = yield [LLMRequest.chat("final")]
    return [o.text if isinstance(o, Completion) else "ERR" for o in first + second]


def echo(messages):
    text = messages[-1]["content"]
    if text == "q2":
        raise RuntimeError("boom")
    return text.upper()


def test_run_plan_counts_depth_calls_and_failures():
    usage = Usage()
    out = run_plan(two_rounds(), FakeLLM(echo), usage)
    assert out == ["Q0", "Q1", "ERR", "Q3", "FINAL"]
    assert usage.depth == 2
    assert usage.llm_calls == 5 and usage.failed_calls == 1
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0


def test_failures_become_llm_errors_keeping_the_cause():
    seen = []

    def plan():
        outs = yield [LLMRequest.chat("q2")]
        seen.extend(outs)
        return None

    run_plan(plan(), FakeLLM(echo), Usage())
    assert isinstance(seen[0], LLMError) and isinstance(seen[0].__cause__, RuntimeError)


def test_async_matches_sync():
    async def handler(messages):
        return echo(messages)

    usage = Usage()
    out = asyncio.run(arun_plan(two_rounds(), FakeLLM(handler), usage))
    assert out == ["Q0", "Q1", "ERR", "Q3", "FINAL"]
    assert usage.depth == 2 and usage.failed_calls == 1


def test_sync_batch_runs_concurrently_up_to_the_limit():
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow(messages):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return "ok"

    def plan():
        yield [LLMRequest.chat(str(i)) for i in range(12)]

    run_plan(plan(), FakeLLM(slow, max_concurrency=3), Usage())
    assert peak == 3


def test_async_batch_is_concurrent():
    async def slow(messages):
        await asyncio.sleep(0.1)
        return "ok"

    def plan():
        yield [LLMRequest.chat(str(i)) for i in range(10)]

    t0 = time.perf_counter()
    asyncio.run(arun_plan(plan(), FakeLLM(slow), Usage()))
    assert time.perf_counter() - t0 < 0.5  # ten 0.1 s calls side by side, not 1 s in a row


def test_cached_completions_count_as_hits_not_calls():
    def plan():
        yield [LLMRequest.chat("x")]

    usage = Usage()
    run_plan(plan(), FakeLLM(lambda m: Completion("hit", cached=True)), usage)
    assert usage.cache_hits == 1 and usage.llm_calls == 0


def test_fake_llm_survives_deepcopy():
    import copy

    llm = FakeLLM(lambda m: "x")
    llm.complete("hi")
    clone = copy.deepcopy(llm)
    assert clone.complete("again").text == "x"
    assert len(clone.calls) == 2 and len(llm.calls) == 1
