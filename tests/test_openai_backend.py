"""OpenAICompatibleLLM against a real HTTP server (rerank_rag.testing.ChatServer).

No patching of the openai client: every behaviour is observed on the wire, from the
server's side (request bodies, arrival times, concurrency peak).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("openai")

import itertools

from rerank_rag import (
    LLMConnectionError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
    MissingDependencyError,
)
from rerank_rag.llm import OpenAICompatibleLLM, RetryPolicy
from rerank_rag.testing import ChatServer, Reply

MSG = [
    {"role": "system", "content": "You rank passages."},
    {"role": "user", "content": "Rank [1] [2]"},
]
SECRET = "sk-test-SECRET-0123456789abcdef"
FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, jitter="none")


def _llm(srv: ChatServer, **kw) -> OpenAICompatibleLLM:
    kw.setdefault("retry_policy", FAST)
    kw.setdefault("api_key", SECRET)
    return OpenAICompatibleLLM("test-model", base_url=srv.base_url, **kw)


def _sequence(*replies):
    """A handler answering the given replies in order, then repeating the last one."""
    items = list(replies)
    lock = threading.Lock()

    def handler(body):
        with lock:
            return items.pop(0) if len(items) > 1 else items[0]

    return handler


# -- parsing and request fields -----------------------------------------------------


def test_text_usage_and_logprobs_are_parsed():
    reply = Reply(
        text="[2] > [1]",
        prompt_tokens=42,
        completion_tokens=5,
        top_logprobs={"2": -0.05, "1": -3.2},
    )
    with ChatServer(lambda b: reply) as srv, _llm(srv) as llm:
        out = llm.complete(MSG, top_logprobs=2)
    assert out.text == "[2] > [1]"
    assert (out.prompt_tokens, out.completion_tokens) == (42, 5)
    assert out.top_logprobs == {"2": -0.05, "1": -3.2}
    assert out.retries == 0 and out.cached is False and out.model == "test-model"


def test_no_logprobs_unless_asked():
    reply = Reply(text="x", top_logprobs={"x": -0.1})
    with ChatServer(lambda b: reply) as srv, _llm(srv) as llm:
        out = llm.complete(MSG)
        assert "logprobs" not in srv.requests[0] and "top_logprobs" not in srv.requests[0]
    assert out.top_logprobs is None


def test_params_arrive_in_the_request_body():
    with ChatServer(lambda b: "ok") as srv:
        llm = _llm(srv, seed=7, default_params={"top_p": 0.5, "n": 1})
        llm.complete(
            MSG,
            max_tokens=12,
            stop=["\n"],
            top_logprobs=3,
            logit_bias={42: 5},
            custom_field="x",
            callbacks=[object()],
        )
        llm.complete(MSG, temperature=0.7, seed=1, top_p=0.9)
        llm.close()
        first, second = srv.requests
    assert first["model"] == "test-model"
    assert first["messages"] == MSG
    assert first["temperature"] == 0.0  # our default
    assert first["seed"] == 7
    assert first["max_tokens"] == 12
    assert first["stop"] == ["\n"]
    assert first["logprobs"] is True and first["top_logprobs"] == 3
    assert first["logit_bias"] == {"42": 5.0}
    assert first["custom_field"] == "x" and first["top_p"] == 0.5 and first["n"] == 1
    assert "callbacks" not in first
    assert second["temperature"] == 0.7 and second["seed"] == 1 and second["top_p"] == 0.9
    assert "max_tokens" not in second


def test_seed_not_sent_when_none_and_prompt_string_accepted():
    with ChatServer(lambda b: "ok") as srv, _llm(srv) as llm:
        llm.complete("just a prompt")
        body = srv.requests[0]
    assert "seed" not in body
    assert body["messages"] == [{"role": "user", "content": "just a prompt"}]


def test_missing_usage_is_estimated():
    body = '{"model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "abcdefgh"}}]}'
    with ChatServer(lambda b: Reply(body=body)) as srv, _llm(srv) as llm:
        out = llm.complete(MSG)
    assert out.text == "abcdefgh"
    assert out.completion_tokens == 2
    assert out.prompt_tokens > 0


def test_async_path_parses_the_same():
    reply = Reply(text="yes", top_logprobs={"yes": -0.1, "no": -2.5})
    with ChatServer(lambda b: reply) as srv:
        llm = _llm(srv)

        async def main():
            async with llm:
                return await llm.acomplete(MSG, top_logprobs=2, max_tokens=1)

        out = asyncio.run(main())
        assert srv.requests[0]["max_tokens"] == 1
    assert out.text == "yes" and out.top_logprobs == {"yes": -0.1, "no": -2.5}


# -- retries ------------------------------------------------------------------------


PATIENT = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=30, jitter="none")


def test_retry_after_is_waited_for_then_success():
    handler = _sequence(Reply(status=429, headers={"Retry-After": "1"}), Reply(text="finally"))
    with ChatServer(handler) as srv, _llm(srv, retry_policy=PATIENT) as llm:
        out = llm.complete(MSG)
        gap = srv.request_times[1] - srv.request_times[0]
    assert out.text == "finally" and out.retries == 1
    assert len(srv.requests) == 2
    assert gap >= 0.95  # honoured the server, not the 10 ms backoff


def test_retry_after_ms_header_is_honoured():
    handler = _sequence(Reply(status=503, headers={"retry-after-ms": "300"}), Reply(text="ok"))
    with ChatServer(handler) as srv, _llm(srv, retry_policy=PATIENT) as llm:
        assert llm.complete(MSG).text == "ok"
        gap = srv.request_times[1] - srv.request_times[0]
    assert gap >= 0.28


def test_retry_after_is_capped_by_max_delay():
    handler = _sequence(Reply(status=429, headers={"Retry-After": "60"}), Reply(text="ok"))
    policy = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.2, jitter="none")
    with ChatServer(handler) as srv, _llm(srv, retry_policy=policy) as llm:
        assert llm.complete(MSG).text == "ok"
        gap = srv.request_times[1] - srv.request_times[0]
    assert 0.19 <= gap < 5


@pytest.mark.parametrize(
    ("status", "error"), [(429, LLMRateLimitError), (500, LLMServerError), (503, LLMServerError)]
)
def test_persistent_failure_makes_exactly_max_retries_plus_one_requests(status, error):
    with ChatServer(lambda b: Reply(status=status, text="nope")) as srv, _llm(srv) as llm:
        with pytest.raises(error) as info:
            llm.complete(MSG)
        assert len(srv.requests) == FAST.max_retries + 1
    assert info.value.attempts == FAST.max_retries + 1
    assert info.value.status == status


def test_async_persistent_failure_is_bounded_too():
    with ChatServer(lambda b: Reply(status=500)) as srv:
        llm = _llm(srv, retry_policy=RetryPolicy(max_retries=2, initial_delay=0.01, jitter="none"))

        async def call():
            async with llm:
                return await llm.acomplete(MSG)

        with pytest.raises(LLMServerError) as info:
            asyncio.run(call())
        assert len(srv.requests) == 3
    assert info.value.attempts == 3


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(
        max_retries=4, initial_delay=0.1, multiplier=3, max_delay=0.3, jitter="none"
    )
    with ChatServer(lambda b: Reply(status=500)) as srv, _llm(srv, retry_policy=policy) as llm:
        with pytest.raises(LLMServerError):
            llm.complete(MSG)
        t = srv.request_times
    gaps = [b - a for a, b in itertools.pairwise(t)]
    assert len(gaps) == 4
    # planned waits 0.1, 0.3, then capped at 0.3 (uncapped would be 0.9 and 2.7)
    assert gaps[0] >= 0.09 and gaps[1] >= 0.29
    assert gaps[1] > gaps[0] + 0.1  # grew
    assert gaps[2] >= 0.29 and gaps[3] >= 0.29
    assert gaps[2] < 0.8 and gaps[3] < 0.8  # capped


def test_timeouts_are_retried_then_raise_timeout_error():
    with ChatServer(lambda b: Reply(text="too late", delay=2.0)) as srv:
        llm = _llm(srv, timeout=0.2, retry_policy=RetryPolicy(max_retries=1, initial_delay=0.01))
        with pytest.raises(LLMTimeoutError) as info:
            llm.complete(MSG)
        assert len(srv.requests) == 2
        llm.close()
    assert info.value.attempts == 2


def test_timeout_then_success():
    handler = _sequence(Reply(text="slow", delay=2.0), Reply(text="fast"))
    with ChatServer(handler) as srv, _llm(srv, timeout=0.2) as llm:
        out = llm.complete(MSG)
    assert out.text == "fast" and out.retries == 1


def test_per_call_timeout_overrides_default():
    no_retry = RetryPolicy(max_retries=0)
    with (
        ChatServer(lambda b: Reply(text="slow", delay=2.0)) as srv,
        _llm(srv, timeout=30, retry_policy=no_retry) as llm,
        pytest.raises(LLMTimeoutError) as info,
    ):
        llm.complete(MSG, timeout=0.2)
    assert info.value.attempts == 1


def test_connection_reset_is_retried():
    handler = _sequence(Reply(reset=True), Reply(reset=True), Reply(text="recovered"))
    with ChatServer(handler) as srv, _llm(srv) as llm:
        out = llm.complete(MSG)
        assert len(srv.requests) == 3
    assert out.text == "recovered" and out.retries == 2


def test_persistent_reset_raises_connection_error():
    with ChatServer(lambda b: Reply(reset=True)) as srv, _llm(srv) as llm:
        with pytest.raises(LLMConnectionError) as info:
            llm.complete(MSG)
        assert len(srv.requests) == FAST.max_retries + 1
    assert info.value.attempts == FAST.max_retries + 1


def test_unreachable_server_raises_connection_error():
    srv = ChatServer().start()
    url = srv.base_url
    srv.stop()  # nothing listens on that port any more
    llm = OpenAICompatibleLLM(
        "m", base_url=url, retry_policy=RetryPolicy(max_retries=1, initial_delay=0.01)
    )
    with pytest.raises(LLMConnectionError) as info:
        llm.complete(MSG)
    assert info.value.attempts == 2


@pytest.mark.parametrize(
    "body", ["{not json", '{"id": "x", "object": "chat.completion"}', '{"choices": []}', "[]"]
)
def test_malformed_body_raises_response_error_after_one_retry(body):
    with ChatServer(lambda b: Reply(body=body)) as srv, _llm(srv) as llm:
        with pytest.raises(LLMResponseError) as info:
            llm.complete(MSG)
        assert len(srv.requests) == 2  # documented: one retry for malformed bodies
    assert "malformed" in str(info.value)


def test_malformed_then_valid_body_succeeds():
    handler = _sequence(Reply(body="{truncated"), Reply(text="fine"))
    with ChatServer(handler) as srv, _llm(srv) as llm:
        out = llm.complete(MSG)
    assert out.text == "fine" and out.retries == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(status):
    with ChatServer(lambda b: Reply(status=status, text="bad request")) as srv, _llm(srv) as llm:
        with pytest.raises(LLMResponseError) as info:
            llm.complete(MSG)
        assert len(srv.requests) == 1
    assert info.value.status == status and info.value.attempts == 1


# -- concurrency ----------------------------------------------------------------------


def test_sync_concurrency_limit_holds_across_threads():
    with (
        ChatServer(lambda b: Reply(text="ok", delay=0.15)) as srv,
        _llm(srv, max_concurrency=3) as llm,
    ):
        with ThreadPoolExecutor(12) as pool:
            outs = list(
                pool.map(
                    lambda i: llm.complete([{"role": "user", "content": str(i)}]).text, range(12)
                )
            )
        assert outs == ["ok"] * 12
        assert srv.peak_concurrency == 3  # reached, never exceeded


def test_async_concurrency_limit_holds_in_each_event_loop():
    with ChatServer(lambda b: Reply(text="ok", delay=0.15)) as srv:
        llm = _llm(srv, max_concurrency=3)

        async def burst():
            outs = await asyncio.gather(*(llm.acomplete(f"q{i}") for i in range(12)))
            await llm.aclose()
            return outs

        for _ in range(2):  # a second asyncio.run: new loop, new semaphore and client
            srv.wait_idle()
            srv.clear()
            outs = asyncio.run(burst())
            assert [o.text for o in outs] == ["ok"] * 12
            assert srv.peak_concurrency == 3
    assert llm.max_concurrency == 3


def test_one_limit_across_sync_threads_and_several_event_loops_at_once():
    """max_concurrency is one limit per instance: 2 sync threads and 3 threads each
    running its own event loop, all at once, never have more than 2 requests in flight
    (measured by the server)."""
    with ChatServer(lambda b: Reply(text="ok", delay=0.03)) as srv:
        llm = _llm(srv, max_concurrency=2)
        start = threading.Barrier(5)

        def sync_worker(t):
            start.wait()
            return [llm.complete(f"s{t}-{i}").text for i in range(4)]

        def loop_worker(t):
            async def burst():
                outs = await asyncio.gather(*(llm.acomplete(f"a{t}-{i}") for i in range(6)))
                return [o.text for o in outs]

            start.wait()
            return asyncio.run(burst())

        with ThreadPoolExecutor(5) as pool:
            futs = [pool.submit(sync_worker, t) for t in range(2)]
            futs += [pool.submit(loop_worker, t) for t in range(3)]
            outs = [text for f in futs for text in f.result(timeout=30)]
        llm.close()
        srv.wait_idle()
        assert outs == ["ok"] * (2 * 4 + 3 * 6)
        assert len(srv.requests) == 26  # no retries: nothing failed
        assert srv.peak_concurrency == 2  # reached, never exceeded
    assert llm._limit.in_use == 0  # every slot given back


def test_cancelled_async_waiters_give_their_slots_back():
    with ChatServer(lambda b: Reply(text="ok", delay=0.05)) as srv:
        llm = _llm(srv, max_concurrency=1)

        async def main():
            tasks = [asyncio.ensure_future(llm.acomplete(f"q{i}")) for i in range(4)]
            await asyncio.sleep(0.01)
            for t in tasks[1:]:
                t.cancel()  # cancelled while queued for the single slot
            await asyncio.gather(*tasks, return_exceptions=True)
            out = await llm.acomplete("after")  # the slot is free again
            await llm.aclose()
            return out

        assert asyncio.run(asyncio.wait_for(main(), 10)).text == "ok"
    assert llm._limit.in_use == 0


def test_default_limit_sends_one_jointrank_round_at_once():
    from rerank_rag.jointrank import JointRanker

    together = threading.Barrier(20, timeout=10)  # answers only once all 20 are in

    def handler(body):
        together.wait()
        return "[1]"

    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM(
            "test-model", base_url=srv.base_url, api_key=SECRET, retry_policy=FAST, timeout=30
        )
        ranking = JointRanker(llm).rank("q", [f"passage {i}" for i in range(100)])
        llm.close()
        srv.wait_idle()
        assert srv.errors == []  # no barrier timed out: the 20 blocks were in flight together
        assert ranking.usage.llm_calls == 20 and ranking.usage.depth == 1
        assert ranking.usage.failed_calls == 0 and srv.peak_concurrency == 20


# -- configuration and secrets --------------------------------------------------------


def test_api_key_never_leaks(caplog):
    def echo_auth(body):  # a hostile server echoing the Authorization header back
        return Reply(status=401, text=f"Incorrect API key provided: {SECRET}")

    caplog.set_level(logging.DEBUG, logger="rerank_rag")
    with ChatServer(echo_auth) as srv, _llm(srv, cache=None) as llm:
        with pytest.raises(LLMResponseError) as info:
            llm.complete(MSG)
        assert srv.log[0].headers["authorization"] == f"Bearer {SECRET}"  # it was sent...
        texts = [
            repr(llm),
            str(llm),
            str(llm.to_config()),
            str(llm.cache_identity()),
            str(vars(llm)),
            str(info.value),
            repr(info.value),
            "".join(traceback.format_exception(info.value)),
            caplog.text,
        ]
    for text in texts:  # ...but is nowhere else
        assert SECRET not in text


def test_api_key_not_in_retry_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="rerank_rag")
    with ChatServer(_sequence(Reply(status=500), Reply(text="ok"))) as srv, _llm(srv) as llm:
        llm.complete(MSG)
    assert "retry 1/3" in caplog.text
    assert SECRET not in caplog.text


def test_env_vars_supply_base_url_and_key(monkeypatch):
    with ChatServer(lambda b: "env ok") as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
        with OpenAICompatibleLLM("m") as llm:
            assert llm.complete(MSG).text == "env ok"
        assert srv.log[0].headers["authorization"] == "Bearer sk-from-env"


def test_local_server_without_key_gets_a_placeholder(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatServer(lambda b: "ok") as srv, OpenAICompatibleLLM("m", base_url=srv.base_url) as llm:
        llm.complete(MSG)
        assert srv.log[0].headers["authorization"] == "Bearer not-needed"


def test_openai_api_without_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAICompatibleLLM("gpt-4o-mini")


def test_to_config_round_trips_without_the_key():
    with ChatServer(lambda b: "ok") as srv:
        llm = _llm(srv, seed=3, max_concurrency=5, default_params={"top_p": 0.9})
        cfg = llm.to_config()
        import json

        json.dumps(cfg)  # JSON-able
        again = OpenAICompatibleLLM.from_config(cfg, api_key="other")
        assert again.to_config() == cfg
        assert llm.cache_identity()["base_url"] == srv.base_url
        assert llm.cache_identity()["model"] == "test-model"


def test_missing_openai_raises_missing_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` fail
    with pytest.raises(MissingDependencyError, match=r"rerank-rag\[openai\]"):
        OpenAICompatibleLLM("m", base_url="http://127.0.0.1:1/v1")


@pytest.mark.parametrize("kwargs", [{"max_concurrency": 0}, {"timeout": 0}, {"max_retries": -1}])
def test_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        OpenAICompatibleLLM("m", base_url="http://127.0.0.1:1/v1", **kwargs)


def test_bad_top_logprobs_value_is_rejected_before_any_request():
    with ChatServer(lambda b: "ok") as srv, _llm(srv) as llm:
        with pytest.raises(ValueError, match="top_logprobs"):
            llm.complete(MSG, top_logprobs="three")
        assert srv.requests == []


def test_drives_a_plan_through_the_sync_and_async_drivers():
    from rerank_rag._plan import arun_plan, run_plan
    from rerank_rag._types import Usage
    from rerank_rag.llm import LLMRequest

    def plan():
        outs = yield [LLMRequest.chat(f"q{i}") for i in range(4)]
        return [o.text for o in outs]

    with (
        ChatServer(_sequence(Reply(status=500), Reply(text="a"))) as srv,
        _llm(srv, max_concurrency=2) as llm,
    ):
        usage = Usage()
        assert run_plan(plan(), llm, usage) == ["a"] * 4
        assert usage.llm_calls == 4 and usage.retries == 1 and usage.depth == 1
        assert usage.prompt_tokens > 0 and usage.completion_tokens == 4
        usage2 = Usage()

        async def drive():
            async with llm:
                return await arun_plan(plan(), llm, usage2)

        assert asyncio.run(drive()) == ["a"] * 4
        assert usage2.llm_calls == 4 and usage2.retries == 0


def test_copy_and_pickle_rebuild_clients_and_keep_the_cache():
    import copy
    import pickle

    from rerank_rag.llm import MemoryCache

    with ChatServer(lambda b: "ok") as srv:
        llm = _llm(srv, cache=MemoryCache())
        llm.complete(MSG)
        clones = [copy.deepcopy(llm), pickle.loads(pickle.dumps(llm))]
        for clone in clones:
            assert clone.complete(MSG).cached is True  # the cache came along
            assert clone.complete("new prompt").text == "ok"  # a fresh client works
            clone.close()
        llm.close()
        assert len(srv.requests) == 3


def test_asyncio_run_in_a_script_leaves_no_open_connection(tmp_path):
    # Each asyncio.run() makes a new loop with its own async client; 0.1.0 left each of
    # those clients' sockets open ("unclosed transport", and "Task exception was never
    # retrieved" when collected later). The client now closes with its loop.
    import subprocess

    script = tmp_path / "script.py"
    script.write_text(
        "import asyncio, gc\n"
        "from rerank_rag.testing import ChatServer\n"
        "from rerank_rag.llm import OpenAICompatibleLLM\n"
        "from rerank_rag import ListwiseRanker\n"
        "with ChatServer(lambda b: '[2] > [1]') as srv:\n"
        "    llm = OpenAICompatibleLLM('m', base_url=srv.base_url, api_key='x')\n"
        "    ranker = ListwiseRanker(llm)\n"
        "    for _ in range(3):\n"
        "        assert asyncio.run(ranker.arank('q', ['a', 'b', 'c'])).order == (1, 0, 2)\n"
        "    async def explicit():\n"
        "        await llm.acomplete('hi')\n"
        "        await llm.aclose()\n"
        "    asyncio.run(explicit())\n"
        "    gc.collect()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-X", "dev", str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    assert "unclosed" not in out.stderr and "never retrieved" not in out.stderr, out.stderr[-2000:]


_NO_HTTPX = r"""
import asyncio, sys
sys.modules["httpx"] = None  # as in an environment where only the SDK's own HTTP library is installed
try:
    import openai  # noqa: F401
except ImportError:
    print("SKIP: this openai version needs httpx itself")
    raise SystemExit(0)
from rerank_rag.llm import OpenAICompatibleLLM
from rerank_rag.testing import ChatServer, Reply
with ChatServer(lambda body: Reply(text="[2] > [1]")) as srv:
    llm = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key="k")
    print(llm.complete("Rank [1] [2]").text)
    print(asyncio.run(llm.acomplete("Rank [1] [2]")).text)
"""


def test_client_works_without_the_httpx_package():
    # openai >= 3 talks through httpx2: the client must not import httpx itself (the
    # offline demo's environment has no httpx; every call failed with ImportError)
    import subprocess

    out = subprocess.run([sys.executable, "-c", _NO_HTTPX], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("SKIP"):
        pytest.skip(out.stdout.strip())
    assert out.stdout.split() == ["[2]", ">", "[1]", "[2]", ">", "[1]"]
