"""rerank-rag for LlamaIndex: node postprocessors (any rerank-rag ranker; presets for
listwise LLM reranking, JointRank, pointwise scorers) and a question-decomposition
retriever."""

from llama_index.postprocessor.rerank_rag.base import (
    JointRankRerank,
    ListwiseRerank,
    PointwiseRerank,
    RerankRagPostprocessor,
)
from llama_index.postprocessor.rerank_rag.retriever import DecomposeRetriever

__all__ = [
    "RerankRagPostprocessor",
    "ListwiseRerank",
    "JointRankRerank",
    "PointwiseRerank",
    "DecomposeRetriever",
]
