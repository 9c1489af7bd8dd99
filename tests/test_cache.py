"""Response cache: keys, stores, CachedLLM, and the cache inside OpenAICompatibleLLM."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerank_rag import LLMServerError
from rerank_rag.llm import CachedLLM, Completion, FakeLLM, MemoryCache, SQLiteCache
from rerank_rag.llm._cache import cache_key

MSG = [{"role": "user", "content": "Rank [1] [2]"}]


# -- keys ---------------------------------------------------------------------------


def test_key_is_stable_and_sensitive_to_every_input():
    ident = {"backend": "x", "model": "m"}
    k = cache_key(ident, MSG, {"max_tokens": 5, "seed": 1})
    assert k == cache_key(dict(reversed(list(ident.items()))), MSG, {"seed": 1, "max_tokens": 5})
    assert len(k) == 64 and int(k, 16) >= 0
    assert k != cache_key({"backend": "x", "model": "m2"}, MSG, {"max_tokens": 5, "seed": 1})
    assert k != cache_key(
        ident, [{"role": "user", "content": "Rank [2] [1]"}], {"max_tokens": 5, "seed": 1}
    )
    assert k != cache_key(
        ident, [{"role": "system", "content": "Rank [1] [2]"}], {"max_tokens": 5, "seed": 1}
    )
    assert k != cache_key(ident, MSG, {"max_tokens": 6, "seed": 1})
    # parameters that cannot change the answer are ignored
    assert k == cache_key(
        ident, MSG, {"max_tokens": 5, "seed": 1, "callbacks": [object()], "timeout": 3}
    )


def test_key_does_not_contain_identity_secrets():
    from rerank_rag.llm._cache import backend_identity

    class Backend:
        def cache_identity(self):
            return {
                "backend": "b",
                "model": "m",
                "api_key": "sk-XYZ",
                "auth_token": "t",
                "max_tokens": 3,
            }

    ident = backend_identity(Backend())
    assert ident == {"backend": "b", "model": "m", "max_tokens": 3}


# -- stores -------------------------------------------------------------------------


def test_memory_cache_round_trip_copy_and_lru():
    cache = MemoryCache(max_entries=2)
    value = {"text": "a"}
    cache.set("k1", value)
    value["text"] = "mutated"
    assert cache.get("k1") == {"text": "a"}  # stored a copy
    cache.set("k2", {"text": "b"})
    cache.get("k1")  # k1 is now the most recently used
    cache.set("k3", {"text": "c"})
    assert cache.get("k2") is None and cache.get("k1") == {"text": "a"} and len(cache) == 2


def test_sqlite_cache_persists_and_is_shared(tmp_path):
    path = tmp_path / "sub" / "cache.sqlite"
    with SQLiteCache(path) as a, SQLiteCache(path) as b:
        a.set("k", {"text": "x", "prompt_tokens": 1})
        assert b.get("k") == {"text": "x", "prompt_tokens": 1}
        assert len(b) == 1
    with SQLiteCache(path) as c:  # reopened
        assert c.get("k") == {"text": "x", "prompt_tokens": 1}
        c.clear()
        assert c.get("k") is None


def test_sqlite_cache_stores_plain_json(tmp_path):
    path = tmp_path / "c.sqlite"
    with SQLiteCache(path) as cache:
        cache.set("k", Completion(text="hi", prompt_tokens=3, top_logprobs={"h": -0.1}).to_json())
    rows = sqlite3.connect(path).execute("SELECT key, value FROM responses").fetchall()
    assert rows[0][0] == "k"
    assert json.loads(rows[0][1])["text"] == "hi"


def test_sqlite_cache_is_thread_safe(tmp_path):
    cache = SQLiteCache(tmp_path / "t.sqlite")

    def work(i):
        cache.set(f"k{i}", {"text": str(i)})
        return cache.get(f"k{i}")

    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(work, range(200)))
    assert out == [{"text": str(i)} for i in range(200)]
    assert len(cache) == 200
    cache.close()
    with pytest.raises(RuntimeError):
        cache.get("k1")


# -- CachedLLM over any backend ------------------------------------------------------


def test_cached_llm_hit_makes_no_backend_call():
    fake = FakeLLM(lambda m: "[2] > [1]")
    llm = CachedLLM(fake, MemoryCache())
    first = llm.complete(MSG, max_tokens=5)
    second = llm.complete(MSG, max_tokens=5)
    assert len(fake.calls) == 1
    assert first.cached is False and second.cached is True
    assert second.text == first.text and second.prompt_tokens == first.prompt_tokens
    assert (llm.hits, llm.misses) == (1, 1)
    llm.complete(MSG, max_tokens=6)  # different params: a miss
    assert len(fake.calls) == 2


def test_cached_llm_does_not_cache_failures():
    attempts = 0

    def flaky(messages):
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise LLMServerError("down")
        return "ok"

    cache = MemoryCache()
    llm = CachedLLM(FakeLLM(flaky), cache)
    with pytest.raises(LLMServerError):
        llm.complete(MSG)
    assert len(cache) == 0
    assert llm.complete(MSG).text == "ok"
    assert llm.complete(MSG).cached is True
    assert attempts == 2


def test_cached_llm_async_and_sync_share_entries():
    fake = FakeLLM(lambda m: "x")
    llm = CachedLLM(fake, MemoryCache())

    async def main():
        a = await llm.acomplete(MSG)
        b = await llm.acomplete(MSG)
        return a, b

    a, b = asyncio.run(main())
    assert (a.cached, b.cached) == (False, True)
    assert llm.complete(MSG).cached is True
    assert len(fake.calls) == 1


def test_cached_llm_concurrent_tasks_are_safe(tmp_path):
    fake = FakeLLM(lambda m: m[0]["content"].upper())
    llm = CachedLLM(fake, SQLiteCache(tmp_path / "a.sqlite"))

    async def burst():
        return await asyncio.gather(*(llm.acomplete(f"q{i % 10}") for i in range(50)))

    first = asyncio.run(burst())
    assert [c.text for c in first] == [f"Q{i % 10}" for i in range(50)]
    calls = len(fake.calls)
    assert 10 <= calls <= 50  # concurrent misses may each call; never more than requests
    second = asyncio.run(burst())
    assert all(c.cached for c in second) and len(fake.calls) == calls


def test_cached_llm_exposes_backend_description():
    fake = FakeLLM(lambda m: "x", max_concurrency=3, name="f")
    llm = CachedLLM(fake, MemoryCache())
    assert llm.max_concurrency == 3
    assert llm.cache_identity() == {"backend": "fake", "model": "f"}
    assert llm.to_config()["backend"] == fake.to_config()
    json.dumps(llm.to_config())


def test_cached_llm_rejects_non_cache():
    with pytest.raises(TypeError):
        CachedLLM(FakeLLM(), object())


def test_cache_identity_separates_models():
    cache = MemoryCache()
    a = CachedLLM(FakeLLM(lambda m: "A", name="a"), cache)
    b = CachedLLM(FakeLLM(lambda m: "B", name="b"), cache)
    assert a.complete(MSG).text == "A"
    assert b.complete(MSG).text == "B"  # not A's cached answer


def test_cached_completion_feeds_usage_cache_hits():
    from rerank_rag._plan import run_plan
    from rerank_rag._types import Usage
    from rerank_rag.llm import LLMRequest

    llm = CachedLLM(FakeLLM(lambda m: "x"), MemoryCache())

    def plan():
        yield [LLMRequest.chat("same"), LLMRequest.chat("other")]
        yield [LLMRequest.chat("same")]

    usage = Usage()
    run_plan(plan(), llm, usage)
    assert (usage.llm_calls, usage.cache_hits) == (2, 1)


# -- inside OpenAICompatibleLLM, over real HTTP --------------------------------------

SECRET = "sk-cache-test-SECRET-987654321"


def test_openai_cache_hits_make_zero_requests_and_sqlite_is_shared(tmp_path):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer, Reply

    path = tmp_path / "llm.sqlite"
    reply = Reply(text="[1] > [2]", top_logprobs={"[": -0.01})
    with ChatServer(lambda b: reply) as srv:
        with OpenAICompatibleLLM(
            "m", base_url=srv.base_url, api_key=SECRET, cache=SQLiteCache(path)
        ) as one:
            a = one.complete(MSG, top_logprobs=1)
            b = one.complete(MSG, top_logprobs=1)
        assert len(srv.requests) == 1
        assert (a.cached, b.cached) == (False, True)
        assert b.text == a.text and b.top_logprobs == a.top_logprobs == {"[": -0.01}
        # a second instance (think: a second process) sharing the file hits too
        two = OpenAICompatibleLLM(
            "m", base_url=srv.base_url, api_key=SECRET, cache=SQLiteCache(path)
        )
        assert two.complete(MSG, top_logprobs=1).cached is True
        assert asyncio.run(two.acomplete(MSG, top_logprobs=1)).cached is True  # no client opened
        assert len(srv.requests) == 1
        # a different model or param is a different key
        assert two.complete(MSG, top_logprobs=2).cached is False
        assert len(srv.requests) == 2
        two.close()
    raw = path.read_bytes()
    for wal in tmp_path.glob("llm.sqlite*"):
        raw += wal.read_bytes()
    assert SECRET.encode() not in raw
    assert b"[1] > [2]" in raw  # sanity: we did read the stored data


def test_openai_errors_are_not_cached():
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM, RetryPolicy
    from rerank_rag.testing import ChatServer, Reply

    lock = threading.Lock()
    state = {"n": 0}

    def handler(body):
        with lock:
            state["n"] += 1
            return Reply(status=500) if state["n"] == 1 else Reply(text="ok")

    cache = MemoryCache()
    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM(
            "m", base_url=srv.base_url, cache=cache, retry_policy=RetryPolicy(max_retries=0)
        )
        with pytest.raises(LLMServerError):
            llm.complete(MSG)
        assert len(cache) == 0
        assert llm.complete(MSG).cached is False
        assert llm.complete(MSG).cached is True
        assert len(srv.requests) == 2
        llm.close()


def test_cached_llm_over_openai_backend_with_threads():
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer, Reply

    with ChatServer(lambda b: Reply(text=b["messages"][0]["content"][::-1], delay=0.02)) as srv:
        inner = OpenAICompatibleLLM("m", base_url=srv.base_url, max_concurrency=4)
        llm = CachedLLM(inner, MemoryCache())
        prompts = [f"prompt {i % 5}" for i in range(40)]
        with ThreadPoolExecutor(8) as pool:
            outs = list(pool.map(lambda p: llm.complete(p).text, prompts))
        assert outs == [p[::-1] for p in prompts]
        assert 5 <= len(srv.requests) <= 40
        before = len(srv.requests)
        with ThreadPoolExecutor(8) as pool:
            again = list(pool.map(lambda p: llm.complete(p), prompts))
        assert all(c.cached for c in again) and len(srv.requests) == before
        assert llm.max_concurrency == 4
        inner.close()


# -- identities, exact keys, failing caches (issue 10, items 2, 3, 7) ------------------------


class _PlainBackend:
    """A custom backend with no cache_identity() and no to_config()."""

    def __init__(self, model: str) -> None:
        self.model = model

    def complete(self, messages, **params):
        return Completion(text=f"answer of {self.model}")

    async def acomplete(self, messages, **params):
        return self.complete(messages, **params)


def test_a_backend_that_cannot_be_told_apart_is_refused_or_needs_an_identity():
    cache = MemoryCache()
    with pytest.raises(TypeError, match="cache_identity"):
        CachedLLM(_PlainBackend("model-a"), cache)
    a = CachedLLM(_PlainBackend("model-a"), cache, identity={"model": "model-a"})
    b = CachedLLM(_PlainBackend("model-b"), cache, identity={"model": "model-b"})
    assert a.complete(MSG).text == "answer of model-a"
    assert b.complete(MSG).text == "answer of model-b"  # not model-a's cached answer
    assert a.complete(MSG).cached and a.complete(MSG).text == "answer of model-a"


def test_to_config_separates_instances_of_one_backend_class():
    class Configured(_PlainBackend):
        def to_config(self):
            return {"model": self.model, "api_key": "sk-secret"}

    cache = MemoryCache()
    a, b = CachedLLM(Configured("m1"), cache), CachedLLM(Configured("m2"), cache)
    assert a.complete(MSG).text == "answer of m1" and b.complete(MSG).text == "answer of m2"
    assert "sk-secret" not in json.dumps(a.cache_identity())


def test_parameters_without_a_json_form_never_share_a_key(caplog):
    class Opaque:
        def __init__(self, v):
            self.v = v

    with pytest.raises(TypeError, match="no JSON form"):
        cache_key({"b": 1}, MSG, {"tool": Opaque(1)})
    calls = []
    llm = CachedLLM(FakeLLM(lambda m, **p: (calls.append(p["tool"].v), f"v{p['tool'].v}")[1]), MemoryCache())
    with caplog.at_level("WARNING", logger="rerank_rag.llm"):
        assert llm.complete(MSG, tool=Opaque(1)).text == "v1"
        assert llm.complete(MSG, tool=Opaque(2)).text == "v2"  # not v1's answer
        assert llm.complete(MSG, tool=Opaque(2)).cached is False  # bypassed, not cached
    assert calls == [1, 2, 2]
    assert len([r for r in caplog.records if "bypass" in r.getMessage()]) == 1


def test_mixed_type_logit_bias_keys_are_keyed_like_the_request_sends_them():
    ident = {"b": 1}
    mixed = cache_key(ident, MSG, {"logit_bias": {42: 5, "43": -1}})
    assert mixed == cache_key(ident, MSG, {"logit_bias": {"42": 5, 43: -1}})
    assert mixed != cache_key(ident, MSG, {"logit_bias": {42: 5, "43": -2}})
    assert cache_key(ident, MSG, {"stop": ("\n",)}) == cache_key(ident, MSG, {"stop": ["\n"]})
    assert cache_key(ident, MSG, {"x": 1}) != cache_key(ident, MSG, {"x": "1"})
    assert cache_key(ident, MSG, {"x": b"\xff"}) != cache_key(ident, MSG, {"x": "\ufffd"})


def test_a_cached_null_text_is_empty_not_the_string_none():
    cache = MemoryCache()
    llm = CachedLLM(FakeLLM(lambda m: "fresh"), cache)
    cache.set(llm.key(MSG, {}), {"text": None, "prompt_tokens": 3, "completion_tokens": 0})
    hit = llm.complete(MSG)
    assert hit.cached and hit.text == ""
    cache.set(llm.key(MSG, {"seed": 1}), {"text": 7})  # damaged entry: a miss
    assert llm.complete(MSG, seed=1).text == "fresh"


class _BrokenCache:
    def __init__(self, fail_get=True, fail_set=True):
        self.fail_get, self.fail_set, self.calls = fail_get, fail_set, 0

    def get(self, key):
        self.calls += 1
        if self.fail_get:
            raise sqlite3.OperationalError("database is locked")
        return None

    def set(self, key, value):
        self.calls += 1
        if self.fail_set:
            raise OSError(28, "No space left on device")


@pytest.mark.parametrize("fail_get", [True, False])
def test_a_failing_cache_degrades_to_no_cache_never_to_no_ranking(fail_get, caplog):
    from rerank_rag.listwise import ListwiseRanker

    cache = _BrokenCache(fail_get=fail_get)
    llm = CachedLLM(FakeLLM(lambda m: "[2] > [1]"), cache)
    with caplog.at_level("WARNING", logger="rerank_rag"):
        r1 = ListwiseRanker(llm, window_size=3, step=1).rank("q", ["a", "b", "c", "d"])
        r2 = asyncio.run(ListwiseRanker(llm, window_size=3, step=1).arank("q", ["a", "b", "c", "d"]))
    expected = ListwiseRanker(FakeLLM(lambda m: "[2] > [1]"), window_size=3, step=1).rank(
        "q", ["a", "b", "c", "d"]
    )
    for r in (r1, r2):
        assert r.order == expected.order
        assert r.usage.failed_calls == 0 and r.usage.fallbacks == 0 and r.usage.llm_calls == expected.usage.llm_calls
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelname == "WARNING"]
    assert len(warnings) == 1 and "continuing without it" in warnings[0]
    assert cache.calls == (1 if fail_get else 2)  # after its first failure it is left alone


def test_a_locked_sqlite_cache_degrades_with_one_warning(tmp_path, caplog):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    path = tmp_path / "cache.sqlite"
    SQLiteCache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with ChatServer(lambda b: "fine") as srv:
            llm = OpenAICompatibleLLM("m", base_url=srv.base_url, cache=_LockedSQLite(path))
            with caplog.at_level("WARNING", logger="rerank_rag.llm"):
                outs = [llm.complete(MSG).text for _ in range(3)]
            llm.close()
            assert outs == ["fine"] * 3 and len(srv.requests) == 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cache.sqlite" in warnings[0] and "locked" in warnings[0]


def _LockedSQLite(path):
    """An SQLiteCache opened before the lock was taken, with a short lock timeout."""
    cache = SQLiteCache.__new__(SQLiteCache)
    cache.path, cache.timeout, cache._lock = str(path), 0.05, threading.Lock()
    cache._conn = sqlite3.connect(str(path), timeout=0.05, isolation_level=None, check_same_thread=False)
    return cache


def test_a_damaged_cache_file_is_an_error_naming_the_path(tmp_path):
    from rerank_rag import CacheError

    path = tmp_path / "responses.sqlite"
    path.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(CacheError, match="responses.sqlite"):
        SQLiteCache(path)
