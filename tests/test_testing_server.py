"""The ChatServer test double: a real OpenAI-compatible HTTP server on 127.0.0.1.

Checked with stdlib HTTP clients (and the OpenAI SDK when installed), so the double is
known to speak the wire format before other tests rely on it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerank_rag.testing import ChatServer, Reply


def _post(srv: ChatServer, body: dict, timeout: float = 5.0) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        srv.base_url + "/chat/completions", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def _chat(text: str = "hi", **extra) -> dict:
    return {"model": "m1", "messages": [{"role": "user", "content": text}], **extra}


def test_base_url_is_loopback_with_v1_and_port_is_free():
    with ChatServer() as a, ChatServer() as b:
        assert a.base_url.startswith("http://127.0.0.1:") and a.base_url.endswith("/v1")
        assert a.port != b.port and a.port > 0


def test_text_reply_in_openai_shape_with_estimated_usage():
    seen = []

    def handler(body):
        seen.append(body)
        return "hello world!"

    with ChatServer(handler) as srv:
        status, _, out = _post(srv, _chat("x" * 40))
    assert status == 200
    assert out["object"] == "chat.completion"
    assert out["model"] == "m1"
    choice = out["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello world!", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    usage = out["usage"]
    # ~4 chars per token: 12 chars -> 3 tokens; 40-char prompt -> at least 10.
    assert usage["completion_tokens"] == 3
    assert usage["prompt_tokens"] >= 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert seen == [_chat("x" * 40)]
    assert srv.requests == [_chat("x" * 40)]


def test_explicit_token_counts_are_reported():
    with ChatServer(lambda b: Reply(text="a", prompt_tokens=123, completion_tokens=7)) as srv:
        _, _, out = _post(srv, _chat())
    assert out["usage"] == {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130}


def test_top_logprobs_rendered_only_when_requested_and_sorted_and_truncated():
    reply = Reply(text="Yes", top_logprobs={"No": -2.0, "Yes": -0.1, "Maybe": -3.0})
    with ChatServer(lambda b: reply) as srv:
        _, _, plain = _post(srv, _chat())
        _, _, asked = _post(srv, _chat(logprobs=True, top_logprobs=2))
    assert plain["choices"][0]["logprobs"] is None
    first = asked["choices"][0]["logprobs"]["content"][0]
    assert first["token"] == "Yes" and first["logprob"] == -0.1
    assert [t["token"] for t in first["top_logprobs"]] == ["Yes", "No"]
    assert first["top_logprobs"][1]["logprob"] == -2.0


def test_error_status_with_headers_and_json_error_body():
    with ChatServer(lambda b: Reply(status=429, headers={"Retry-After": "3"})) as srv:
        status, headers, out = _post(srv, _chat())
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert out["error"]["code"] == 429 and out["error"]["type"] == "rate_limit_error"


def test_handler_exception_becomes_500_and_is_recorded():
    def handler(body):
        raise RuntimeError("boom")

    with ChatServer(handler) as srv:
        status, _, out = _post(srv, _chat())
        assert status == 500
        assert "boom" in out["error"]["message"]
        assert len(srv.errors) == 1 and isinstance(srv.errors[0], RuntimeError)


def test_raw_body_is_sent_verbatim():
    with ChatServer(lambda b: Reply(body=b"{not json", status=200)) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(_chat()))
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b"{not json"
        conn.close()


def test_reset_closes_connection_without_answer():
    with ChatServer(lambda b: Reply(reset=True)) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(_chat()))
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            conn.getresponse()
        conn.close()
        assert len(srv.requests) == 1


def test_delay_postpones_the_answer():
    with ChatServer(lambda b: Reply(text="late", delay=0.3)) as srv:
        t0 = time.monotonic()
        status, _, out = _post(srv, _chat())
        elapsed = time.monotonic() - t0
    assert status == 200 and out["choices"][0]["message"]["content"] == "late"
    assert elapsed >= 0.3


def test_models_and_health_endpoints():
    with ChatServer(model="my-model") as srv:
        with urllib.request.urlopen(srv.base_url + "/models", timeout=5) as resp:
            models = json.loads(resp.read())
        with urllib.request.urlopen(srv.url + "/health", timeout=5) as resp:
            health = json.loads(resp.read())
    assert [m["id"] for m in models["data"]] == ["my-model"]
    assert health == {"status": "ok"}


def test_bad_request_body_and_unknown_route():
    with ChatServer() as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", body=b"not json")
        resp = conn.getresponse()
        assert resp.status == 400 and "error" in json.loads(resp.read())
        conn.request("POST", "/v1/embeddings", body=b"{}")
        resp = conn.getresponse()
        assert resp.status == 404
        resp.read()
        conn.close()
        assert srv.requests == [None]  # the unparsable chat request is still recorded


def test_keep_alive_connection_serves_several_requests():
    with ChatServer(lambda b: b["messages"][0]["content"].upper()) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        texts = []
        for word in ("a", "b", "c"):
            conn.request("POST", "/v1/chat/completions", body=json.dumps(_chat(word)))
            texts.append(json.loads(conn.getresponse().read())["choices"][0]["message"]["content"])
        conn.close()
    assert texts == ["A", "B", "C"]


def test_peak_concurrency_counts_overlapping_requests():
    barrier = threading.Barrier(4, timeout=5)

    def handler(body):
        barrier.wait()  # all four are in flight together
        return "ok"

    with ChatServer(handler) as srv:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda i: _post(srv, _chat(str(i)))[0], range(4)))
        assert results == [200] * 4
        assert srv.peak_concurrency == 4
        assert srv.wait_idle() and srv.in_flight == 0


def test_server_max_concurrency_serialises_handler_calls():
    active = 0
    peak = 0
    lock = threading.Lock()

    def handler(body):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return "ok"

    with ChatServer(handler, max_concurrency=2) as srv:
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda i: _post(srv, _chat(str(i)))[0], range(6)))
        assert results == [200] * 6
        assert peak == 2  # queued at the server...
        assert srv.peak_concurrency > 2  # ...although more requests were in flight


def test_request_log_has_times_and_headers():
    with ChatServer() as srv:
        req = urllib.request.Request(
            srv.base_url + "/chat/completions",
            data=json.dumps(_chat()).encode(),
            headers={"Authorization": "Bearer test-token", "Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=5).read()
        urllib.request.urlopen(req, timeout=5).read()
        assert len(srv.log) == 2
        assert srv.log[0].headers["authorization"] == "Bearer test-token"
        assert srv.request_times == sorted(srv.request_times)
        assert srv.wait_idle()
        srv.clear()
        assert srv.requests == [] and srv.peak_concurrency == 0


def test_stop_joins_threads_even_with_idle_keep_alive_and_pending_delay():
    before = set(threading.enumerate())
    srv = ChatServer(lambda b: Reply(text="slow", delay=30)).start()
    idle = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    idle.request("GET", "/health")
    idle.getresponse().read()  # keep-alive connection left open and idle

    def slow_call():
        try:
            _post(srv, _chat(), timeout=10)
        except Exception:  # noqa: BLE001 - the server resets it on stop
            pass

    caller = threading.Thread(target=slow_call)
    caller.start()
    deadline = time.monotonic() + 5
    while srv.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 5  # did not wait for the 30 s delay
    caller.join(5)
    idle.close()
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []
    assert not srv.running
    with pytest.raises(RuntimeError):
        srv.base_url  # noqa: B018
    srv.stop()  # idempotent


def test_restart_after_stop():
    srv = ChatServer(lambda b: "again")
    srv.start()
    srv.stop()
    srv.start()
    try:
        assert _post(srv, _chat())[2]["choices"][0]["message"]["content"] == "again"
    finally:
        srv.stop()


def test_works_with_the_openai_sdk():
    openai = pytest.importorskip("openai")
    with ChatServer(lambda b: Reply(text="sdk ok", top_logprobs={"sdk": -0.2})) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        try:
            out = client.chat.completions.create(
                model="m1",
                messages=[{"role": "user", "content": "q"}],
                logprobs=True,
                top_logprobs=1,
            )
        finally:
            client.close()
    assert out.choices[0].message.content == "sdk ok"
    assert out.choices[0].logprobs.content[0].top_logprobs[0].token == "sdk"
    assert out.usage.completion_tokens >= 1


def test_unrenderable_reply_becomes_500_and_nonstandard_status_works():
    bad = Reply(text="x", top_logprobs={"x": "not a number"})
    with ChatServer(
        lambda b: bad if b["messages"][0]["content"] == "bad" else Reply(status=599)
    ) as srv:
        status, _, out = _post(srv, _chat("bad", logprobs=True))
        assert status == 500 and "could not render" in out["error"]["message"]
        assert len(srv.errors) == 1
        status, _, out = _post(srv, _chat("odd"))
        assert status == 599 and out["error"]["message"] == "HTTP 599"


def test_a_burst_of_new_connections_is_accepted_like_a_real_server():
    # a JointRank round opens its connections all at once (20 and more): with the
    # stdlib's listen backlog of 5 some of them were reset (ReadError) before being served
    pytest.importorskip("openai")
    import asyncio

    from rerank_rag.llm import OpenAICompatibleLLM

    with ChatServer(lambda b: Reply(text="ok", delay=0.2)) as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, max_retries=0, max_concurrency=40)

        async def burst():
            return await asyncio.gather(
                *(llm.acomplete(f"q{i}") for i in range(40)), return_exceptions=True
            )

        with ThreadPoolExecutor(40) as pool:  # 40 keep-alive connections stay open
            sync = list(pool.map(lambda i: llm.complete(f"s{i}").text, range(40)))
        assert sync == ["ok"] * 40
        for _ in range(2):  # each asyncio.run: a new loop, a new client, 40 new connections
            outs = asyncio.run(burst())
            assert [getattr(o, "text", repr(o)) for o in outs] == ["ok"] * 40
        llm.close()
