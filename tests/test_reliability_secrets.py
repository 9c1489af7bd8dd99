"""Secrets: the API key never appears in logs, reprs, cache files, ``to_dict`` output,
exceptions or the eval report, even when a hostile server echoes it back."""

from __future__ import annotations

import json
import logging
import os
import traceback

import pytest

pytest.importorskip("openai")

from rerank_rag import LLMConfigurationError, LLMError  # noqa: E402
from rerank_rag.jointrank import JointRanker  # noqa: E402
from rerank_rag.listwise import ListwiseRanker  # noqa: E402
from rerank_rag.llm import OpenAICompatibleLLM, RetryPolicy, SQLiteCache  # noqa: E402
from rerank_rag.testing import ChatServer, Reply  # noqa: E402

SECRET = "sk-test-SECRET-9f8e7d6c5b4a"
FAST = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.05, jitter="none")


def _echo_key(status: int):
    """A hostile server: its error messages contain the caller's Authorization header."""

    def handler(body):
        return Reply(status=status, text=f"bad key: Bearer {SECRET} (you sent {SECRET})")

    return handler


def _assert_clean(*things: object) -> None:
    for t in things:
        text = t if isinstance(t, str) else repr(t)
        assert SECRET not in text, f"API key leaked in: {text[:200]}"
        assert SECRET[8:] not in text


def _exc_text(exc: BaseException) -> str:
    """Everything a logger or error tracker shows: message, repr, the formatted traceback
    and the exception chain (``__cause__``, and ``__context__`` unless suppressed)."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen = set()
    cur = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts += [str(cur), repr(cur)]
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return "\n".join(parts)


def test_key_is_sent_but_not_in_repr_or_config():
    with ChatServer(lambda body: "[1] > [2]") as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key=SECRET)
        llm.complete([{"role": "user", "content": "hi"}])
        sent = srv.log[0].headers.get("authorization", "")
        llm.close()
    assert SECRET in sent  # the test is not vacuous: the key did travel
    ranker = ListwiseRanker(llm)
    joint = JointRanker(llm)
    _assert_clean(
        repr(llm), str(llm), llm.to_config(), llm.cache_identity(), repr(ranker), repr(joint),
        json.dumps(llm.to_config()), vars(ranker),
    )


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_exceptions_and_logs_never_show_the_key(status, caplog):
    caplog.set_level(logging.DEBUG)
    with ChatServer(_echo_key(status)) as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key=SECRET, retry_policy=FAST)
        with pytest.raises(LLMError) as info:
            llm.complete([{"role": "user", "content": "hi"}])
        # the ranker path: transient failures degrade and are recorded, a wrong key
        # raises; never with the key
        ranker = ListwiseRanker(llm, window_size=2, step=1)
        if status == 401:
            with pytest.raises(LLMConfigurationError) as raised:
                ranker.rank("q", ["a", "b", "c"])
            _assert_clean(_exc_text(raised.value))
        else:
            ranking = ranker.rank("q", ["a", "b", "c"])
            assert ranking.usage.failed_calls == 2
        llm.close()
    _assert_clean(_exc_text(info.value), caplog.text)
    for record in caplog.records:
        _assert_clean(record.getMessage(), str(record.args))


def test_async_exceptions_never_show_the_key():
    import asyncio

    async def go():
        with ChatServer(_echo_key(401)) as srv:
            llm = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key=SECRET, retry_policy=FAST)
            try:
                await llm.acomplete([{"role": "user", "content": "hi"}])
            except LLMError as exc:
                return exc
            finally:
                await llm.aclose()
        return None

    exc = asyncio.run(go())
    assert exc is not None
    _assert_clean(_exc_text(exc))


def test_cache_files_hold_no_key(tmp_path):
    cache_path = tmp_path / "cache" / "responses.sqlite"
    with ChatServer(lambda body: "[2] > [1]") as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key=SECRET, cache=SQLiteCache(cache_path))
        ListwiseRanker(llm).rank("q", ["a", "b"])
        ListwiseRanker(llm).rank("q", ["a", "b"])  # a cache hit
        llm.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        assert SECRET.encode() not in data and SECRET[8:].encode() not in data, p


def test_haystack_to_dict_holds_no_key(monkeypatch):
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")
    pytest.importorskip("haystack")
    try:
        from haystack_integrations.components.rankers.rerank_rag import RerankRagJointRanker, RerankRagListwiseRanker
    except ImportError:
        pytest.skip("the Haystack integration is not installed")
    llm = OpenAICompatibleLLM("m", base_url="http://127.0.0.1:9/v1", api_key=SECRET)
    for comp in (RerankRagListwiseRanker(llm), RerankRagJointRanker(llm)):
        _assert_clean(json.dumps(comp.to_dict()), repr(comp))


def test_eval_cli_report_and_output_hold_no_key(tmp_path, capsys, monkeypatch):
    from rerank_rag.eval._cli import main

    d = tmp_path / "trec-dl19"
    d.mkdir()
    hits = [{"content": f"passage {i} text about things", "qid": 1, "docid": f"d{i}", "rank": i + 1, "score": 5.0 - i}
            for i in range(4)]
    (d / "retrieve_results_dl19.json").write_text(json.dumps([{"query": "things", "hits": hits}]))
    (d / "qrels.dl19-passage.txt").write_text("1 0 d2 3\n1 0 d0 0\n")
    monkeypatch.setenv("RR_TEST_KEY", SECRET)
    out = tmp_path / "report.json"
    with ChatServer(_echo_key(401)) as srv:
        rc = main([
            "--dataset", "dl19", "--data-dir", str(tmp_path), "--method", "single", "--llm", "openai",
            "--base-url", srv.base_url, "--model", "m", "--api-key-env", "RR_TEST_KEY",
            "--max-retries", "0", "--out", str(out), "--quiet",
        ])
        sent = srv.log[0].headers.get("authorization", "")
    assert rc == 1 and SECRET in sent
    captured = capsys.readouterr()
    # a wrong key raises LLMConfigurationError (never a silent fallback): the run stops
    # with a message naming the error, without the key, and writes no report
    assert "LLMConfigurationError" in captured.err and not out.exists()
    _assert_clean(captured.out, captured.err, os.environ.get("NOT_SET", ""))
