"""Sub-plans: pieces of a ranking plan that run side by side in the same rounds.

A *sub-plan* has the shape of a plan (:mod:`rerank_rag._plan`): a generator that yields a
batch of :class:`~rerank_rag.llm.LLMRequest` and receives one outcome per request. Sorting
rankers are built from many small sub-plans (one heap sift-down, one bubble-sort window,
one tournament group); these helpers merge the batches of the sub-plans that can run at
the same time into one batch per round, so they cost one sequential round instead of one
round each:

* :func:`gather`: run sub-plans side by side, each round sending the union of their
  current batches, until all have finished (results in input order).
* :func:`run_in_order`: run operations that each touch a fixed range of positions, as
  early as their overlaps allow. The outcome is exactly that of running them one after
  the other (an operation starts only after every earlier operation it overlaps has
  finished, and operations that run together touch disjoint positions), in far fewer
  rounds: ``k`` bubble-sort passes pipeline behind each other instead of queueing.

An empty batch needs no call: a sub-plan that yields ``[]`` receives ``[]`` at once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from ._plan import Outcome, Plan
from .llm._base import LLMRequest

__all__ = ["SubPlan", "gather", "run_in_order", "sequential_deps"]

T = TypeVar("T")
SubPlan = Generator[Sequence[LLMRequest], list[Outcome], T]


def _start(gen: SubPlan[Any], value: list[Outcome] | None) -> tuple[bool, Any]:
    """Advance ``gen`` to its next non-empty batch: ``(False, batch)`` or ``(True, result)``."""
    try:
        batch = next(gen) if value is None else gen.send(value)
        while not batch:
            batch = gen.send([])
    except StopIteration as stop:
        return True, stop.value
    return False, batch if batch.__class__ is list else list(batch)


def gather(subplans: Sequence[SubPlan[T]]) -> Plan[list[T]]:
    """Run ``subplans`` in lockstep; returns their results in the order given."""
    results: list[Any] = [None] * len(subplans)
    active: dict[int, list[LLMRequest]] = {}
    for i, gen in enumerate(subplans):
        done, value = _start(gen, None)
        if done:
            results[i] = value
        else:
            active[i] = value
    while active:
        keys = list(active)
        outcomes = yield [r for k in keys for r in active[k]]
        pos = 0
        for k in keys:
            m = len(active[k])
            done, value = _start(subplans[k], outcomes[pos : pos + m])
            pos += m
            if done:
                results[k] = value
                del active[k]
            else:
                active[k] = value
    return results


def sequential_deps(spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """For operations touching positions ``[a, b)`` in this order, the earlier operations
    each one must wait for: per position, the last earlier operation that touched it
    (the others are reached through those)."""
    last = [-1] * max((b for _, b in spans), default=0)  # position -> last operation
    deps: list[list[int]] = []
    append = deps.append
    for k, (a, b) in enumerate(spans):
        if b - a == 2:  # the usual pair (bubble sort with pairs): no set needed
            x, y = last[a], last[a + 1]
            last[a] = last[a + 1] = k
            if x == y:
                append([x] if x >= 0 else [])
            else:
                if x > y:
                    x, y = y, x
                append([x, y] if x >= 0 else [y])
            continue
        mine = sorted(set(last[a:b]))
        if mine and mine[0] < 0:
            del mine[0]
        append(mine)
        last[a:b] = [k] * (b - a)
    return deps


def run_in_order(
    spans: Sequence[tuple[int, int]],
    make: Callable[[int], SubPlan[Any]],
    done: Callable[[int, Any], None] | None = None,
) -> Plan[int]:
    """Run operation ``k`` (the sub-plan ``make(k)``, touching ``spans[k]``) for every
    ``k``, each as soon as the earlier operations it overlaps have finished; when the
    sub-plan of ``k`` returns ``result``, ``done(k, result)`` is called (if given) before
    any operation waiting for ``k`` starts, e.g. to apply the result (cheaper than
    wrapping every sub-plan in one more generator).

    Same result as running them one after the other; returns the number of rounds used.
    The requests of a round are sent in operation order.
    """
    deps = sequential_deps(spans)
    waiting = [len(d) for d in deps]
    children: list[list[int]] = [[] for _ in spans]
    for k, d in enumerate(deps):
        for j in d:
            children[j].append(k)
    ready = [k for k, w in enumerate(waiting) if w == 0]
    active: dict[int, tuple[SubPlan[Any], list[LLMRequest]]] = {}
    rounds = 0
    while True:
        # start everything that may start (an operation may finish without a call, and
        # let others start): ``ready`` grows while it is walked
        i = 0
        while i < len(ready):
            k = ready[i]
            i += 1
            gen = make(k)
            finished, value = _start(gen, None)
            if not finished:
                active[k] = (gen, value)
                continue
            if done is not None:
                done(k, value)
            for c in children[k]:
                waiting[c] -= 1
                if not waiting[c]:
                    ready.append(c)
        ready.clear()
        if not active:
            break
        keys = sorted(active)
        if len(keys) == 1:
            outcomes = yield active[keys[0]][1]
        else:
            outcomes = yield [r for k in keys for r in active[k][1]]
        rounds += 1
        pos = 0
        for k in keys:
            gen, batch = active.pop(k)
            m = len(batch)
            # _start, inlined (this loop runs once per operation and round)
            try:
                value = gen.send(outcomes[pos : pos + m])
                while not value:
                    value = gen.send([])
            except StopIteration as stop:
                pos += m
                if done is not None:
                    done(k, stop.value)
                for c in children[k]:
                    waiting[c] -= 1
                    if not waiting[c]:
                        ready.append(c)
                continue
            pos += m
            active[k] = (gen, value if value.__class__ is list else list(value))
    return rounds
