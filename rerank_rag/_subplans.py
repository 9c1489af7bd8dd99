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
    return False, list(batch)


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
    last: dict[int, int] = {}
    deps: list[list[int]] = []
    for k, (a, b) in enumerate(spans):
        mine = {last[p] for p in range(a, b) if p in last}
        deps.append(sorted(mine))
        for p in range(a, b):
            last[p] = k
    return deps


def run_in_order(
    spans: Sequence[tuple[int, int]], make: Callable[[int], SubPlan[Any]]
) -> Plan[int]:
    """Run operation ``k`` (the sub-plan ``make(k)``, touching ``spans[k]``) for every
    ``k``, each as soon as the earlier operations it overlaps have finished.

    Same result as running them one after the other; returns the number of rounds used.
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

    def finish(k: int) -> None:
        for c in children[k]:
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)

    while ready or active:
        while ready:  # start everything that may start (some finish without a call)
            k = ready.pop(0)
            gen = make(k)
            done, value = _start(gen, None)
            if done:
                finish(k)
            else:
                active[k] = (gen, value)
        if not active:
            break
        keys = sorted(active)
        outcomes = yield [r for k in keys for r in active[k][1]]
        rounds += 1
        pos = 0
        for k in keys:
            gen, batch = active.pop(k)
            m = len(batch)
            done, value = _start(gen, outcomes[pos : pos + m])
            pos += m
            if done:
                finish(k)
            else:
                active[k] = (gen, value)
    return rounds
