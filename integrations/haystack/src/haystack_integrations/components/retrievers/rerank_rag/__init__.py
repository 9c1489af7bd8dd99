"""rerank-rag question decomposition for Haystack: a retriever component wrapping a
Haystack retriever (decompose, retrieve per sub-question, merge, rerank)."""

from .retriever import RerankRagDecomposeRetriever

__all__ = ["RerankRagDecomposeRetriever"]
