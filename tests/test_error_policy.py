"""The error policy, end to end over HTTP on 127.0.0.1 (rerank_rag.testing.ChatServer),
for every LLM ranker: listwise, pointwise, JointRank, pairwise (each method), setwise,
tournaments and top-down partitioning.

* A call that cannot succeed as configured (401, 403, 404, an unknown model, also when
  a 200 body carries such an error) raises ``LLMConfigurationError`` from every ranker,
  sync and async, strict or not, without retries and without a fallback.
* A transient failure falls back, is logged once per ranking at WARNING and is counted in
  ``usage``; ``strict=True`` raises instead.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

pytest.importorskip("openai")

from rerank_rag import (  # noqa: E402
    DynamicCutoff,
    FakeLLM,
    FirstStageEvidence,
    FirstStageFusion,
    LLMConfigurationError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    PairwiseRanker,
    RankingFailedError,
    SetwiseRanker,
    TDPartRanker,
    TourRanker,
)
from rerank_rag.jointrank import JointRanker  # noqa: E402
from rerank_rag.listwise import ListwiseRanker  # noqa: E402
from rerank_rag.llm import OpenAICompatibleLLM, RetryPolicy  # noqa: E402
from rerank_rag.pointwise import LLMPointwiseRanker  # noqa: E402
from rerank_rag.testing import ChatServer, Reply  # noqa: E402

FAST = RetryPolicy(max_retries=2, initial_delay=0.0, max_delay=0.0, jitter="none")
DOCS = [f"passage {i} about topic {i % 3}" for i in range(6)]


def _llm(srv: ChatServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM("test-model", base_url=srv.base_url, api_key="sk-test-0123456789", retry_policy=FAST)


def _rankers(llm, strict: bool):
    return {
        "listwise": ListwiseRanker(llm, window_size=4, step=2, strict=strict),
        "pointwise": LLMPointwiseRanker(llm, strict=strict),
        "jointrank": JointRanker(llm, block_size=3, replicas=2, strict=strict),
        "pairwise allpair": PairwiseRanker(llm, method="allpair", strict=strict),
        "pairwise heapsort": PairwiseRanker(llm, method="heapsort", sort_depth=2, strict=strict),
        "pairwise bubblesort": PairwiseRanker(llm, method="bubblesort", sort_depth=2, strict=strict),
        "setwise heapsort": SetwiseRanker(llm, method="heapsort", block_size=3, sort_depth=2, strict=strict),
        "setwise bubblesort": SetwiseRanker(
            llm, method="bubblesort", block_size=3, sort_depth=2, strict=strict
        ),
        "tournament": TourRanker(llm, tournaments=2, block_size=4, strict=strict),
        "tdpart": TDPartRanker(llm, block_size=3, sort_depth=1, strict=strict),
    }


RANKERS = [
    "listwise", "pointwise", "jointrank", "pairwise allpair", "pairwise heapsort",
    "pairwise bubblesort", "setwise heapsort", "setwise bubblesort", "tournament", "tdpart",
]

# The calls of the first round over the 6 DOCS (sent together, before any answer is
# read): a configuration error must stop the ranking right there.
FIRST_ROUND = {
    "listwise": 1,  # the last window
    "pointwise": 6,  # one call per passage
    "jointrank": 4,  # every block
    "pairwise allpair": 30,  # every ordered pair
    "pairwise heapsort": 4,  # the heap build's deepest level: nodes 1 and 2, both orders
    "pairwise bubblesort": 2,  # the bottom pair, both orders
    "setwise heapsort": 2,  # the heap build's deepest level: nodes 1 and 2
    "setwise bubblesort": 1,  # the bottom group
    "tournament": 4,  # two groups of 3 in each of the 2 tournaments
    "tdpart": 1,  # the first block
}


def _arank(ranker, llm, query, docs):
    """``ranker.arank`` in a fresh event loop, closing the loop's async client in it
    (an async HTTP client left to a closed loop logs errors when it is collected)."""

    async def run():
        try:
            return await ranker.arank(query, docs)
        finally:
            await llm.aclose()

    return asyncio.run(run())


def _body_error(message: str, code: object = None, param: object = None) -> str:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "code": code, "param": param}})


CONFIG_REPLIES = {
    "401 wrong key": Reply(status=401, text="Incorrect API key provided"),
    "403 no access": Reply(status=403, text="You do not have access to this model"),
    "404 unknown model": Reply(status=404, text="The model `nope` does not exist."),
    "400 unknown model (gateway)": Reply(
        status=400, body=_body_error("Invalid model name passed in model=nope", code="400", param="model")
    ),
    "200 with an auth error body": Reply(status=200, body=_body_error("invalid api key", code=401)),
    "200 with model_not_found": Reply(
        status=200, body=_body_error("The model `nope` does not exist", code="model_not_found")
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_REPLIES))
def test_the_client_raises_configuration_errors_at_once(case):
    reply = CONFIG_REPLIES[case]
    with ChatServer(lambda body: reply) as srv, _llm(srv) as llm:
        with pytest.raises(LLMConfigurationError) as info:
            llm.complete("hi")
        assert len(srv.requests) == 1  # never retried
    assert info.value.transient is False and "check the API key" in str(info.value)


@pytest.mark.parametrize("case", ["401 wrong key", "200 with model_not_found"])
def test_configuration_errors_raise_from_every_ranker_sync_and_async(case):
    reply = CONFIG_REPLIES[case]

    with ChatServer(lambda body: reply) as srv:
        llm = _llm(srv)
        for strict in (False, True):
            rankers = _rankers(llm, strict)
            for name, ranker in rankers.items():
                # no retry, no re-sent block: one round of first calls, then the error
                srv.wait_idle()
                srv.clear()
                with pytest.raises(LLMConfigurationError) as info:
                    ranker.rank("which passage?", DOCS)
                assert info.value.transient is False
                srv.wait_idle()
                assert len(srv.requests) == FIRST_ROUND[name], (name, strict)

            async def every_async(rankers=rankers, strict=strict):  # one loop, one client
                for name, ranker in rankers.items():
                    srv.wait_idle()
                    srv.clear()
                    with pytest.raises(LLMConfigurationError) as info:
                        await ranker.arank("which passage?", DOCS)
                    assert info.value.transient is False
                    srv.wait_idle()
                    assert len(srv.requests) == FIRST_ROUND[name], (name, strict)
                await llm.aclose()

            asyncio.run(every_async())
        llm.close()


def test_configuration_error_keeps_the_servers_message():
    reply = Reply(status=200, body=_body_error("The model `gpt-9` does not exist", code="model_not_found"))
    with ChatServer(lambda body: reply) as srv, _llm(srv) as llm:
        with pytest.raises(LLMConfigurationError, match="gpt-9` does not exist") as info:
            llm.complete("hi")
        assert len(srv.requests) == 1
    assert "HTTP 200 with an error" in str(info.value)


def test_a_200_error_body_keeps_the_message_and_its_status_is_honoured():
    replies = [
        Reply(status=200, body=json.dumps({"error": {"message": "upstream overloaded", "code": 503}})),
        Reply(status=200, body=json.dumps({"error": "context window exceeded by 12 tokens"})),
        Reply(status=200, body=json.dumps({"error": {"message": "slow down", "code": "429"}})),
    ]
    expected = [
        (LLMServerError, "upstream overloaded", 3),  # retried like an HTTP 503
        (LLMResponseError, "context window exceeded", 2),  # malformed: retried once
        (LLMRateLimitError, "slow down", 3),
    ]
    for reply, (error, message, requests) in zip(replies, expected):
        with ChatServer(lambda body: reply) as srv, _llm(srv) as llm:
            with pytest.raises(error, match=message) as info:
                llm.complete("hi")
            assert len(srv.requests) == requests
        assert info.value.transient is True
        assert "no choices" not in str(info.value)


def test_other_client_errors_stay_transient_for_the_rankers():
    # a 400 for one window (e.g. its passages overflow the context) is not a
    # configuration error: that window falls back, the others are ranked
    def handler(body):
        text = json.dumps(body["messages"])
        if "passage 5" in text:
            return Reply(status=400, text="maximum context length is 4096 tokens")
        return "[2] > [1]"

    with ChatServer(handler) as srv, _llm(srv) as llm:
        r = ListwiseRanker(llm, window_size=4, step=2).rank("q", DOCS)
    assert r.usage.fallbacks == 1 and r.usage.failed_calls == 1


@pytest.mark.parametrize("name", RANKERS)
def test_transient_failures_fall_back_logged_once_and_counted(name, caplog):
    with ChatServer(lambda body: Reply(status=500, text="boom")) as srv:
        llm = _llm(srv)
        ranker = _rankers(llm, strict=False)[name]
        with caplog.at_level(logging.WARNING, logger="rerank_rag"):
            r = ranker.rank("which passage?", DOCS)
        warnings = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
        assert len(warnings) == 1, [w.getMessage() for w in warnings]
        msg = warnings[0].getMessage()
        assert "fell back" in msg or "failed" in msg
        assert msg.count("LLM call failed") <= 1 and "boom" in msg
        assert sorted(r.order) == list(range(len(DOCS)))
        u = r.usage
        assert u.fallbacks >= 1 and u.failed_calls == u.llm_calls and u.retries == 2 * u.llm_calls
        assert u.resends == 0
        # the async path degrades the same way, logged once too
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rerank_rag"):
            a = _arank(ranker, llm, "which passage?", DOCS)
        assert len([rec for rec in caplog.records if rec.levelno >= logging.WARNING]) == 1
        assert a.order == r.order
        assert (a.usage.llm_calls, a.usage.failed_calls, a.usage.fallbacks, a.usage.retries) == (
            u.llm_calls, u.failed_calls, u.fallbacks, u.retries
        )
        # strict: the same failure raises
        with pytest.raises(RankingFailedError):
            _rankers(llm, strict=True)[name].rank("which passage?", DOCS)
        llm.close()


WRAPPERS = {
    "cut-off over TDPart relevant-only": lambda llm, strict: DynamicCutoff(
        TDPartRanker(llm, prompt="relevant-only", block_size=3, sort_depth=1, strict=strict), ceiling=4
    ),
    "fusion over setwise": lambda llm, strict: FirstStageFusion(
        SetwiseRanker(llm, block_size=3, sort_depth=2, strict=strict)
    ),
    "evidence over pairwise": lambda llm, strict: FirstStageEvidence(
        PairwiseRanker(llm, method="bubblesort", sort_depth=2, strict=strict)
    ),
}


@pytest.mark.parametrize("name", list(WRAPPERS))
def test_the_wrappers_keep_the_policy(name, caplog):
    state = {"reply": CONFIG_REPLIES["401 wrong key"]}
    with ChatServer(lambda body: state["reply"]) as srv:
        llm = _llm(srv)
        ranker = WRAPPERS[name](llm, False)
        with pytest.raises(LLMConfigurationError):
            ranker.rank("which passage?", DOCS)
        with pytest.raises(LLMConfigurationError):
            _arank(ranker, llm, "which passage?", DOCS)
        state["reply"] = Reply(status=500, text="boom")
        runs = (lambda: ranker.rank("which passage?", DOCS), lambda: _arank(ranker, llm, "which passage?", DOCS))
        for run in runs:
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="rerank_rag"):
                r = run()
            warnings = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
            assert len(warnings) == 1, [w.getMessage() for w in warnings]
            assert "boom" in warnings[0].getMessage()
            assert len(set(r.order)) == len(r.order) and set(r.order) <= set(range(len(DOCS)))
            assert r.usage.fallbacks >= 1 and r.usage.failed_calls == r.usage.llm_calls > 0
        with pytest.raises(RankingFailedError):
            WRAPPERS[name](llm, True).rank("which passage?", DOCS)
        llm.close()


def _cannot_run(messages):
    raise ModuleNotFoundError("No module named 'httpx'")


@pytest.mark.parametrize("name", RANKERS)
def test_a_backend_that_cannot_run_raises_from_every_ranker(name):
    # an ImportError inside a backend is never transient: 0.2.0's demo took one for a
    # failed call and showed the first-stage order as the LLM's ranking
    for strict in (False, True):
        llm = FakeLLM(_cannot_run)
        ranker = _rankers(llm, strict)[name]
        with pytest.raises(LLMConfigurationError, match="No module named 'httpx'"):
            ranker.rank("topic 1", DOCS)
        with pytest.raises(LLMConfigurationError, match="No module named 'httpx'"):
            asyncio.run(ranker.arank("topic 1", DOCS))
