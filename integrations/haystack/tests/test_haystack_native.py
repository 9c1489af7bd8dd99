"""Behaving like Haystack's own rankers, inside Haystack pipelines: tracing, lifecycle,
LLMRanker's parameters, the empty-query convention, any core ranker (0.2)."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any

import pytest

pytest.importorskip("haystack")

from haystack import Document, Pipeline, tracing  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever  # noqa: E402
from haystack.core.errors import DeserializationError, SerializationError  # noqa: E402

from haystack_integrations.components.rankers.rerank_rag import (  # noqa: E402
    RerankRagJointRanker,
    RerankRagListwiseRanker,
    RerankRagPointwiseRanker,
    RerankRagRanker,
)
from haystack_integrations.components.retrievers.rerank_rag import (  # noqa: E402
    RerankRagDecomposeRetriever,
)
from rerank_rag import FakeLLM, Ranking  # noqa: E402

QUERY = "Which river flows through Paris?"
QUESTION = "Which river flows through the city that hosts the Louvre?"
SUBS = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]


def _ids(docs):
    return [d.id for d in docs]


def _ranker_pipeline(store, ranker, cls=Pipeline) -> Pipeline:
    pipe = cls()
    pipe.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=6))
    pipe.add_component("ranker", ranker)
    pipe.connect("retriever.documents", "ranker.documents")
    return pipe


def _inputs(query: str = QUERY, **ranker: Any) -> dict[str, Any]:
    return {"retriever": {"query": query}, "ranker": {"query": query, **ranker}}


# -- tracing -------------------------------------------------------------------------------


class _Span(tracing.Span):
    def __init__(self, name: str, tags: dict[str, Any], parent: Any) -> None:
        self.name, self.tags, self.parent = name, tags, parent

    def set_tag(self, key: str, value: Any) -> None:
        self.tags[key] = value


class _Recorder(tracing.Tracer):
    """A tracer keeping every span with its parent (the current span is a context var)."""

    def __init__(self) -> None:
        self.spans: list[_Span] = []
        self._current: ContextVar[_Span | None] = ContextVar("span", default=None)

    @contextlib.contextmanager
    def trace(self, operation_name, tags=None, parent_span=None):
        span = _Span(operation_name, dict(tags or {}), parent_span)
        self.spans.append(span)
        token = self._current.set(span)
        try:
            yield span
        finally:
            self._current.reset(token)

    def current_span(self):
        return self._current.get()


@pytest.fixture
def tracer():
    recorder = _Recorder()
    tracing.enable_tracing(recorder)
    yield recorder
    tracing.disable_tracing()


def _llm_spans_under(tracer: _Recorder, component: str) -> list[_Span]:
    llm = [s for s in tracer.spans if s.name == "haystack.chat_generator.run"]
    assert llm, "no LLM call was traced"
    for s in llm:  # like LLMRanker: a chat-generator span under the component's span
        assert s.parent.name == "haystack.component.run"
        assert s.parent.tags["haystack.component.name"] == component
    return llm


def test_llm_calls_are_traced_under_the_ranker(store, fake_llm, tracer, run_async):
    for ranker in (RerankRagListwiseRanker(fake_llm, top_k=2, window_size=3, step=2),
                   RerankRagJointRanker(fake_llm, top_k=2, block_size=3, replicas=2)):  # threads
        tracer.spans.clear()
        out = _ranker_pipeline(store, ranker).run(_inputs())
        assert _ids(out["ranker"]["documents"])[0] == "d2"
        spans = _llm_spans_under(tracer, "ranker")
        assert len(spans) == len(fake_llm.calls) >= 2
        assert {s.tags["haystack.component.type"] for s in spans} == {"FakeLLM"}
        fake_llm.calls.clear()
    tracer.spans.clear()
    run_async(lambda cls: _ranker_pipeline(store, RerankRagListwiseRanker(fake_llm, top_k=2), cls),
              _inputs())
    _llm_spans_under(tracer, "ranker")


def test_decomposition_llm_calls_are_traced(store, oracle, tracer):
    llm = FakeLLM(lambda m: oracle(m, subquestions=SUBS))
    pipe = Pipeline()
    pipe.add_component("decompose", RerankRagDecomposeRetriever(
        InMemoryBM25Retriever(document_store=store), llm, RerankRagListwiseRanker(llm), k=1))
    assert _ids(pipe.run({"decompose": {"query": QUESTION}})["decompose"]["documents"])[0] == "d2"
    assert len(_llm_spans_under(tracer, "decompose")) == 2  # decomposition + one rerank window


# -- lifecycle -----------------------------------------------------------------------------


def test_lifecycle_reaches_the_chat_generator(store, oracle_generator, run_async):
    gen = oracle_generator()
    ranker = RerankRagListwiseRanker(chat_generator=gen, top_k=1)
    pipe = _ranker_pipeline(store, ranker)
    assert _ids(pipe.run(_inputs())["ranker"]["documents"]) == ["d2"]
    assert "warm_up" in gen.events
    if not hasattr(Pipeline, "close"):  # Haystack 2: no pipeline lifecycle beyond warm_up
        pytest.skip("Pipeline.warm_up_async / close need haystack-ai 3")
    gen.events.clear()
    import asyncio

    asyncio.run(pipe.close_async())
    pipe.close()
    asyncio.run(pipe.warm_up_async())
    assert gen.events == ["close_async", "close", "warm_up_async"]


def test_close_async_closes_the_openai_clients(store, oracle):
    pytest.importorskip("openai")
    import asyncio

    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    with ChatServer(lambda body: oracle(body["messages"])) as srv:
        llm = OpenAICompatibleLLM("m", base_url=srv.base_url, max_retries=0)
        ranker = RerankRagListwiseRanker(llm, top_k=1)

        async def main():
            docs = InMemoryBM25Retriever(document_store=store, top_k=6).run(QUERY)["documents"]
            out = await ranker.run_async(QUERY, docs)
            assert llm._aclients  # an async client for this loop
            await ranker.close_async()
            assert not llm._aclients and llm._client is None
            return out

        assert _ids(asyncio.run(main())["documents"]) == ["d2"]


# -- LLMRanker's parameters, empty query ----------------------------------------------------


def test_chat_generator_keyword_and_yaml(store, oracle, mock_chat_generator):
    gen = mock_chat_generator(response_fn=lambda msgs: oracle([{"content": m.text} for m in msgs]))
    pipe = _ranker_pipeline(store, RerankRagListwiseRanker(chat_generator=gen, top_k=1))
    assert _ids(pipe.run(_inputs())["ranker"]["documents"]) == ["d2"]
    fixed = mock_chat_generator(responses="[3] > [1] > [2]")
    data = RerankRagListwiseRanker(chat_generator=fixed).to_dict()["init_parameters"]
    assert data["llm"] is None and data["chat_generator"]["type"].endswith("MockChatGenerator")
    yaml_text = _ranker_pipeline(store, RerankRagListwiseRanker(chat_generator=fixed)).dumps()
    loaded = Pipeline.loads(yaml_text)
    assert loaded.dumps() == yaml_text
    with pytest.raises(ValueError, match="either"):
        RerankRagListwiseRanker(fake := FakeLLM(lambda m: ""), chat_generator=fake)


class _Judge:
    """A user's ranker with calibrated relevance: 0.9 for passages naming the Seine."""

    def rank(self, query, candidates, top_n=None):
        rel = [0.9 if "seine" in c.text.lower() else 0.2 for c in candidates]
        order = sorted(range(len(rel)), key=lambda i: -rel[i])[:top_n]
        scores = tuple(10.0 - r for r in range(len(order)))  # not comparable with 0.5
        return Ranking(tuple(order), scores, relevance=tuple(rel[i] for i in order))

    async def arank(self, query, candidates, top_n=None):
        return self.rank(query, candidates, top_n)


