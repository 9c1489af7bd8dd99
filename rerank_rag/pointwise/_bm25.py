"""``BM25Scorer``: lexical BM25 computed over the candidate set itself.

Needs the ``bm25`` extra (``rank-bm25``). The IDF statistics come from the candidates
being ranked, not from the full corpus, so they are tiny and noisy: with 2 candidates a
term found in one of them is as "rare" as it can get. That is why the default IDF is the
Lucene form ``log(1 + (N - n + 0.5) / (n + 0.5))``, which stays positive (the classic
Okapi form ``log((N - n + 0.5) / (n + 0.5))`` is 0 for a term in 1 of 2 passages and
negative for terms in more than half the passages). Use it as a cheap, model-free
baseline or tie-breaker, not as a strong reranker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

from .._errors import require
from ._ranker import LazyScorer

__all__ = ["BM25Scorer", "default_tokenize", "STOPWORDS"]

#: A small English stopword list (function words only; content words are kept).
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves
    """.split()
)

_WORD = re.compile(r"\w+", re.UNICODE)


def default_tokenize(text: str) -> list[str]:
    """Lowercase, split on word characters, drop :data:`STOPWORDS`."""
    return [t for t in _WORD.findall(text.lower()) if t not in STOPWORDS]


class BM25Scorer(LazyScorer):
    """BM25 relevance of each passage to the query, with the passages as the corpus.

    **Score**: the BM25 score (>= 0 with the default Lucene IDF; 0 when no query term
    occurs in the passage). Scores are only comparable within one call, because the
    IDF statistics come from the passages of that call (the candidate set), so
    :class:`PointwiseRanker` passes all candidates in one call (``batchable = False``).

    Args:
        k1: term-frequency saturation (> 0).
        b: length normalisation in [0, 1].
        tokenizer: ``text -> list[str]``; default :func:`default_tokenize`
            (lowercase, ``\\w+`` words, small English stopword list).
        idf: ``"lucene"`` (default, always positive) or ``"okapi"`` (rank-bm25's
            ``BM25Okapi`` IDF with its epsilon floor for negative values).
    """

    #: Scores depend on the whole passage list: never split it into batches.
    batchable = False

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        tokenizer: Callable[[str], list[str]] | None = None,
        *,
        idf: Literal["lucene", "okapi"] = "lucene",
    ) -> None:
        super().__init__()
        if isinstance(k1, bool) or not isinstance(k1, (int, float)) or not k1 > 0:
            raise ValueError(f"k1 must be a number > 0, got {k1!r}")
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b <= 1:
            raise ValueError(f"b must be a number in [0, 1], got {b!r}")
        if tokenizer is not None and not callable(tokenizer):
            raise TypeError("tokenizer must be a callable text -> list[str]")
        if idf not in ("lucene", "okapi"):
            raise ValueError(f"idf must be 'lucene' or 'okapi', got {idf!r}")
        self.k1 = float(k1)
        self.b = float(b)
        self.tokenizer = tokenizer or default_tokenize
        self.idf = idf
        self._np: Any = None
        self._okapi: Any = None
        self._lucene: Any = None

    def __repr__(self) -> str:
        return f"BM25Scorer(k1={self.k1}, b={self.b}, idf={self.idf!r})"

    def _load(self) -> None:
        rank_bm25 = require("rank_bm25", "bm25", feature="BM25Scorer")
        self._np = require("numpy", "bm25", feature="BM25Scorer")  # a rank-bm25 dependency
        self._okapi = rank_bm25.BM25Okapi

        class _LuceneBM25(rank_bm25.BM25Okapi):  # type: ignore[misc, name-defined]
            """BM25Okapi with Lucene's always-positive IDF."""

            def _calc_idf(self, nd: dict[str, int]) -> None:
                self.idf = {
                    w: math.log(1.0 + (self.corpus_size - n + 0.5) / (n + 0.5))
                    for w, n in nd.items()
                }

        self._lucene = _LuceneBM25

    def _tokens(self, text: str) -> list[str]:
        toks = self.tokenizer(text)
        if not isinstance(toks, Iterable) or isinstance(toks, str):
            raise TypeError("tokenizer must return a list of strings")
        return [str(t) for t in toks]

    def _score(self, query: str, passages: list[str]) -> list[float]:
        q = self._tokens(query)
        docs = [self._tokens(p) for p in passages]
        if not q or not any(docs):
            return [0.0] * len(passages)
        cls = self._lucene if self.idf == "lucene" else self._okapi
        bm25 = cls(docs, k1=self.k1, b=self.b)
        # rank-bm25 divides 0 by 0 for an empty passage when b == 1: its score is 0.
        with self._np.errstate(invalid="ignore", divide="ignore"):
            raw = bm25.get_scores(q)
        return [0.0 if math.isnan(s) else float(s) for s in raw]
