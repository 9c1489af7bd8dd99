"""Pointwise rankers: score each candidate on its own, then sort.

* :class:`PointwiseRanker` wraps any :class:`~rerank_rag.Scorer`.
* Scorers: :class:`MiniLMScorer` (the offline default: all-MiniLM-L6-v2 int8 ONNX, no
  torch; extra ``minilm``), :class:`BiEncoderScorer` and :class:`CrossEncoderScorer`
  (any sentence-transformers model; extra ``sentence-transformers``) and
  :class:`BM25Scorer` (lexical, over the candidate set; extra ``bm25``).
* :class:`LLMPointwiseRanker`: one yes/no LLM call per passage, scored by the
  first-token log-probabilities.

Importing this package is cheap: each scorer imports its heavy modules (numpy, torch,
onnxruntime, ...) only when its model loads (``warm_up()`` or the first ``score``).
"""

from __future__ import annotations

from ._bm25 import BM25Scorer, default_tokenize
from ._llm import LLMPointwiseRanker, yes_no_score
from ._minilm import MiniLMScorer
from ._ranker import LazyScorer, PointwiseRanker
from ._sentence_transformers import BiEncoderScorer, CrossEncoderScorer

__all__ = [
    "PointwiseRanker",
    "LazyScorer",
    "BM25Scorer",
    "CrossEncoderScorer",
    "BiEncoderScorer",
    "MiniLMScorer",
    "LLMPointwiseRanker",
    "default_tokenize",
    "yes_no_score",
]
