"""``BM25Scorer``: lexical BM25 computed over the candidate set itself.

No dependency: it uses rerank-rag's pure-Python BM25 engine (the one behind
:class:`~rerank_rag.retrievers.BM25Retriever` when ``bm25s`` is absent). Until 0.1 it
used ``rank-bm25``; on 100-passage candidate lists that library was no faster
(``benchmarks/bench_bm25.py``), so it was dropped, with identical scores. The IDF
statistics come from the candidates being ranked, not from the full corpus, so they
are tiny and noisy: with 2 candidates a term found in one of them is as "rare" as it
can get. That is why the default IDF is the Lucene form
``log(1 + (N - n + 0.5) / (n + 0.5))``, which stays positive (the classic Okapi form
``log((N - n + 0.5) / (n + 0.5))`` is 0 for a term in 1 of 2 passages and negative
for terms in more than half the passages). Use it as a cheap, model-free baseline or
tie-breaker, not as a strong reranker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Literal

from .._bm25_engines import PostingsEngine
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
        idf: ``"lucene"`` (default, always positive) or ``"okapi"`` (the IDF of
            rank-bm25's ``BM25Okapi``, with its floor of 0.25 x the mean IDF for
            negative values).
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

    def __repr__(self) -> str:
        return f"BM25Scorer(k1={self.k1}, b={self.b}, idf={self.idf!r})"

    def _load(self) -> None:
        pass  # nothing to load: pure Python

    def _tokens(self, text: str) -> list[str]:
        toks = self.tokenizer(text)
        if not isinstance(toks, Iterable) or isinstance(toks, str):
            raise TypeError("tokenizer must return a list of strings")
        return [str(t) for t in toks]

    def _score(self, query: str, passages: list[str]) -> list[float]:
        query_terms = self._tokens(query)
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in self._tokens(p)] for p in passages]
        q = [vocab[t] for t in query_terms if t in vocab]
        if not q:
            return [0.0] * len(passages)
        engine = PostingsEngine(ids, len(vocab), self.k1, self.b, idf=self.idf)
        return engine.scores(q)
