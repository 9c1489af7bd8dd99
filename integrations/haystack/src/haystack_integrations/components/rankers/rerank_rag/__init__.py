"""rerank-rag rankers for Haystack (listwise LLM reranking, JointRank, pointwise scorers)."""

from .ranker import RerankRagJointRanker, RerankRagListwiseRanker, RerankRagPointwiseRanker

__all__ = ["RerankRagListwiseRanker", "RerankRagJointRanker", "RerankRagPointwiseRanker"]