def test_score_threshold_uses_relevance_then_score(store, run_async):
    pipe = _ranker_pipeline(store, RerankRagRanker(_Judge(), score_threshold=0.5))
    out = pipe.run(_inputs())["ranker"]["documents"]
    assert _ids(out) == ["d2"] and out[0].score == 10.0  # the score stays the ranker's
    aout = run_async(lambda cls: _ranker_pipeline(
        store, RerankRagRanker(_Judge(), score_threshold=0.5), cls), _inputs())
    assert _ids(aout["ranker"]["documents"]) == ["d2"]
    bm25 = _ranker_pipeline(store, RerankRagPointwiseRanker("bm25", score_threshold=0.01))
    kept = bm25.run(_inputs("Seine river"))["ranker"]["documents"]
    assert _ids(kept) == ["d2"] and kept[0].score >= 0.01


def test_meta_fields_reach_the_prompt(fake_llm):
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    store.write_documents([
        Document(id="a", content="Paris is a capital and Paris has a river.", meta={"title": "Paris"}),
        Document(id="b", content="A river crosses this capital.", meta={"title": "The Seine"}),
    ])
    inputs = _inputs("Which river flows through Paris?")
    plain = _ranker_pipeline(store, RerankRagListwiseRanker(fake_llm, top_k=1)).run(inputs)
    titled = _ranker_pipeline(store, RerankRagListwiseRanker(
        fake_llm, top_k=1, meta_fields_to_embed=["title"], embedding_separator=" | ")).run(inputs)
    assert _ids(plain["ranker"]["documents"]) != ["b"]  # the content alone never names it
    assert _ids(titled["ranker"]["documents"]) == ["b"]
    assert any("The Seine | A river crosses" in m["content"] for m in fake_llm.calls[-1][0])
    assert titled["ranker"]["documents"][0].content == "A river crosses this capital."


