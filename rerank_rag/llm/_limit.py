"""``ConcurrencyLimit``: one limit on the calls in flight through a backend instance.

Backends bound how many calls run at once through one instance with it: **one** limit
for every thread and every event loop using the instance (a lock-protected slot count
with a FIFO of waiters; a waiting coroutine awaits a future of its own loop, so it never
blocks the loop, and a slot freed in one thread or loop is handed to the next waiter
wherever it runs). asyncio primitives belong to one loop, so a per-loop semaphore would
give every loop (and the sync path) a limit of its own; this one does not.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:  # asyncio is imported lazily: it costs ~10 ms
    import asyncio

__all__ = ["ConcurrencyLimit"]


class _SyncWaiter:
    """A thread blocked in ``acquire``; woken by ``grant``."""

    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.granted = False

    def grant(self) -> bool:
        self.granted = True
        self.event.set()
        return True


class _AsyncWaiter:
    """A coroutine waiting on a future of its own loop; woken thread-safely."""

    __slots__ = ("loop", "future", "granted")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        self.loop = loop
        self.future = future
        self.granted = False

    def grant(self) -> bool:
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # the waiter's loop is closed: nobody to hand the slot to
            return False
        self.granted = True
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ConcurrencyLimit:
    """At most ``limit`` concurrent calls through one backend instance, in total.

    Use ``with limit:`` on the sync path and ``async with limit:`` on the async path;
    both draw on the same slots, whatever thread or event loop they run in (so
    ``max_concurrency=2`` means two requests in flight, not two per loop). Waiters are
    served first come, first served. An async waiter awaits a future of its own loop
    (the loop keeps running); a cancelled waiter gives back a slot it was just handed.
    """

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_concurrency must be a positive int, got {limit!r}")
        self.limit = limit
        self._lock = threading.Lock()
        self._in_use = 0
        self._waiters: deque[_SyncWaiter | _AsyncWaiter] = deque()

    def __repr__(self) -> str:
        return f"ConcurrencyLimit({self.limit}, in_use={self.in_use})"

    @property
    def in_use(self) -> int:
        """Slots taken right now (by every thread and loop together)."""
        with self._lock:
            return self._in_use

    def _take_or_queue(self, waiter: _SyncWaiter | _AsyncWaiter) -> bool:
        with self._lock:
            if self._in_use < self.limit and not self._waiters:
                self._in_use += 1
                return True
            self._waiters.append(waiter)
            return False

    def _abandon(self, waiter: _SyncWaiter | _AsyncWaiter) -> None:
        """A waiter gave up (cancelled, interrupted): dequeue it, or return its slot."""
        with self._lock:
            if not waiter.granted:
                try:
                    self._waiters.remove(waiter)
                except ValueError:  # popped by a release whose hand-over failed
                    pass
                return
        self.release()

    def release(self) -> None:
        """Free one slot: hand it to the oldest live waiter, else make it available."""
        with self._lock:
            while self._waiters:
                if self._waiters.popleft().grant():
                    return  # the slot changes hands; the count stays
            if self._in_use <= 0:
                raise RuntimeError("ConcurrencyLimit released more often than acquired")
            self._in_use -= 1

    # sync
    def acquire(self) -> None:
        """Take a slot, blocking the calling thread until one is free."""
        waiter = _SyncWaiter()
        if self._take_or_queue(waiter):
            return
        try:
            waiter.event.wait()
        except BaseException:  # KeyboardInterrupt while waiting: never leak the slot
            self._abandon(waiter)
            raise

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # async
    async def aacquire(self) -> None:
        """Take a slot, waiting without blocking the running event loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        waiter = _AsyncWaiter(loop, loop.create_future())
        if self._take_or_queue(waiter):
            return
        try:
            await waiter.future
        except BaseException:  # cancelled while waiting (or right after the hand-over)
            self._abandon(waiter)
            raise

    async def __aenter__(self) -> Self:
        await self.aacquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    # pickling / copying: locks cannot be pickled; a copy gets fresh primitives
    def __getstate__(self) -> dict[str, Any]:
        return {"limit": self.limit}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["limit"])  # type: ignore[misc]
