"""Setwise LLM ranking (Zhuang et al., SIGIR 2024): "which of these is the most relevant?"

    >>> from rerank_rag import FakeLLM
    >>> from rerank_rag.setwise import SetwiseRanker
    >>> llm = FakeLLM(lambda messages: "B")  # always picks the second passage shown
    >>> SetwiseRanker(llm, block_size=2, method="bubblesort").rank("q", ["x", "y"]).order
    (1, 0)

* :class:`SetwiseRanker`: partial heapsort (``block_size - 1`` children per node) or
  pipelined bubble passes, stopped once the top ``sort_depth`` are sorted.
* :class:`PickBestPrompt`: the "which passage is the most relevant?" prompt (generation
  or first-token logprobs), shared with pairwise ranking.
* :func:`heap_top`, :func:`bubble_top`: the sorting plans over any judge.
"""

from __future__ import annotations

from ._prompt import SCORINGS, PickBestPrompt
from ._ranker import SetwiseRanker
from ._sorts import bubble_spans, bubble_top, heap_top

__all__ = ["SetwiseRanker", "PickBestPrompt", "SCORINGS", "heap_top", "bubble_top", "bubble_spans"]
