"""Bounded retries with exponential backoff, and per-backend concurrency limits.

:class:`RetryPolicy` decides *whether* and *how long* to wait before retrying a failed
LLM call; :func:`call_with_retries` / :func:`acall_with_retries` run the loop (always a
bounded ``for`` loop: at most ``max_retries + 1`` attempts, never ``while True``).

What is retried (errors are the ones from :mod:`rerank_rag._errors`):

* :class:`~rerank_rag.LLMRateLimitError` (HTTP 429), :class:`~rerank_rag.LLMServerError`
  (HTTP 5xx), :class:`~rerank_rag.LLMTimeoutError` and
  :class:`~rerank_rag.LLMConnectionError`: up to ``max_retries`` times.
* :class:`~rerank_rag.LLMResponseError` marked *malformed* (HTTP 200 with invalid JSON
  or no ``choices``): at most ``retry_malformed`` times (default 1: a truncated body from
  a flaky proxy is often transient, a server that always sends garbage fails fast).
* Any other :class:`~rerank_rag.LLMResponseError` (HTTP 4xx other than 429 and 408,
  e.g. a bad request or a wrong key): never retried.

The wait before retry ``n`` (1-based) is the server's ``retry-after-ms`` /
``Retry-After`` (seconds or an HTTP date) when the error carries one, else
``min(max_delay, initial_delay * multiplier ** (n - 1))`` with jitter; both are capped
by ``max_delay``.

:class:`ConcurrencyLimit` (re-exported here) lives in :mod:`rerank_rag.llm._limit`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .._errors import (
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)
from ._limit import ConcurrencyLimit

__all__ = [
    "ConcurrencyLimit",  # from ._limit
    "RetryPolicy",
    "acall_with_retries",
    "call_with_retries",
    "is_malformed",
    "mark_malformed",
    "parse_retry_after",
]

T = TypeVar("T")

#: Error types retried up to ``max_retries`` times.
TRANSIENT_ERRORS: tuple[type[LLMError], ...] = (
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
    LLMConnectionError,
)


def mark_malformed(err: LLMResponseError) -> LLMResponseError:
    """Flag an :class:`LLMResponseError` as a malformed 200 response (retried once)."""
    err.malformed = True  # type: ignore[attr-defined]
    return err


def is_malformed(err: BaseException) -> bool:
    return isinstance(err, LLMResponseError) and bool(getattr(err, "malformed", False))


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP date. Returns ``None`` when
    absent or unparsable; negative values become 0.
    """
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = lower.get("retry-after")
    if ra is None:
        return None
    ra = ra.strip()
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    import email.utils  # lazy: only HTTP-date hints need it

    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """How failed LLM calls are retried.

    Args:
        max_retries: retries after the first attempt (so at most ``max_retries + 1``
            requests per call). ``0`` disables retries.
        initial_delay: backoff before the first retry, in seconds.
        max_delay: cap on any single wait (backoff and server-requested waits alike).
        multiplier: growth factor of the backoff between retries.
        jitter: ``"full"`` (uniform in ``[0, backoff]``, the AWS "full jitter"),
            ``"equal"`` (``backoff/2 + uniform(0, backoff/2)``) or ``"none"``.
        retry_malformed: how many times a malformed 200 response (invalid JSON, no
            choices) is retried (still bounded by ``max_retries``).
        respect_retry_after: wait what ``Retry-After`` / ``retry-after-ms`` asks
            (capped by ``max_delay``) instead of the computed backoff.
    """

    max_retries: int = 4
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: Literal["full", "equal", "none"] = "full"
    retry_malformed: int = 1
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("initial_delay and max_delay must be >= 0")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if self.jitter not in ("full", "equal", "none"):
            raise ValueError(f"jitter must be 'full', 'equal' or 'none', got {self.jitter!r}")
        if self.retry_malformed < 0:
            raise ValueError("retry_malformed must be >= 0")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Wait before retry number ``retry`` (1-based), without a server hint."""
        if retry < 1:
            raise ValueError("retry numbers start at 1")
        # min() before the power would overflow for huge retry numbers
        exp = min(retry - 1, 64)
        base = min(self.max_delay, self.initial_delay * (self.multiplier**exp))
        r = rng or random
        if self.jitter == "full":
            return r.uniform(0.0, base)
        if self.jitter == "equal":
            return base / 2.0 + r.uniform(0.0, base / 2.0)
        return base

    def delay(
        self, retry: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Wait before retry ``retry``: the server's ``retry_after`` if any, else backoff."""
        if retry_after is not None and self.respect_retry_after:
            return min(self.max_delay, max(0.0, retry_after))
        return self.backoff(retry, rng)

    def should_retry(self, err: BaseException, retry: int, malformed_so_far: int) -> bool:
        """Whether to make retry number ``retry`` (1-based) after ``err``."""
        if retry > self.max_retries:
            return False
        if isinstance(err, TRANSIENT_ERRORS):
            return True
        if is_malformed(err):
            return malformed_so_far < self.retry_malformed
        return False


def _final(err: LLMError, attempts: int) -> LLMError:
    """The error to raise after the last attempt, with ``attempts`` filled in."""
    err.attempts = attempts
    if attempts > 1 and "attempts)" not in str(err):
        new = type(err)(
            f"{err} (gave up after {attempts} attempts)", attempts=attempts, status=err.status
        )
        for k, v in vars(err).items():
            if k not in ("attempts", "status"):
                setattr(new, k, v)
        new.__cause__ = err.__cause__
        new.__suppress_context__ = True
        return new
    return err


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Any] = time.sleep,
    on_retry: Callable[[int, LLMError, float], None] | None = None,
) -> tuple[T, int]:
    """Run ``attempt()`` with bounded retries; return ``(result, retries_made)``.

    ``attempt`` must raise :class:`LLMError` subclasses (with an optional
    ``retry_after`` attribute, in seconds). After the last attempt the error is raised
    with ``attempts`` set.
    """
    malformed = 0
    for n in range(policy.max_retries + 1):
        try:
            return attempt(), n
        except LLMError as err:
            if not policy.should_retry(err, n + 1, malformed):
                raise _final(err, n + 1) from err.__cause__
            if is_malformed(err):
                malformed += 1
            wait = policy.delay(n + 1, getattr(err, "retry_after", None))
            if on_retry is not None:
                on_retry(n + 1, err, wait)
            sleep(wait)
    raise AssertionError(
        "unreachable: the last attempt either returns or raises"
    )  # pragma: no cover


async def acall_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    on_retry: Callable[[int, LLMError, float], None] | None = None,
) -> tuple[T, int]:
    """Async twin of :func:`call_with_retries` (waits with ``asyncio.sleep``)."""
    if sleep is None:
        import asyncio

        sleep = asyncio.sleep
    malformed = 0
    for n in range(policy.max_retries + 1):
        try:
            return await attempt(), n
        except LLMError as err:
            if not policy.should_retry(err, n + 1, malformed):
                raise _final(err, n + 1) from err.__cause__
            if is_malformed(err):
                malformed += 1
            wait = policy.delay(n + 1, getattr(err, "retry_after", None))
            if on_retry is not None:
                on_retry(n + 1, err, wait)
            await sleep(wait)
    raise AssertionError(
        "unreachable: the last attempt either returns or raises"
    )  # pragma: no cover
