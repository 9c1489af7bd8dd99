"""LangChain: a BM25 first stage, reranked by an LLM, as one LangChain retriever.

``RerankingRetriever`` wraps any base retriever (here a ``RunnableLambda`` over
rerank-rag's in-memory BM25) with a document compressor (``ListwiseRerank``, or
``JointRankRerank`` / ``PointwiseRerank``). The rerank score lands in
``metadata["relevance_score"]``. Needs ``pip install langchain-rerank-rag``.

    python examples/langchain_rerank.py --fake     # no model (what the tests run)
    python examples/langchain_rerank.py --local    # local llama.cpp server (rerank-rag[local])
    OPENAI_BASE_URL=... RERANK_RAG_MODEL=my-model python examples/langchain_rerank.py
"""

from _llm import example_llm
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda
from langchain_rerank_rag import JointRankRerank, ListwiseRerank, RerankingRetriever

from rerank_rag.retrievers import BM25Retriever

DOCS = [
    "Restart the router: unplug it for 30 seconds, then plug it back in.",
    "Router lights: a red light means the router has no internet connection.",
    "Slow Wi-Fi? Move the router away from walls and use the 5 GHz band.",
    "Your router's admin page is at 192.168.1.1; the password is on the sticker.",
    "Outages in your area are listed on the service status page.",
    "The TV box needs a wired connection to the router for 4K channels.",
]
bm25 = BM25Retriever(DOCS)
first_stage = RunnableLambda(
    lambda query: [Document(page_content=c.text, id=str(c.metadata["corpus_index"]))
                   for c in bm25.search(query, k=10)]
)

if __name__ == "__main__":
    query = "my internet connection is down, what should I check on the router"
    with example_llm() as llm:
        for compressor in (ListwiseRerank(llm=llm, top_n=3, window_size=4, step=2),
                           JointRankRerank(llm=llm, top_n=3, block_size=3, replicas=2)):
            retriever = RerankingRetriever(base_retriever=first_stage, base_compressor=compressor)
            print(f"{type(compressor).__name__}:")
            for doc in retriever.invoke(query):
                print(f"  {doc.metadata['relevance_score']:.3f}  {doc.page_content}")
