"""Listwise LLM reranking (RankGPT family): sliding windows, robust parsing, prompts.

    >>> from rerank_rag.listwise import ListwiseRanker
    >>> from rerank_rag import FakeLLM
    >>> ranker = ListwiseRanker(FakeLLM(lambda messages: "[2] > [1]"))
    >>> ranker.rank("capital of France?", ["Berlin is ...", "Paris is ..."]).order
    (1, 0)

* :class:`ListwiseRanker`: ``mode="sliding"`` (RankGPT windows, back to front) or
  ``"single"`` (one call); positional scores ``1 - rank / n``.
* Prompts (:class:`~rerank_rag.WindowPrompt`): :class:`RankGPTPrompt`,
  :class:`RelevantOnlyPrompt` (JointRank style), :class:`FirstTokenPrompt` (FIRST style,
  first-token logprobs); :func:`get_prompt` by name.
* :func:`parse_permutation`: the tolerant answer parser; :func:`window_spans`: the
  sliding-window arithmetic.
"""

from __future__ import annotations

from ._parse import parse_permutation
from ._prompts import (
    NO_RELEVANT_TOKEN,
    PROMPT_NAMES,
    FirstTokenPrompt,
    RankGPTPrompt,
    RelevantOnlyPrompt,
    get_prompt,
)
from ._ranker import ListwiseRanker, window_spans

__all__ = [
    "ListwiseRanker",
    "RankGPTPrompt",
    "RelevantOnlyPrompt",
    "FirstTokenPrompt",
    "parse_permutation",
    "window_spans",
    "get_prompt",
    "PROMPT_NAMES",
    "NO_RELEVANT_TOKEN",
]