def test_empty_query_returns_documents_unranked(store, fake_llm, caplog, run_async):
    docs = InMemoryBM25Retriever(document_store=store, top_k=6).run("Paris river")["documents"]

    def build(cls=Pipeline):
        pipe = cls()
        pipe.add_component("ranker", RerankRagListwiseRanker(fake_llm, top_k=2))
        return pipe

    inputs = {"ranker": {"query": "  ", "documents": docs + docs[:1]}}  # duplicates dropped
    with caplog.at_level("WARNING"):
        out = build().run(inputs)["ranker"]["documents"]
    assert out == docs[:2] and not fake_llm.calls  # LLMRanker: unranked, no LLM call
    assert "empty query" in caplog.text
    assert run_async(build, inputs)["ranker"]["documents"] == docs[:2]


# -- any core ranker --------------------------------------------------------------------------


def test_generic_ranker_with_a_ranker_object(store):
    out = _ranker_pipeline(store, RerankRagRanker(_Judge(), top_k=2)).run(_inputs())
    assert _ids(out["ranker"]["documents"])[0] == "d2"
    with pytest.raises(SerializationError, match="ranker object"):
        RerankRagRanker(_Judge()).to_dict()
    with pytest.raises(ValueError, match="already built"):
        RerankRagRanker(_Judge(), llm=FakeLLM(lambda m: ""))
    with pytest.raises(TypeError, match="rank"):
        RerankRagRanker(object())


def test_generic_ranker_from_a_class_round_trips_yaml(monkeypatch, oracle, corpus_docs):
    pytest.importorskip("openai")
    import uuid

    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from rerank_rag import ListwiseRanker
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-serialized-42")
    store = InMemoryDocumentStore(index=f"rerank-rag-test-{uuid.uuid4().hex}")
    store.write_documents(corpus_docs)
    with ChatServer(lambda body: oracle(body["messages"])) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, max_retries=0)
        ranker = RerankRagRanker(ListwiseRanker, llm=llm, top_k=1,
                                 ranker_params={"window_size": 4, "step": 2})
        pipe = _ranker_pipeline(store, ranker)
        yaml_text = pipe.dumps()
        assert "sk-never-serialized-42" not in yaml_text
        params = ranker.to_dict()["init_parameters"]
        assert params["ranker"] == "rerank_rag.ListwiseRanker"  # the public path
        loaded = Pipeline.loads(yaml_text)
        assert loaded.get_component("ranker").ranker.window_size == 4
        assert _ids(loaded.run(_inputs())["ranker"]["documents"]) == ["d2"]
        assert srv.requests
    data = ranker.to_dict()
    data["init_parameters"]["ranker"] = "os.system"
    with pytest.raises(DeserializationError, match="rerank_rag"):
        RerankRagRanker.from_dict(data)


# -- decomposition honours the ranker ---------------------------------------------------------


def test_decompose_retriever_honours_the_rankers_settings(store, oracle):
    llm = FakeLLM(lambda m: oracle(m, subquestions=SUBS))
    retriever = InMemoryBM25Retriever(document_store=store)
    pipe = Pipeline()
    pipe.add_component("decompose", RerankRagDecomposeRetriever(
        retriever, llm, RerankRagListwiseRanker(llm, top_k=2)))
    assert len(pipe.run({"decompose": {"query": QUESTION}})["decompose"]["documents"]) == 2
    with pytest.raises(ValueError, match="conflicting top_k"):
        RerankRagDecomposeRetriever(retriever, llm, RerankRagListwiseRanker(llm, top_k=2), top_k=3)
    judged = RerankRagDecomposeRetriever(retriever, llm, RerankRagRanker(_Judge(), score_threshold=0.5))
    assert _ids(judged.run(QUESTION)["documents"]) == ["d2"]
    gen_kw = RerankRagDecomposeRetriever(retriever, chat_generator=llm, ranker=_Judge(), top_k=1)
    assert _ids(gen_kw.run(QUESTION)["documents"]) == ["d2"]
