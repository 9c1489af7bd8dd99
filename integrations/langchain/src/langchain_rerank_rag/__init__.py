"""LangChain integration of rerank-rag.

* Document compressors (``BaseDocumentCompressor``): :class:`ListwiseRerank`,
  :class:`JointRankRerank`, :class:`PointwiseRerank`; score in
  ``metadata["relevance_score"]``.
* :class:`RerankingRetriever`: a compressor applied to any base retriever
  (``langchain-core`` only).
* :class:`DecomposeRetriever`: question decomposition + retrieval per sub-question +
  merge + rerank, wrapping a base retriever.
"""

from .compressors import JointRankRerank, ListwiseRerank, PointwiseRerank, RerankRagCompressor
from .retrievers import DecomposeRetriever, RerankingRetriever

__all__ = [
    "ListwiseRerank",
    "JointRankRerank",
    "PointwiseRerank",
    "RerankRagCompressor",
    "RerankingRetriever",
    "DecomposeRetriever",
]
