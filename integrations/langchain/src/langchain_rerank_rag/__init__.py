"""LangChain integration of rerank-rag.

* :class:`RerankRagCompressor` (``BaseDocumentCompressor``): wraps any rerank-rag ranker
  (``rank`` / ``arank``) or ``Scorer``; presets :class:`ListwiseRerank`,
  :class:`JointRankRerank`, :class:`PointwiseRerank`. Score in
  ``metadata["relevance_score"]``.
* :class:`RerankingRetriever`: a compressor applied to any base retriever
  (``langchain-core`` only).
* :class:`DecomposeRetriever`: question decomposition + retrieval per sub-question +
  merge + rerank, wrapping a base retriever.
* :class:`TemplatePrompt`: a LangChain prompt template as a listwise window prompt.
"""

from .compressors import JointRankRerank, ListwiseRerank, PointwiseRerank, RerankRagCompressor
from .prompts import TemplatePrompt
from .retrievers import DecomposeRetriever, RerankingRetriever

__all__ = [
    "RerankRagCompressor",
    "ListwiseRerank",
    "JointRankRerank",
    "PointwiseRerank",
    "RerankingRetriever",
    "DecomposeRetriever",
    "TemplatePrompt",
]
