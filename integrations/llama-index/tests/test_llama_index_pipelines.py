"""LlamaIndex query engines and the decomposition retriever (no network)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.embeddings import MockEmbedding  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402

from llama_index.postprocessor.rerank_rag import DecomposeRetriever, ListwiseRerank  # noqa: E402
from rerank_rag import FakeLLM  # noqa: E402

QUERY = "Which river flows through Paris?"
CORPUS_IDS = ["d0", "d1", "d2", "d3", "d4", "d5"]


def _ids(nodes):
    return [n.node.node_id for n in nodes]


def test_query_engine_with_vector_retriever(bm25_retriever, fake_llm):
    texts = {n.node.node_id: n.node.get_content() for n in bm25_retriever.retrieve("capital river Paris")}
    index = VectorStoreIndex(
        [TextNode(id_=i, text=t) for i, t in texts.items()], embed_model=MockEmbedding(embed_dim=8)
    )
    engine = RetrieverQueryEngine.from_args(
        index.as_retriever(similarity_top_k=len(texts)),
        llm=MockLLM(),  # fixed-reply LLM for the synthesis step
        node_postprocessors=[ListwiseRerank(llm=fake_llm, top_n=2)],
    )
    response = engine.query(QUERY)
    assert len(response.source_nodes) == 2 and _ids(response.source_nodes)[0] == "d2"
    aresponse = asyncio.run(engine.aquery(QUERY))
    assert _ids(aresponse.source_nodes) == _ids(response.source_nodes)


def test_query_engine_with_bm25_retriever(bm25_retriever, fake_llm):
    first_stage = _ids(bm25_retriever.retrieve(QUERY))
    assert first_stage[0] != "d2" and "d2" in first_stage  # precondition
    engine = RetrieverQueryEngine.from_args(
        bm25_retriever, llm=MockLLM(), node_postprocessors=[ListwiseRerank(llm=fake_llm, top_n=1)]
    )
    assert _ids(engine.query(QUERY).source_nodes) == ["d2"]


def test_decompose_retriever(bm25_retriever, oracle, fake_llm):
    bm25_retriever.k = 1
    question = "Which river flows through the city that hosts the Louvre?"
    assert _ids(bm25_retriever.retrieve(question)) != ["d2"]  # precondition
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    bm25_retriever.calls.clear()
    retriever = DecomposeRetriever(
        bm25_retriever,
        llm=FakeLLM(lambda m: oracle(m, subquestions=subs)),
        reranker=ListwiseRerank(llm=fake_llm),
        k=1,
        top_n=5,
    )
    out = retriever.retrieve(question)
    assert _ids(out)[0] == "d2" and len(set(_ids(out))) == len(out)
    assert sorted(bm25_retriever.calls) == sorted([question, *subs])
    assert [n.score for n in out] == sorted((n.score for n in out), reverse=True)
    assert _ids(asyncio.run(retriever.aretrieve(question))) == _ids(out)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    assert _ids(engine.query(question).source_nodes) == _ids(out)


def test_decompose_retriever_with_llama_index_llm(bm25_retriever, oracle_llm_cls):
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    llm = oracle_llm_cls(subquestions=subs)
    retriever = DecomposeRetriever(bm25_retriever, llm=llm, reranker=ListwiseRerank(llm=llm), k=2)
    out = retriever.retrieve("Which river flows through the city of the Louvre?")
    assert _ids(out)[0] == "d2"
    assert set(_ids(out)) <= set(CORPUS_IDS)


def test_decompose_retriever_bad_config(bm25_retriever, fake_llm):
    with pytest.raises(ValueError, match="merge"):
        DecomposeRetriever(bm25_retriever, llm=fake_llm, merge="zip")
    with pytest.raises(TypeError):
        DecomposeRetriever(bm25_retriever, llm=object())
    with pytest.raises(TypeError, match="rank"):
        DecomposeRetriever(bm25_retriever, llm=fake_llm, reranker=object())


# -- 0.2: spans of the sync fan-out, the reranker's top_n ---------------------------------


def test_sync_fan_out_keeps_the_span_context(bm25_retriever, oracle):
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler

    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    retriever = DecomposeRetriever(bm25_retriever, llm=FakeLLM(lambda m: oracle(m, subquestions=subs)))
    handler = SimpleSpanHandler()
    root = get_dispatcher()
    root.add_span_handler(handler)
    try:
        retriever.retrieve("Which river flows through the city that hosts the Louvre?")
    finally:
        root.span_handlers.remove(handler)
    parent = {s.id_: s.parent_id for s in handler.completed_spans}
    outer = [i for i in parent if i.startswith("DecomposeRetriever.retrieve-")]
    inner = [i for i in parent if i.startswith("BM25MemoryRetriever.retrieve-")]
    assert len(outer) == 1 and parent[outer[0]] is None and len(inner) == 3

    def root_of(span_id):
        while parent.get(span_id) is not None:
            span_id = parent[span_id]
        return span_id

    assert all(root_of(i) == outer[0] for i in inner)  # not three root spans


def test_decompose_retriever_honours_the_rerankers_top_n(bm25_retriever, oracle, fake_llm):
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    llm = FakeLLM(lambda m: oracle(m, subquestions=subs))
    question = "Which river flows through the city that hosts the Louvre?"
    retriever = DecomposeRetriever(bm25_retriever, llm=llm, reranker=ListwiseRerank(llm=fake_llm, top_n=2))
    assert len(retriever.retrieve(question)) == 2
    with pytest.raises(ValueError, match="top_n"):
        DecomposeRetriever(bm25_retriever, llm=llm, reranker=ListwiseRerank(llm=fake_llm, top_n=2), top_n=3)
    free = DecomposeRetriever(bm25_retriever, llm=llm, reranker=ListwiseRerank(llm=fake_llm), top_n=3)
    assert len(free.retrieve(question)) == 3  # a reranker left at its default gives way
    with pytest.warns(DeprecationWarning, match="top_k"):
        old = DecomposeRetriever(bm25_retriever, llm=llm, top_k=1)
    assert len(old.retrieve(question)) == 1
