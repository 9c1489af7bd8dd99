"""Top-k sorting plans driven by a "pick the best of this group" judge.

A *judge* is ``judge(group) -> sub-plan returning a position``: given candidate indices
in the order they are shown, it makes one or more LLM calls and returns the position in
``group`` of the best one. Setwise ranking judges a whole group in one call; pairwise
(PRP) judges a group by a knockout of two-passage comparisons. Both sort with the same
two algorithms (Zhuang et al., SIGIR 2024; Qin et al., 2023):

* :func:`heap_top`: heapsort with a ``arity``-ary max-heap (a parent and its children
  are one group), stopped after ``depth`` extractions. Building the heap sifts the
  nodes of one level side by side (their subtrees are disjoint), so the build costs one
  round per level and step instead of one per node; each extraction then sifts the root
  down, one round per level.
* :func:`bubble_top`: ``depth`` bubble passes from the bottom with groups of
  ``block_size`` moving up by ``block_size - 1``; the best of each group is swapped to
  its top. Pass ``p + 1`` trails pass ``p`` (:func:`~rerank_rag._subplans.run_in_order`),
  so the passes overlap instead of queueing, with the same result as one after the
  other.

Both return the sorted head (best first, ``min(depth, n)`` items); the ranker appends the
other candidates in first-stage order, as the reference implementations do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._plan import Plan
from .._subplans import SubPlan, gather, run_in_order

__all__ = ["Judge", "heap_top", "bubble_top", "bubble_spans"]

#: ``judge(group) -> sub-plan returning the best position in group``.
Judge = Callable[[list[int]], SubPlan[int]]


def heap_top(items: list[int], arity: int, depth: int, judge: Judge) -> Plan[list[int]]:
    """The best ``depth`` of ``items``, best first, by a partial ``arity``-ary heapsort."""
    if arity < 2:
        raise ValueError(f"a heap needs arity >= 2, got {arity}")
    arr = list(items)
    n = len(arr)

    def sift(i: int, size: int) -> SubPlan[None]:
        while True:
            first = arity * i + 1
            if first >= size:
                return
            group = [i, *range(first, min(first + arity, size))]
            best = yield from judge([arr[j] for j in group])
            if not best:  # the parent is the best: the subtree is a heap again
                return
            j = group[best]
            arr[i], arr[j] = arr[j], arr[i]
            i = j

    level = [0] * n
    for i in range(1, n):
        level[i] = level[(i - 1) // arity] + 1
    by_level: dict[int, list[int]] = {}
    for i in range(n):
        if arity * i + 1 < n:
            by_level.setdefault(level[i], []).append(i)
    for lv in sorted(by_level, reverse=True):
        yield from gather([sift(i, n) for i in by_level[lv]])

    head: list[int] = []
    size = n
    while size > 1 and len(head) < depth:
        head.append(arr[0])
        size -= 1
        arr[0], arr[size] = arr[size], arr[0]
        if len(head) < depth:
            yield from sift(0, size)
    if size == 1 and len(head) < depth:
        head.append(arr[0])
    return head


def bubble_spans(n: int, block_size: int, depth: int) -> list[tuple[int, int]]:
    """The groups ``[start, end)`` of ``depth`` bubble passes, in sequential order.

    Pass ``p`` starts with ``[n - block_size, n)`` and moves up by ``block_size - 1`` until
    its group starts at ``p`` (clamped there, so position ``p`` is settled after it).
    """
    spans: list[tuple[int, int]] = []
    step = block_size - 1
    for p in range(min(depth, n - 1)):
        end = n
        while True:
            start = max(p, end - block_size)
            spans.append((start, end))
            if start == p:
                break
            end -= step
    return spans


def bubble_top(items: list[int], block_size: int, depth: int, judge: Judge) -> Plan[list[int]]:
    """The best ``depth`` of ``items``, best first, by ``depth`` pipelined bubble passes."""
    if block_size < 2:
        raise ValueError(f"bubble sort needs block_size >= 2, got {block_size}")
    arr = list(items)
    spans = bubble_spans(len(arr), block_size, depth)

    def op(k: int) -> SubPlan[Any]:
        a, b = spans[k]
        best = yield from judge(arr[a:b])
        if best:
            arr[a], arr[a + best] = arr[a + best], arr[a]

    yield from run_in_order(spans, op)
    return arr[: min(depth, len(arr))]
