"""The local engine: one event loop, one shared client, a global cap on LLM calls.

Every query runs as its own task through the ranker's ``arank`` (so the core's plan
driver :func:`~rerank_rag._plan.arun_plan` drives it), and all tasks share one
:class:`~rerank_rag.batch._backend.CappedLLM`. A sliding window's next window is queued
as soon as its previous one returns, while other queries' windows keep the server busy:
no query waits for another.

Queries are pulled from the input only as capacity frees (bounded memory): a new query
is admitted when fewer calls wait for a slot than the cap (the server could soon run
dry), the previously admitted query has sent its first call, and fewer than
``max_queries_in_flight`` queries are running.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Container, Iterable
from typing import Any

from .._errors import LLMError, is_permanent
from ._backend import CappedLLM, QueryTrace, current_query, llm_of, with_backend
from ._types import BatchError, BatchQuery, BatchResult, _result, as_batch_query

__all__ = ["LocalEngine", "iter_indexed"]

log = logging.getLogger("rerank_rag.batch")


def iter_indexed(
    queries: Iterable[Any], skip: Container[str] = (), seen: set[str] | None = None
) -> Iterable[tuple[int, BatchQuery]]:
    """``(input index, query)`` for every query not in ``skip``; a query id seen twice
    raises :class:`BatchError` (a run file holds each query once). ``seen`` collects
    every input query id (skipped ones included)."""
    seen = set() if seen is None else seen
    for i, item in enumerate(queries):
        q = as_batch_query(item)
        if q.qid in seen:
            raise BatchError(f"query id {q.qid!r} appears twice in the input (input entry {i})")
        seen.add(q.qid)
        if q.qid in skip:
            continue
        yield i, q


def query_failed(qid: str, exc: BaseException) -> BaseException:
    """The error that stops a batch when ranking ``qid`` raised ``exc``: a permanent LLM
    error as is, anything else as a :class:`BatchError` naming the query."""
    if is_permanent(exc):
        return exc
    err = BatchError(f"query {qid!r} could not be ranked: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


class LocalEngine:
    """Rerank many queries on one machine, keeping the LLM server full.

    Args:
        ranker: any rerank-rag ranker (``arank``). An LLM ranker's backend is wrapped
            in the batch's cap; a ranker without an LLM just runs its queries
            concurrently (at most ``max_queries_in_flight``).
        max_calls_in_flight: the global cap on LLM calls in flight (set it to what the
            server serves at once, e.g. vLLM's ``--max-num-seqs``). The wrapped client's
            own limit should not be lower (a warning says so).
        max_queries_in_flight: upper bound on queries being ranked at once (memory
            bound); default ``4 * max_calls_in_flight``.
        top_n: keep the best ``top_n`` per query (default: all).
    """

    def __init__(
        self,
        ranker: Any,
        *,
        max_calls_in_flight: int = 64,
        max_queries_in_flight: int | None = None,
        top_n: int | None = None,
    ) -> None:
        if not callable(getattr(ranker, "arank", None)):
            raise TypeError(f"ranker must have an async arank(); got {type(ranker).__name__}")
        if isinstance(max_calls_in_flight, bool) or not isinstance(max_calls_in_flight, int) or max_calls_in_flight < 1:
            raise ValueError(f"max_calls_in_flight must be a positive int, got {max_calls_in_flight!r}")
        if max_queries_in_flight is None:
            max_queries_in_flight = 4 * max_calls_in_flight
        if isinstance(max_queries_in_flight, bool) or not isinstance(max_queries_in_flight, int) or max_queries_in_flight < 1:
            raise ValueError(f"max_queries_in_flight must be a positive int, got {max_queries_in_flight!r}")
        self.ranker = ranker
        self.max_calls_in_flight = max_calls_in_flight
        self.max_queries_in_flight = max_queries_in_flight
        self.top_n = top_n
        self.llm: CappedLLM | None = None
        self.input_qids: set[str] = set()  # every input query id (after astream)
        self.done = 0
        self.running = 0
        self.peak_queries_in_flight = 0
        inner = llm_of(ranker)
        own = getattr(inner, "max_concurrency", None) if inner is not None else None
        if isinstance(own, int) and own < max_calls_in_flight:
            log.warning(
                "the ranker's LLM client allows %d calls at once, below the batch cap of %d: "
                "the cap cannot be reached (build the client with max_concurrency=%d)",
                own, max_calls_in_flight, max_calls_in_flight,
            )

    def stats(self) -> dict[str, Any]:
        """Counters for progress reports: queries done/running, LLM calls, tokens."""
        llm = self.llm
        return {
            "queries_done": self.done,
            "queries_running": self.running,
            "calls": llm.calls if llm else 0,
            "calls_in_flight": llm.in_flight if llm else 0,
            "calls_waiting": llm.waiting if llm else 0,
            "tokens": (llm.prompt_tokens + llm.completion_tokens) if llm else 0,
            "retries": llm.retries if llm else 0,
            "failed_calls": llm.failed if llm else 0,
        }

    async def astream(
        self, queries: Iterable[Any], *, skip: Container[str] = ()
    ) -> AsyncIterator[BatchResult]:
        """Rank every query (skipping the ids in ``skip``); yield results as they finish.

        Raises:
            LLMConfigurationError: (or another non-transient LLM error) at the first
                permanent failure: the batch stops, nothing is yielded for the queries
                that saw it.
            BatchError: a query could not be ranked (names it), or the input is bad.
        """
        wake = asyncio.Event()
        starting = 0

        def first_call(trace: QueryTrace) -> None:
            nonlocal starting
            starting -= 1

        inner = llm_of(self.ranker)
        capped = None
        ranker = self.ranker
        if inner is not None:
            capped = CappedLLM(inner, self.max_calls_in_flight, on_change=wake.set, on_first_call=first_call)
            ranker = with_backend(self.ranker, capped)
        self.llm = capped

        finished: deque[asyncio.Task[BatchResult]] = deque()
        tasks: dict[asyncio.Task[BatchResult], tuple[BatchQuery, QueryTrace]] = {}

        def on_done(task: asyncio.Task[BatchResult]) -> None:
            finished.append(task)
            wake.set()

        async def one(index: int, q: BatchQuery, trace: QueryTrace) -> BatchResult:
            current_query.set(trace)
            ranking = await ranker.arank(q.query, list(q.candidates), top_n=self.top_n)
            return _result(index, q, ranking)

        def can_admit() -> bool:
            if len(tasks) >= self.max_queries_in_flight:
                return False
            if capped is None:
                return True
            return starting == 0 and capped.waiting < capped.limit

        self.input_qids = set()
        source = iter(iter_indexed(queries, skip, self.input_qids))
        exhausted = False
        try:
            while True:
                while not exhausted and can_admit():
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                        break
                    index, q = nxt
                    trace = QueryTrace(q.qid)
                    task = asyncio.get_running_loop().create_task(one(index, q, trace))
                    tasks[task] = (q, trace)
                    task.add_done_callback(on_done)
                    if capped is not None:
                        starting += 1
                self.running = len(tasks)
                self.peak_queries_in_flight = max(self.peak_queries_in_flight, len(tasks))
                if capped is not None and capped.fatal is not None:
                    raise capped.fatal
                if not tasks and not finished:
                    if exhausted:
                        return
                if not finished:
                    wake.clear()
                    await wake.wait()
                if capped is not None and capped.fatal is not None:
                    # results finished after a permanent error may hide a fallback
                    raise capped.fatal
                while finished:
                    task = finished.popleft()
                    q, trace = tasks.pop(task)
                    if not trace.issued and capped is not None:
                        starting -= 1
                    exc = task.exception()
                    if exc is not None:
                        raise query_failed(q.qid, exc)
                    self.done += 1
                    self.running = len(tasks)
                    yield task.result()
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self.running = 0


def permanent_error_message(err: LLMError, done: int) -> str:
    """One line for the CLI when a permanent error stopped the batch."""
    return (
        f"stopped: a permanent LLM error ({type(err).__name__}: {err}); no fallback ranking "
        f"was written for it. {done} queries were finished and saved; fix the setting and "
        "rerun the same command to resume."
    )

