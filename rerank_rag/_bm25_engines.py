"""The two scoring engines behind :class:`~rerank_rag.retrievers.BM25Retriever`.

Both take the analysed corpus (one list of term ids per passage) and compute the same
Lucene BM25 score, ``idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))``
summed over the query terms (a repeated query term counts again), with
``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``:

* :class:`PostingsEngine`: a pure-Python inverted index (no dependency). Fine for
  demos and corpora of a few thousand passages.
* :class:`SparseEngine`: ``bm25s`` (extra ``bm25``), which precomputes every
  (passage, term) score into a sparse matrix; a query sums a few of its columns with
  numpy. Much faster to build and to search on real corpora.

Ranking is ours in both (best score first, ties in corpus order, passages without a
matching term left out), so the engines return the same passages in the same order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._errors import require

__all__ = ["PostingsEngine", "SparseEngine", "sparse_available"]


def sparse_available() -> bool:
    """True when ``bm25s`` (and numpy) can be imported, without importing them."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("bm25s", "numpy"))


def _okapi_idf(dfs: list[int], n: int, epsilon: float) -> list[float]:
    """Okapi IDF ``ln(N - df + 0.5) - ln(df + 0.5)``; a negative value (a term in more
    than half the passages) is replaced by ``epsilon`` times the mean IDF, as
    rank-bm25's ``BM25Okapi`` does."""
    idf = [math.log(n - df + 0.5) - math.log(df + 0.5) for df in dfs]
    if idf:
        floor = epsilon * (sum(idf) / len(idf))
        idf = [floor if x < 0 else x for x in idf]
    return idf


class PostingsEngine:
    """Pure-Python BM25: ``term id -> [(passage, tf), ...]`` postings.

    Args:
        docs: each passage as a list of term ids in ``range(n_terms)``.
        n_terms: the vocabulary size.
        idf: ``"lucene"`` (default) or ``"okapi"`` (with rank-bm25's ``epsilon`` floor
            for negative values; used by :class:`~rerank_rag.pointwise.BM25Scorer`).
    """

    name = "python"

    def __init__(
        self,
        docs: Sequence[list[int]],
        n_terms: int,
        k1: float,
        b: float,
        *,
        idf: str = "lucene",
        epsilon: float = 0.25,
    ) -> None:
        postings: list[list[tuple[int, int]]] = [[] for _ in range(n_terms)]
        lengths: list[int] = []
        for i, terms in enumerate(docs):
            lengths.append(len(terms))
            for term, tf in Counter(terms).items():
                postings[term].append((i, tf))
        n = len(lengths)
        avgdl = (sum(lengths) / n) if n else 0.0
        self.n = n
        self.avgdl = avgdl
        self.k1 = k1
        self._postings = postings
        if idf == "lucene":
            self._idf = [math.log(1.0 + (n - len(p) + 0.5) / (len(p) + 0.5)) for p in postings]
        elif idf == "okapi":
            self._idf = _okapi_idf([len(p) for p in postings], n, epsilon)
        else:
            raise ValueError(f"idf must be 'lucene' or 'okapi', got {idf!r}")
        # per-passage length normaliser k1 * (1 - b + b * dl / avgdl)
        self._norm = [k1 * (1.0 - b + b * (dl / avgdl if avgdl else 0.0)) for dl in lengths]

    def _accumulate(self, query: list[int]) -> dict[int, float]:
        acc: dict[int, float] = {}
        k1p1 = self.k1 + 1.0
        norm = self._norm
        for term, qtf in Counter(query).items():
            w = self._idf[term] * qtf
            for i, tf in self._postings[term]:
                acc[i] = acc.get(i, 0.0) + w * tf * k1p1 / (tf + norm[i])
        return acc

    def scores(self, query: list[int]) -> list[float]:
        out = [0.0] * self.n
        for i, s in self._accumulate(query).items():
            out[i] = s
        return out

    def top(self, query: list[int], k: int) -> list[tuple[int, float]]:
        import heapq

        acc = self._accumulate(query)
        return heapq.nsmallest(k, acc.items(), key=lambda kv: (-kv[1], kv[0]))


class SparseEngine:
    """BM25 on ``bm25s``' precomputed sparse score matrix (numpy / scipy).

    ``bm25s``' "lucene" method leaves out the constant factor ``k1 + 1``; it is put
    back here so both engines report the same scores. ``dtype`` float64 (default)
    reproduces the pure-Python scores to rounding; float32 halves the memory.

    Args:
        docs: each passage as a list of term ids in ``range(n_terms)``.
        n_terms: the vocabulary size.
    """

    name = "bm25s"

    def __init__(
        self, docs: Sequence[list[int]], n_terms: int, k1: float, b: float, *, dtype: str = "float64"
    ) -> None:
        feature = "BM25Retriever(backend='bm25s')"
        self._np = require("numpy", "bm25", feature=feature)
        bm25s = require("bm25s", "bm25", feature=feature)
        self.n = len(docs)
        self.k1 = k1
        lengths = [len(d) for d in docs]
        self.avgdl = (sum(lengths) / self.n) if self.n else 0.0
        self._index: Any = None
        if n_terms == 0:
            return  # nothing can match; bm25s cannot index an empty vocabulary
        index = bm25s.BM25(k1=k1, b=b, method="lucene", dtype=dtype)
        vocab = {t: t for t in range(n_terms)}
        index.index((list(docs), vocab), create_empty_token=False, show_progress=False)
        self._index = index

    def _raw(self, query: list[int]) -> Any:
        np = self._np
        if self._index is None or not query:
            return np.zeros(self.n, dtype=np.float64)
        raw = self._index.get_scores_from_ids(query)
        return raw.astype(np.float64) * (self.k1 + 1.0)

    def scores(self, query: list[int]) -> list[float]:
        return [float(x) for x in self._raw(query)]

    def top(self, query: list[int], k: int) -> list[tuple[int, float]]:
        np = self._np
        scores = self._raw(query)
        hits = np.flatnonzero(scores > 0.0)
        if hits.size > k:
            # the k-th best score; keep everything above it and, among passages tied at
            # it, the first ones in corpus order (as the pure-Python engine does)
            kth = -np.partition(-scores[hits], k - 1)[k - 1]
            above = hits[scores[hits] > kth]
            tied = hits[scores[hits] == kth][: k - above.size]
            hits = np.concatenate([above, tied])
        order = np.lexsort((hits, -scores[hits]))
        return [(int(i), float(scores[i])) for i in hits[order]]
