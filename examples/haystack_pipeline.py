"""Haystack: BM25 retrieval + LLM reranking in a pipeline, saved to YAML and loaded back.

``RerankRagListwiseRanker`` (or ``RerankRagJointRanker`` / ``RerankRagPointwiseRanker``)
is an ordinary Haystack component. Its LLM is serialized by configuration (model,
base_url; never the API key, which is read from the environment again on load).
Needs ``pip install rerank-rag-haystack``.

    python examples/haystack_pipeline.py --fake     # no model (what the tests run)
    python examples/haystack_pipeline.py --local    # local llama.cpp server
    OPENAI_BASE_URL=... RERANK_RAG_MODEL=my-model python examples/haystack_pipeline.py
"""

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from _llm import example_llm  # noqa: E402
from haystack import Document, Pipeline  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from haystack_integrations.components.rankers.rerank_rag import RerankRagListwiseRanker  # noqa: E402

DOCS = [
    "The Moon shows phases because we see different parts of its sunlit half.",
    "Ocean tides are caused mainly by the Moon's gravity pulling on the oceans.",
    "Spring tides, the largest tides, happen when the Sun and Moon pull in a line.",
    "Apollo 11 landed on the Moon in July 1969.",
    "The Moon drifts away from the Earth by about 3.8 centimetres per year.",
    "Low tide exposes rock pools where crabs and anemones live.",
]

if __name__ == "__main__":
    store = InMemoryDocumentStore()
    store.write_documents([Document(content=t) for t in DOCS])
    query = "what causes the tides of the sea"
    with example_llm(serializable=True) as llm:
        pipe = Pipeline()
        pipe.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=10))
        pipe.add_component("ranker", RerankRagListwiseRanker(llm=llm, top_k=3, window_size=6, step=3))
        pipe.connect("retriever.documents", "ranker.documents")
        yaml_text = pipe.dumps()  # a YAML string: store it, version it, load it elsewhere
        loaded = Pipeline.loads(yaml_text)  # the in-memory store is shared by its index name
        for name, p in (("built", pipe), ("loaded from YAML", loaded)):
            docs = p.run({"retriever": {"query": query}, "ranker": {"query": query}})["ranker"]["documents"]
            print(f"{name}: " + " | ".join(f"{d.score:.2f} {d.content[:40]}" for d in docs))
    print("\nranker section of the YAML:")
    print(yaml_text[yaml_text.index("  ranker:"):].split("\n  retriever:")[0])
