"""Opt-in wrappers that work over any ranker (each is itself a ranker).

    >>> from rerank_rag import FakeLLM, ListwiseRanker
    >>> from rerank_rag.compose import FirstStageFusion
    >>> llm = FakeLLM(lambda messages: "[3] > [2] > [1]")
    >>> FirstStageFusion(ListwiseRanker(llm), weight=0.25).rank("q", ["a", "b", "c"]).order
    (0, 1, 2)
    >>> FirstStageFusion(ListwiseRanker(llm), weight=0.75).rank("q", ["a", "b", "c"]).order
    (2, 1, 0)

* :class:`DynamicCutoff`: keep only what the ranker judged relevant
  (``relevance >= threshold``), at least ``floor`` and at most ``ceiling``;
  ``usage.kept`` says how many.
* :class:`FirstStageFusion` / :func:`fuse`: reciprocal-rank or convex fusion of the
  LLM ranking with the first-stage ranking.
* :class:`FirstStageEvidence` / :func:`annotate`: InsertRank, each passage's
  first-stage rank or score shown next to it in the prompt.

Compose them: ``DynamicCutoff(FirstStageFusion(FirstStageEvidence(ranker)))``.
"""

from __future__ import annotations

from ._cutoff import DynamicCutoff
from ._evidence import FirstStageEvidence, annotate
from ._fusion import FUSION_METHODS, FirstStageFusion, fuse

__all__ = ["DynamicCutoff", "FirstStageFusion", "FirstStageEvidence", "fuse", "annotate", "FUSION_METHODS"]
