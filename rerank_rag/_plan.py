"""Sans-IO drivers: one ranking algorithm, a sync and an async way to run it.

A ranker's algorithm is written once as a *plan*: a generator that yields batches of
:class:`~rerank_rag.llm.LLMRequest` and receives, for each batch, a list with one
entry per request: a :class:`~rerank_rag.llm.Completion` or the
:class:`~rerank_rag.LLMError` that call ended with. The requests of one batch are
independent and run concurrently; each batch is one sequential round (``usage.depth``).

:func:`run_plan` drives a plan with ``backend.complete`` (a batch runs in a thread pool
sized by ``backend.max_concurrency``); :func:`arun_plan` drives it with
``backend.acomplete`` under ``asyncio.gather`` (the backend enforces its own
concurrency limit). Both fill the same :class:`~rerank_rag.Usage`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, Union

from ._errors import LLMError, as_llm_error
from ._types import Usage
from .llm._base import Completion, LLMBackend, LLMRequest

__all__ = ["Plan", "Outcome", "run_plan", "arun_plan"]

T = TypeVar("T")
Outcome = Union[Completion, LLMError]
Plan = Generator[Sequence[LLMRequest], list[Outcome], T]


def _as_llm_error(exc: BaseException) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    return as_llm_error(exc, f"{type(exc).__name__}: {exc}")


def _account(usage: Usage, outcome: Outcome) -> None:
    if isinstance(outcome, Completion):
        if outcome.cached:
            usage.cache_hits += 1
        else:
            usage.llm_calls += 1
            usage.prompt_tokens += outcome.prompt_tokens
            usage.completion_tokens += outcome.completion_tokens
            usage.retries += outcome.retries
    else:
        usage.llm_calls += 1
        usage.failed_calls += 1
        usage.retries += max(0, outcome.attempts - 1)


def _call(backend: LLMBackend, req: LLMRequest) -> Outcome:
    try:
        return backend.complete(req.messages, **req.params)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes an outcome
        return _as_llm_error(exc)


async def _acall(backend: LLMBackend, req: LLMRequest) -> Outcome:
    try:
        return await backend.acomplete(req.messages, **req.params)
    except asyncio.CancelledError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001
        return _as_llm_error(exc)


def run_plan(plan: Plan[T], backend: LLMBackend, usage: Usage) -> T:
    """Run ``plan`` to completion with the backend's sync ``complete``."""
    pool: ThreadPoolExecutor | None = None
    limit = max(1, int(getattr(backend, "max_concurrency", 4) or 1))
    try:
        batch = next(plan)
        while True:
            reqs = list(batch)
            if reqs:
                usage.depth += 1
            if len(reqs) <= 1 or limit == 1:
                outcomes = [_call(backend, r) for r in reqs]
            else:
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="rerank-rag")
                # Each worker runs in a copy of the caller's context (as asyncio.to_thread
                # does), so context variables such as tracing callbacks reach the calls.
                ctxs = [contextvars.copy_context() for _ in reqs]
                outcomes = list(pool.map(lambda r, c: c.run(_call, backend, r), reqs, ctxs))
            for o in outcomes:
                _account(usage, o)
            batch = plan.send(outcomes)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        plan.close()
        if pool is not None:
            pool.shutdown(wait=True)


async def arun_plan(plan: Plan[T], backend: LLMBackend, usage: Usage) -> T:
    """Run ``plan`` to completion with the backend's ``acomplete``, batches concurrently."""
    try:
        batch = next(plan)
        while True:
            reqs = list(batch)
            if reqs:
                usage.depth += 1
            outcomes: list[Any] = list(await asyncio.gather(*(_acall(backend, r) for r in reqs)))
            for o in outcomes:
                _account(usage, o)
            batch = plan.send(outcomes)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        plan.close()
