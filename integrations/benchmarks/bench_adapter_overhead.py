"""Adapter overhead: each framework adapter vs the core ranker it wraps.

Reranks 100 passages (top 10) with ``ListwiseRanker`` over an instant ``FakeLLM``, so
the time measured is the plumbing only (document <-> candidate mapping, copies, events,
LangChain's child-run context, Haystack's tracing wrapper), not an LLM. Prints the
median of 30 calls per path and its ratio to the core call. Run from the repo root:

    .venv/bin/python integrations/benchmarks/bench_adapter_overhead.py
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from rerank_rag import FakeLLM, ListwiseRanker  # noqa: E402

N_DOCS, TOP, REPEATS = 100, 10, 30


def median_ms(fn: Callable[[], object]) -> float:
    fn()  # warm
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    llm = FakeLLM(lambda messages: "[2] > [1]")
    texts = [f"passage {i} about topic {i % 7}: " + "word " * 40 for i in range(N_DOCS)]
    core = ListwiseRanker(llm)
    rows = [("core ListwiseRanker.rank", median_ms(lambda: core.rank("q", texts, top_n=TOP)))]
    try:
        from langchain_core.documents import Document

        from langchain_rerank_rag import ListwiseRerank

        from langchain_core.callbacks import BaseCallbackHandler
        from langchain_core.runnables import RunnableLambda

        from langchain_rerank_rag import RerankingRetriever, RerankRagCompressor

        comp = ListwiseRerank(llm=llm, top_n=TOP)
        docs = [Document(page_content=t, id=str(i)) for i, t in enumerate(texts)]
        rows.append(("LangChain compress_documents", median_ms(lambda: comp.compress_documents(docs, "q"))))
        generic = RerankRagCompressor(ranker=core, top_n=TOP)
        rows.append(("LangChain generic compressor", median_ms(lambda: generic.compress_documents(docs, "q"))))
        retriever = RerankingRetriever(base_retriever=RunnableLambda(lambda q: docs), base_compressor=comp)
        cfg = {"callbacks": [BaseCallbackHandler()]}  # callbacks: the child-run context is set
        rows.append(("LangChain retriever.invoke+callbacks", median_ms(lambda: retriever.invoke("q", config=cfg))))
    except ImportError as exc:
        print(f"LangChain adapter skipped: {exc}")
    try:
        from llama_index.core.schema import NodeWithScore, TextNode

        from llama_index.postprocessor.rerank_rag import ListwiseRerank as LIRerank

        post = LIRerank(llm=llm, top_n=TOP)
        nodes = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in texts]
        rows.append(("LlamaIndex postprocess_nodes", median_ms(lambda: post.postprocess_nodes(nodes, query_str="q"))))
    except ImportError as exc:
        print(f"LlamaIndex adapter skipped: {exc}")
    try:
        from haystack import Document as HDocument

        from haystack_integrations.components.rankers.rerank_rag import RerankRagListwiseRanker

        from haystack_integrations.components.rankers.rerank_rag import RerankRagRanker

        ranker = RerankRagListwiseRanker(llm, top_k=TOP)  # LLM calls through the tracing wrapper
        hdocs = [HDocument(content=t) for t in texts]
        rows.append(("Haystack run", median_ms(lambda: ranker.run("q", hdocs))))
        hgeneric = RerankRagRanker(core, top_k=TOP)
        rows.append(("Haystack generic run", median_ms(lambda: hgeneric.run("q", hdocs))))
    except ImportError as exc:
        print(f"Haystack adapter skipped: {exc}")
    print(f"{N_DOCS} passages, top {TOP}, instant FakeLLM, median of {REPEATS} calls:")
    base = rows[0][1]
    for name, ms in rows:
        print(f"  {name:38s} {ms:7.2f} ms  {ms / base:5.2f}x core")


if __name__ == "__main__":
    main()
