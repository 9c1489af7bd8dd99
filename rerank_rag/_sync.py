"""Running async user code from sync code, also when the caller already runs an event loop.

``asyncio.run`` refuses to start inside a running loop (a sync ``run()`` called from a
notebook cell, a FastAPI handler, an async test). :func:`run_sync` then runs the
coroutine on its own loop in a worker thread and waits for it, so sync entry points
behave the same wherever they are called from.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

__all__ = ["run_sync", "start_daemon", "is_async_callable"]

T = TypeVar("T")


async def _await(aw: Awaitable[T]) -> T:
    return await aw


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` to completion and return its result (or raise its error).

    Without a running event loop in this thread it runs on a fresh loop here
    (``asyncio.run``); with one, on a fresh loop in a worker thread, while this thread
    waits. The awaitable must not be bound to the caller's loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(awaitable))
    return start_daemon(asyncio.run, _await(awaitable)).result()


def start_daemon(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Call ``fn(*args)`` in a new daemon thread (with a copy of the current context).

    Returns a :class:`concurrent.futures.Future` for the result. A daemon thread never
    holds up interpreter exit, so a caller may stop waiting for it (a timeout) and
    simply abandon the call: Python cannot interrupt a running thread.
    """
    fut: Future[T] = Future()
    ctx = contextvars.copy_context()

    def work() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            result = ctx.run(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    threading.Thread(target=work, name="rerank-rag-worker", daemon=True).start()
    return fut


def is_async_callable(fn: Any) -> bool:
    """True when calling ``fn`` gives a coroutine: an ``async def`` function, an object
    with an ``async def __call__``, or a :func:`functools.partial` of either."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)
    )
