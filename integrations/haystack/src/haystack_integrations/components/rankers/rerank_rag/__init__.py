"""rerank-rag rankers for Haystack: :class:`RerankRagRanker` wraps any rerank-rag ranker;
presets for listwise LLM reranking, JointRank and pointwise scorers."""

from .ranker import (
    RerankRagJointRanker,
    RerankRagListwiseRanker,
    RerankRagPointwiseRanker,
    RerankRagRanker,
)

__all__ = ["RerankRagRanker", "RerankRagListwiseRanker", "RerankRagJointRanker",
           "RerankRagPointwiseRanker"]
