"""Top-down partitioning (TDPart, Parry et al. 2024): rank the head first around a pivot.

    >>> from rerank_rag import FakeLLM
    >>> from rerank_rag.tdpart import TDPartRanker
    >>> llm = FakeLLM(lambda messages: "[2] > [1]")
    >>> TDPartRanker(llm, block_size=3, sort_depth=1).rank("q", ["x", "y"]).order
    (1, 0)

* :class:`TDPartRanker`: one call for the first block, one parallel round of blocks that
  each hold the pivot, and a final call on the head: 7 calls in 3 rounds for 100
  candidates; any listwise prompt.
"""

from __future__ import annotations

from ._ranker import TDPartRanker

__all__ = ["TDPartRanker"]
