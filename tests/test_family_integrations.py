"""The new rankers and wrappers are reachable from all three frameworks through their
generic adapters (``RerankRagCompressor``, ``RerankRagPostprocessor``,
``RerankRagRanker``), each run the way the framework runs a reranker."""

from __future__ import annotations

import re

import pytest

from rerank_rag import DynamicCutoff, FakeLLM, PairwiseRanker, SetwiseRanker, TDPartRanker, TourRanker

TEXTS = ["Bees make honey.", "Paris is the capital of France.", "The Moon orbits.", "France: Paris."]


def paris_first(messages, **params):
    text = "\n".join(m["content"] for m in messages)
    shown = re.findall(r"(?m)^\[(\w+)\] (.*)$", text)
    best = sorted(shown, key=lambda s: "Paris" not in s[1])
    if "NO_RELEVANT" in text:
        best = [s for s in best if "Paris" in s[1]]
    return " > ".join(f"[{label}]" for label, _ in best) or "NO_RELEVANT_SNIPPETS"


def rankers():
    llm = FakeLLM(paris_first)
    return [
        PairwiseRanker(llm, method="allpair"),
        SetwiseRanker(llm, block_size=3),
        TourRanker(llm, block_size=3),
        DynamicCutoff(TDPartRanker(llm, prompt="relevant-only", block_size=4, sort_depth=2)),
    ]


def test_langchain_compressor():
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_rerank_rag import RerankRagCompressor

    docs = [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(TEXTS)]
    for ranker in rankers():
        out = RerankRagCompressor(ranker=ranker, top_n=2).compress_documents(docs, "capital of France?")
        assert {d.metadata["i"] for d in out} == {1, 3}, ranker


def test_llama_index_postprocessor():
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.rerank_rag import RerankRagPostprocessor

    nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i)), score=1.0) for i, t in enumerate(TEXTS)]
    for ranker in rankers():
        out = RerankRagPostprocessor(ranker=ranker, top_n=2).postprocess_nodes(nodes, query_str="capital of France?")
        assert {n.node.node_id for n in out} == {"1", "3"}, ranker


def test_haystack_ranker_in_a_pipeline():
    pytest.importorskip("haystack")
    from haystack import Document, Pipeline
    from haystack_integrations.components.rankers.rerank_rag import RerankRagRanker

    docs = [Document(content=t, id=str(i)) for i, t in enumerate(TEXTS)]
    for ranker in rankers():
        pipe = Pipeline()
        pipe.add_component("rank", RerankRagRanker(ranker, top_k=2))
        out = pipe.run({"rank": {"query": "capital of France?", "documents": docs}})
        assert {d.id for d in out["rank"]["documents"]} == {"1", "3"}, ranker
    # by class name and parameters (the serializable form)
    comp = RerankRagRanker("rerank_rag.SetwiseRanker", llm=FakeLLM(paris_first), ranker_params={"block_size": 3}, top_k=1)
    assert comp.run(query="capital of France?", documents=docs)["documents"][0].id in {"1", "3"}
