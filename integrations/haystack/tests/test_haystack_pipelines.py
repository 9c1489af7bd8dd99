"""Haystack pipelines: InMemoryBM25Retriever -> rerank-rag ranker, YAML round trips, decomposition."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("haystack")

from haystack import Document, Pipeline  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402

from haystack_integrations.components.rankers.rerank_rag import RerankRagListwiseRanker  # noqa: E402
from haystack_integrations.components.retrievers.rerank_rag import (  # noqa: E402
    RerankRagDecomposeRetriever,
)
from rerank_rag import FakeLLM  # noqa: E402

QUERY = "Which river flows through Paris?"
QUESTION = "Which river flows through the city that hosts the Louvre?"
SUBS = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]


def _ids(docs):
    return [d.id for d in docs]


def _shared_store(corpus_docs) -> InMemoryDocumentStore:
    # A named index is shared by every InMemoryDocumentStore using it, so a pipeline
    # loaded from YAML sees the same documents.
    store = InMemoryDocumentStore(index=f"rerank-rag-test-{uuid.uuid4().hex}")
    store.write_documents(corpus_docs)
    return store


def _bm25_pipeline(store, llm, cls=Pipeline) -> Pipeline:
    pipe = cls()
    pipe.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=4))
    pipe.add_component("ranker", RerankRagListwiseRanker(llm, top_k=2))
    pipe.connect("retriever.documents", "ranker.documents")
    return pipe


def test_pipeline_run_and_run_async(store, fake_llm, run_async):
    pipe = _bm25_pipeline(store, fake_llm)
    inputs = {"retriever": {"query": QUERY}, "ranker": {"query": QUERY}}
    res = pipe.run(inputs, include_outputs_from={"retriever"})
    first_stage = _ids(res["retriever"]["documents"])
    assert first_stage[0] != "d2" and "d2" in first_stage  # precondition: BM25 misses it
    assert _ids(res["ranker"]["documents"])[0] == "d2" and len(res["ranker"]["documents"]) == 2
    one = pipe.run({"retriever": {"query": QUERY}, "ranker": {"query": QUERY, "top_k": 1}})
    assert _ids(one["ranker"]["documents"]) == ["d2"]  # run-time top_k
    ares = run_async(lambda cls: _bm25_pipeline(store, fake_llm, cls), inputs)
    assert _ids(ares["ranker"]["documents"]) == _ids(res["ranker"]["documents"])
    again = pipe.run(inputs)  # warm_up runs on every Pipeline.run: must be harmless
    assert _ids(again["ranker"]["documents"]) == _ids(res["ranker"]["documents"])


def test_yaml_round_trip_against_openai_compatible_server(monkeypatch, oracle, corpus_docs, run_async):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-serialized-42")
    inputs = {"retriever": {"query": QUERY}, "ranker": {"query": QUERY}}
    with ChatServer(lambda body: oracle(body["messages"])) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, max_retries=0)
        pipe = _bm25_pipeline(_shared_store(corpus_docs), llm)
        yaml_text = pipe.dumps()
        assert "sk-never-serialized-42" not in yaml_text and "test-model" in yaml_text
        assert "haystack_integrations.components.rankers.rerank_rag" in yaml_text
        loaded = Pipeline.loads(yaml_text)  # no allowlist needed under haystack_integrations
        assert loaded.dumps() == yaml_text
        res = loaded.run(inputs)
        ares = run_async(lambda cls: cls.loads(yaml_text), inputs)
        assert srv.requests and all(r["model"] == "test-model" for r in srv.requests)
    assert _ids(res["ranker"]["documents"])[0] == "d2"
    assert _ids(ares["ranker"]["documents"]) == _ids(res["ranker"]["documents"])


def _decompose_pipeline(store, llm, cls=Pipeline) -> Pipeline:
    pipe = cls()
    pipe.add_component(
        "decompose",
        RerankRagDecomposeRetriever(
            InMemoryBM25Retriever(document_store=store), llm,
            RerankRagListwiseRanker(llm), k=1, top_k=5,
        ),
    )
    return pipe


def test_decompose_retriever_pipeline(store, oracle, run_async):
    first = InMemoryBM25Retriever(document_store=store).run(QUESTION, top_k=1)["documents"]
    assert _ids(first) != ["d2"]  # precondition: the question alone misses it
    llm = FakeLLM(lambda m: oracle(m, subquestions=SUBS))
    pipe = _decompose_pipeline(store, llm)
    out = pipe.run({"decompose": {"query": QUESTION}})["decompose"]["documents"]
    assert _ids(out)[0] == "d2" and len(set(_ids(out))) == len(out)
    assert [d.score for d in out] == sorted((d.score for d in out), reverse=True)
    aout = run_async(lambda cls: _decompose_pipeline(store, llm, cls),
                     {"decompose": {"query": QUESTION}})["decompose"]["documents"]
    assert _ids(aout) == _ids(out)
    one = pipe.run({"decompose": {"query": QUESTION, "top_k": 1}})["decompose"]["documents"]
    assert _ids(one) == ["d2"]
    with pytest.raises(Exception, match="top_k"):
        pipe.run({"decompose": {"query": QUESTION, "top_k": 0}})


def test_decompose_retriever_yaml_round_trip(monkeypatch, oracle, corpus_docs):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-serialized-42")
    with ChatServer(lambda body: oracle(body["messages"], subquestions=SUBS)) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, max_retries=0)
        yaml_text = _decompose_pipeline(_shared_store(corpus_docs), llm).dumps()
        assert "sk-never-serialized-42" not in yaml_text
        loaded = Pipeline.loads(yaml_text)
        assert loaded.dumps() == yaml_text
        out = loaded.run({"decompose": {"query": QUESTION}})["decompose"]["documents"]
    assert _ids(out)[0] == "d2"


def test_decompose_retriever_with_chat_generator(store, oracle, mock_chat_generator):
    gen = mock_chat_generator(
        response_fn=lambda msgs: oracle([{"content": m.text} for m in msgs], subquestions=SUBS)
    )
    comp = RerankRagDecomposeRetriever(
        InMemoryBM25Retriever(document_store=store), gen, RerankRagListwiseRanker(gen), k=1
    )
    assert _ids(comp.run(QUESTION)["documents"])[0] == "d2"
    assert isinstance(comp.run(QUESTION)["documents"][0], Document)


def test_decompose_retriever_bad_config(store, fake_llm):
    retriever = InMemoryBM25Retriever(document_store=store)
    with pytest.raises(TypeError, match="retriever"):
        RerankRagDecomposeRetriever(object(), fake_llm)
    with pytest.raises(ValueError, match="merge"):
        RerankRagDecomposeRetriever(retriever, fake_llm, merge="zip")
    with pytest.raises(ValueError, match="top_k"):
        RerankRagDecomposeRetriever(retriever, fake_llm, top_k=0)
    with pytest.raises(TypeError, match="rank"):
        RerankRagDecomposeRetriever(retriever, fake_llm, ranker=object())
