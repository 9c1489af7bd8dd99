"""Moved: the MuSiQue evaluation lives in :mod:`rerank_rag.eval._musique` (dataset code
belongs to ``rerank_rag.eval``), on top of the generic multi-hop evaluation
:mod:`rerank_rag.eval._multihop`. These names are re-exported so old imports keep working.
"""

from __future__ import annotations

from ..eval._mh_models import CachedEmbeddingScorer as _CachedEmbeddingScorer
from ..eval._mh_models import make_reranker
from ..eval._musique import (
    MusiqueData,
    evaluate_musique,
    format_table,
    gold_subquestions,
    load_musique_eval,
)

__all__ = [
    "MusiqueData",
    "load_musique_eval",
    "gold_subquestions",
    "evaluate_musique",
    "format_table",
    "make_reranker",
]

_ = _CachedEmbeddingScorer  # old private name, still importable
