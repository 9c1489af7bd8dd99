"""rerank-rag for LlamaIndex: node postprocessors (listwise LLM reranking, JointRank,
pointwise scorers) and a question-decomposition retriever."""

from llama_index.postprocessor.rerank_rag.base import (
    DecomposeRetriever,
    JointRankRerank,
    ListwiseRerank,
    PointwiseRerank,
    RerankRagPostprocessor,
)

__all__ = [
    "ListwiseRerank",
    "JointRankRerank",
    "PointwiseRerank",
    "RerankRagPostprocessor",
    "DecomposeRetriever",
]
