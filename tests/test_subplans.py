"""Sub-plans side by side, and the sorting plans built on them (heap and bubble top-k).

The sorting plans are driven here by a judge that answers from a hidden strength table,
without any LLM, so the tests check the algorithms: exact top-k, sequential-equivalence
of the pipelined bubble passes, and how many rounds the parallel schedules save.
"""

from __future__ import annotations

import random

import pytest

from rerank_rag._subplans import gather, run_in_order, sequential_deps
from rerank_rag.llm._base import Completion, LLMRequest
from rerank_rag.setwise import bubble_spans, bubble_top, heap_top


def drive(plan):
    """Run a plan answering every request with an empty completion; (result, rounds, calls)."""
    rounds = calls = 0
    try:
        batch = next(plan)
        while True:
            rounds += bool(batch)
            calls += len(batch)
            batch = plan.send([Completion(text="") for _ in batch])
    except StopIteration as stop:
        return stop.value, rounds, calls


def steps(name, k):
    """A sub-plan of ``k`` one-call rounds returning ``name``."""
    for _ in range(k):
        got = yield [LLMRequest.chat("x")]
        assert len(got) == 1
    return name


def test_gather_runs_side_by_side_and_keeps_the_order():
    result, rounds, calls = drive(gather([steps("a", 3), steps("b", 1), steps("c", 0), steps("d", 2)]))
    assert result == ["a", "b", "c", "d"]
    assert rounds == 3 and calls == 6


def test_gather_answers_empty_batches_without_a_round():
    def lazy():
        got = yield []
        assert got == []
        got = yield [LLMRequest.chat("y")]
        return len(got)

    result, rounds, calls = drive(gather([lazy()]))
    assert result == [1] and rounds == 1 and calls == 1


def test_sequential_deps_are_the_last_earlier_toucher():
    assert sequential_deps([(0, 2), (2, 4), (1, 3), (0, 1)]) == [[], [], [0, 1], [0]]


@pytest.mark.parametrize("seed", range(20))
def test_run_in_order_equals_running_one_after_the_other(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 30)
    spans = []
    for _ in range(rng.randint(1, 40)):
        a = rng.randrange(n - 1)
        spans.append((a, rng.randint(a + 1, min(n, a + 5))))
    rule = {k: rng.random() for k in range(len(spans))}

    def apply(arr, k):  # a deterministic, order-sensitive rewrite of the span
        a, b = spans[k]
        seg = arr[a:b]
        arr[a:b] = seg[1:] + seg[:1] if rule[k] < 0.5 else list(reversed(seg))

    expected = list(range(n))
    for k in range(len(spans)):
        apply(expected, k)
    arr = list(range(n))

    def op(k):
        yield [LLMRequest.chat(str(k))] * rng.randint(1, 2)
        apply(arr, k)

    rounds, used, _ = drive(run_in_order(spans, op))
    assert arr == expected
    assert rounds == used <= len(spans)


# -- the sorting plans ------------------------------------------------------------------


def strength_judge(strength, log=None):
    def judge(group):
        yield [LLMRequest.chat("judge")]
        if log is not None:
            log.append(list(group))
        return max(range(len(group)), key=lambda p: (strength[group[p]], -p))

    return judge


@pytest.mark.parametrize("n", [2, 3, 7, 20, 41])
@pytest.mark.parametrize("arity", [2, 3, 5])
@pytest.mark.parametrize("depth", [1, 4, 10, 50])
def test_heap_top_is_the_exact_top_depth(n, arity, depth):
    rng = random.Random(n * 100 + arity * 10 + depth)
    strength = [rng.random() for _ in range(n)]
    head, rounds, calls = drive(heap_top(list(range(n)), arity, depth, strength_judge(strength)))
    assert head == sorted(range(n), key=lambda i: -strength[i])[: min(depth, n)]
    assert rounds <= calls


def test_heap_build_sifts_a_level_in_one_round():
    n, arity = 100, 3
    strength = list(range(n))  # the worst first: every sift goes to the bottom
    log = []
    head, rounds, calls = drive(heap_top(list(range(n)), arity, 1, strength_judge(strength, log)))
    assert head == [99]
    assert calls > 3 * rounds  # many calls share a round
    assert rounds <= 4 + 3 + 2 + 1  # one round per level and sift step (levels 0..3)


@pytest.mark.parametrize("n", [2, 3, 9, 30])
@pytest.mark.parametrize("block", [2, 3, 4])
@pytest.mark.parametrize("depth", [1, 3, 10])
def test_bubble_top_equals_the_sequential_passes(n, block, depth):
    rng = random.Random(n + block * 7 + depth)
    strength = [rng.random() for _ in range(n)]

    def noisy_best(group):  # deterministic but not a total order: depends on the group
        return max(range(len(group)), key=lambda p: (strength[group[p]] + 0.3 * ((sum(group) * 7919 + p) % 5), -p))

    expected = list(range(n))
    for a, b in bubble_spans(n, block, depth):
        best = noisy_best(expected[a:b])
        expected[a], expected[a + best] = expected[a + best], expected[a]

    def judge(group):
        yield [LLMRequest.chat("j")]
        return noisy_best(group)

    head, rounds, calls = drive(bubble_top(list(range(n)), block, depth, judge))
    assert head == expected[: min(depth, n)]
    assert calls == len(bubble_spans(n, block, depth))


def test_bubble_passes_are_pipelined():
    n, depth = 100, 10
    rng = random.Random(5)
    strength = [rng.random() for _ in range(n)]
    head, rounds, calls = drive(bubble_top(list(range(n)), 2, depth, strength_judge(strength)))
    assert head == sorted(range(n), key=lambda i: -strength[i])[:depth]  # the passes really sort
    assert calls == sum(n - 1 - p for p in range(depth))  # 945 adjacent comparisons
    assert rounds <= n - 1 + 2 * depth  # each pass trails the previous by two steps
    head4, rounds4, calls4 = drive(bubble_top(list(range(n)), 4, depth, strength_judge(strength)))
    assert rounds4 < calls4 / 5


def test_bubble_spans_settle_each_position():
    spans = bubble_spans(10, 4, 3)
    assert spans[:3] == [(6, 10), (3, 7), (0, 4)]  # pass 0: up by steps of 3
    assert [s for s in spans if s[0] == 1][-1] == (1, 4) and spans[-1][0] == 2
    assert all(b - a >= 2 for a, b in spans)
    assert bubble_spans(1, 2, 5) == [] and bubble_spans(5, 2, 0) == []
