"""TourRank (Chen et al., WWW 2025): tournaments of "select the best m of this group".

    >>> from rerank_rag import FakeLLM
    >>> from rerank_rag.tournament import TourRanker
    >>> llm = FakeLLM(lambda messages: "[2]")  # always selects the second passage shown
    >>> sorted(TourRanker(llm).rank("q", ["x", "y"]).order)
    [0, 1]

* :class:`TourRanker`: ``tournaments`` parallel tournaments, one round per stage, points
  summed into the score.
* :class:`SelectPrompt`: "select the m most relevant of these n passages".
* :func:`halving_stages`, :func:`split_picks`: the stage schedule arithmetic.
"""

from __future__ import annotations

from ._prompt import SelectPrompt
from ._ranker import TourRanker, halving_stages, split_picks

__all__ = ["TourRanker", "SelectPrompt", "halving_stages", "split_picks"]
