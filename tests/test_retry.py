"""RetryPolicy, Retry-After parsing, the bounded retry loops and ConcurrencyLimit."""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time

import pytest

from rerank_rag import (
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)
from rerank_rag.llm import RetryPolicy
from rerank_rag.llm._retry import (
    ConcurrencyLimit,
    acall_with_retries,
    call_with_retries,
    mark_malformed,
    parse_retry_after,
)

# -- backoff -----------------------------------------------------------------------


def test_backoff_without_jitter_grows_exponentially_and_is_capped():
    p = RetryPolicy(initial_delay=0.5, multiplier=2, max_delay=3, jitter="none")
    assert [p.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_backoff_huge_retry_number_does_not_overflow():
    p = RetryPolicy(initial_delay=1, multiplier=10, max_delay=7, jitter="none")
    assert p.backoff(10_000) == 7


@pytest.mark.parametrize("retry", [1, 2, 3, 5])
def test_full_jitter_stays_within_zero_and_base(retry):
    p = RetryPolicy(initial_delay=0.5, multiplier=2, max_delay=3, jitter="full")
    base = min(3, 0.5 * 2 ** (retry - 1))
    rng = random.Random(retry)
    waits = [p.backoff(retry, rng) for _ in range(200)]
    assert all(0 <= w <= base for w in waits)
    assert max(waits) > base * 0.8 and min(waits) < base * 0.2  # really spread out


def test_equal_jitter_keeps_at_least_half_the_base():
    p = RetryPolicy(initial_delay=1, multiplier=2, max_delay=30, jitter="equal")
    rng = random.Random(0)
    waits = [p.backoff(3, rng) for _ in range(200)]  # base 4
    assert all(2 <= w <= 4 for w in waits)


def test_retry_after_wins_over_backoff_and_is_capped():
    p = RetryPolicy(initial_delay=0.01, max_delay=5, jitter="none")
    assert p.delay(1, retry_after=2.5) == 2.5
    assert p.delay(1, retry_after=60) == 5
    assert p.delay(1, retry_after=-3) == 0
    assert (
        RetryPolicy(respect_retry_after=False, jitter="none", initial_delay=0.1).delay(1, 9) == 0.1
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"initial_delay": -1},
        {"multiplier": 0.5},
        {"jitter": "sometimes"},
        {"retry_malformed": -1},
    ],
)
def test_invalid_policy_is_rejected(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


# -- Retry-After -------------------------------------------------------------------


def test_parse_retry_after_seconds_ms_and_http_date():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    # retry-after-ms is more precise and takes precedence
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    now = time.time()
    date = email.utils.formatdate(now + 120, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(120, abs=1.5)
    past = email.utils.formatdate(now - 120, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0


@pytest.mark.parametrize("headers", [None, {}, {"Retry-After": "soon"}, {"x": "1"}])
def test_parse_retry_after_absent_or_garbage_is_none(headers):
    assert parse_retry_after(headers) is None


# -- the loop ----------------------------------------------------------------------


class Script:
    """attempt() that raises the scripted errors, then returns 'ok'."""

    def __init__(self, *errors: LLMError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _err(cls, retry_after=None, **kw):
    e = cls("failed", **kw)
    e.retry_after = retry_after
    return e


@pytest.mark.parametrize(
    "cls", [LLMRateLimitError, LLMServerError, LLMTimeoutError, LLMConnectionError]
)
def test_transient_errors_are_retried_until_success(cls):
    script = Script(_err(cls), _err(cls))
    sleeps: list[float] = []
    result, retries = call_with_retries(
        script, RetryPolicy(max_retries=4, initial_delay=0), sleep=sleeps.append
    )
    assert (result, retries, script.calls, len(sleeps)) == ("ok", 2, 3, 2)


@pytest.mark.parametrize(
    "cls", [LLMRateLimitError, LLMServerError, LLMTimeoutError, LLMConnectionError]
)
def test_gives_up_after_max_retries_plus_one_attempts(cls):
    script = Script(*[_err(cls) for _ in range(10)])
    sleeps: list[float] = []
    with pytest.raises(cls) as info:
        call_with_retries(script, RetryPolicy(max_retries=3, initial_delay=0), sleep=sleeps.append)
    assert script.calls == 4 and len(sleeps) == 3
    assert info.value.attempts == 4
    assert "4 attempts" in str(info.value)


def test_client_errors_are_not_retried():
    script = Script(_err(LLMResponseError, status=400))
    with pytest.raises(LLMResponseError) as info:
        call_with_retries(script, RetryPolicy(max_retries=4, initial_delay=0), sleep=lambda s: None)
    assert script.calls == 1 and info.value.attempts == 1 and info.value.status == 400


def test_malformed_responses_are_retried_once():
    script = Script(*[mark_malformed(LLMResponseError("bad json")) for _ in range(5)])
    with pytest.raises(LLMResponseError) as info:
        call_with_retries(script, RetryPolicy(max_retries=4, initial_delay=0), sleep=lambda s: None)
    assert script.calls == 2 and info.value.attempts == 2

    ok = Script(mark_malformed(LLMResponseError("bad json")))
    assert call_with_retries(ok, RetryPolicy(initial_delay=0), sleep=lambda s: None) == ("ok", 1)


def test_waits_follow_retry_after_then_backoff():
    script = Script(
        _err(LLMRateLimitError, retry_after=1.25), _err(LLMServerError), _err(LLMServerError)
    )
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=5, initial_delay=0.1, multiplier=3, jitter="none")
    call_with_retries(script, policy, sleep=sleeps.append)
    assert sleeps == pytest.approx([1.25, 0.3, 0.9])


def test_zero_retries_means_one_attempt():
    script = Script(_err(LLMServerError))
    with pytest.raises(LLMServerError) as info:
        call_with_retries(script, RetryPolicy(max_retries=0), sleep=lambda s: None)
    assert script.calls == 1 and info.value.attempts == 1


def test_on_retry_hook_sees_each_retry():
    seen = []
    script = Script(_err(LLMServerError), _err(LLMTimeoutError))
    call_with_retries(
        script,
        RetryPolicy(initial_delay=0, jitter="none"),
        sleep=lambda s: None,
        on_retry=lambda n, err, wait: seen.append((n, type(err).__name__, wait)),
    )
    assert seen == [(1, "LLMServerError", 0), (2, "LLMTimeoutError", 0)]


def test_non_llm_errors_propagate_immediately():
    calls = 0

    def attempt():
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call_with_retries(attempt, RetryPolicy(initial_delay=0), sleep=lambda s: None)
    assert calls == 1


def test_async_loop_matches_sync_loop():
    script = Script(*[_err(LLMServerError) for _ in range(10)])
    sleeps: list[float] = []

    async def attempt():
        return script()

    async def fake_sleep(s):
        sleeps.append(s)

    async def main():
        return await acall_with_retries(
            attempt, RetryPolicy(max_retries=2, initial_delay=0.1, jitter="none"), sleep=fake_sleep
        )

    with pytest.raises(LLMServerError) as info:
        asyncio.run(main())
    assert script.calls == 3 and info.value.attempts == 3
    assert sleeps == pytest.approx([0.1, 0.2])


# -- ConcurrencyLimit --------------------------------------------------------------


def test_concurrency_limit_sync_threads():
    limit = ConcurrencyLimit(3)
    active = peak = 0
    lock = threading.Lock()

    def work():
        nonlocal active, peak
        with limit:
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.02)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 3


def test_concurrency_limit_is_one_limit_across_event_loops_and_threads():
    limit = ConcurrencyLimit(2)
    active = peak = 0
    lock = threading.Lock()

    def enter():
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)

    def leave():
        nonlocal active
        with lock:
            active -= 1

    async def work():
        async with limit:
            enter()
            await asyncio.sleep(0.01)
            leave()

    def in_new_loop():
        async def many():
            await asyncio.gather(*(work() for _ in range(6)))

        asyncio.run(many())

    def sync_work():
        for _ in range(3):
            with limit:
                enter()
                time.sleep(0.01)
                leave()

    threads = [threading.Thread(target=in_new_loop) for _ in range(3)]
    threads += [threading.Thread(target=sync_work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 2 and limit.in_use == 0
    assert asyncio.run(_one(limit)) == 1  # a later loop still gets slots


async def _one(limit):
    async with limit:
        return limit.in_use


def test_concurrency_limit_over_release_is_an_error():
    with pytest.raises(RuntimeError):
        ConcurrencyLimit(1).release()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_concurrency_limit_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        ConcurrencyLimit(bad)
