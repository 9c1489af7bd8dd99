"""Pairwise ranking prompting (PRP, Qin et al. 2023): "which of these two is more relevant?"

    >>> from rerank_rag import FakeLLM
    >>> from rerank_rag.pairwise import PairwiseRanker
    >>> def answer(messages):  # prefers the passage about Paris, whichever position it is in
    ...     return "A" if "[A] Paris" in messages[-1]["content"] else "B"
    >>> PairwiseRanker(FakeLLM(answer), method="allpair").rank("capital?", ["Berlin", "Paris"]).order
    (1, 0)

* :class:`PairwiseRanker`: ``allpair`` (every ordered pair in one round, aggregated with
  the JointRank aggregators), ``heapsort`` (binary heap, top ``sort_depth``) or
  ``bubblesort`` (PRP's sliding-K, pipelined passes); generation or first-token
  logprob scoring. Every comparison is asked in both orders.
"""

from __future__ import annotations

from ._ranker import PairwiseRanker

__all__ = ["PairwiseRanker"]
