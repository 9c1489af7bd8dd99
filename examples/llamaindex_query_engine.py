"""LlamaIndex: a query engine whose retrieved nodes are reranked by an LLM.

The postprocessor (``ListwiseRerank``, or ``JointRankRerank`` / ``PointwiseRerank``)
goes in ``node_postprocessors``; it reorders the retrieved nodes and keeps ``top_n``.
A ``SummaryIndex`` keeps the example free of embedding models; with a vector index it
works the same. Needs ``pip install llama-index-postprocessor-rerank-rag``.

    python examples/llamaindex_query_engine.py --fake    # no model (what the tests run)
    python examples/llamaindex_query_engine.py --local   # local llama.cpp server
    OPENAI_BASE_URL=... RERANK_RAG_MODEL=my-model python examples/llamaindex_query_engine.py

The answer synthesiser here is LlamaIndex's ``MockLLM`` so that only the reranker needs
a model; in an application pass your own LlamaIndex LLM (it can also be the reranker's
``llm``: the postprocessors accept LlamaIndex LLMs).
"""

from _llm import example_llm
from llama_index.core import Document, SummaryIndex
from llama_index.core.llms import MockLLM
from llama_index.postprocessor.rerank_rag import ListwiseRerank

DOCS = [
    "Honey never spoils: its low water content and acidity stop bacteria from growing.",
    "A honeybee colony has one queen, a few hundred drones and thousands of workers.",
    "Worker bees dance to tell nestmates the direction and distance of flowers.",
    "Pesticides, the varroa mite and lost meadows are why bee numbers are falling.",
    "Planting flowers that bloom from spring to autumn feeds pollinators all season.",
    "Espresso forces hot water through finely ground coffee at about nine bars.",
]

if __name__ == "__main__":
    index = SummaryIndex.from_documents([Document(text=t) for t in DOCS])
    with example_llm() as llm:
        engine = index.as_query_engine(
            llm=MockLLM(max_tokens=16),
            node_postprocessors=[ListwiseRerank(llm=llm, top_n=3, window_size=6, step=3)],
        )
        response = engine.query("why are bees disappearing and how can I help them?")
    print("Nodes given to the answer synthesiser, best first:")
    for n in response.source_nodes:
        print(f"  {n.score:.3f}  {n.node.get_content()}")
