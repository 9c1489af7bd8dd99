"""``PointwiseRanker``: score every candidate on its own, then sort.

Also holds :class:`LazyScorer`, the small base class the bundled scorers share: config
is validated in the constructor, the heavy model is loaded by :meth:`LazyScorer.warm_up`
(called lazily on first use; idempotent and thread-safe), and the async path runs the
CPU-bound work in a worker thread so it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from typing import Any

from .._protocols import Scorer
from .._ranker import BaseRanker, Result
from .._relevance import scorer_judges_relevance, scorer_relevance
from .._types import Candidate, Ranking, Usage

__all__ = ["PointwiseRanker", "LazyScorer", "check_scores"]


class LazyScorer:
    """Base class for scorers whose model loads on first use.

    Subclasses implement :meth:`_load` (heavy imports and model loading) and
    :meth:`_score` (scoring once loaded). :meth:`score` calls :meth:`warm_up` first;
    :meth:`ascore` runs :meth:`score` in :func:`asyncio.to_thread`.
    """

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        """True once :meth:`warm_up` has loaded the model."""
        return self._loaded

    def warm_up(self) -> None:
        """Load the model now (otherwise it loads on the first ``score`` call).

        Idempotent and thread-safe: concurrent callers wait for one load.
        """
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _score(self, query: str, passages: list[str]) -> list[float]:  # pragma: no cover
        raise NotImplementedError

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage (higher is more relevant)."""
        passages = _check_passages(passages)
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if not passages:
            return []
        self.warm_up()
        return check_scores(self._score(query, passages), len(passages), type(self).__name__)

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        """Async twin of :meth:`score`; the work runs in a worker thread."""
        return await asyncio.to_thread(self.score, query, list(passages))


def _check_passages(passages: Sequence[str]) -> list[str]:
    if isinstance(passages, (str, bytes)):
        raise TypeError("passages must be a sequence of strings, not a single string")
    out = list(passages)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise TypeError(f"passage {i} has type {type(p).__name__}; expected str")
    return out


def check_scores(scores: Any, n: int, who: str) -> list[float]:
    """Turn a scorer's output into ``n`` floats or raise a clear error."""
    try:
        out = [float(s) for s in scores]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{who} returned scores that are not numbers: {exc}") from exc
    if len(out) != n:
        raise ValueError(f"{who} returned {len(out)} scores for {n} passages")
    return out


def _sort(scores: Sequence[float]) -> list[int]:
    """Indices by score descending; ties keep input order; NaN sorts last."""

    def key(i: int) -> tuple[int, float, int]:
        s = scores[i]
        if math.isnan(s):
            return (1, 0.0, i)
        return (0, -s, i)

    return sorted(range(len(scores)), key=key)


class PointwiseRanker(BaseRanker):
    """Rank candidates by a :class:`~rerank_rag.Scorer`'s per-passage scores.

    Every candidate is scored independently (in calls of ``batch_size`` passages), then
    candidates are sorted by score, highest first; ties keep the input order.

    **Score**: the scorer's raw score, unchanged (cosine similarity for
    :class:`BiEncoderScorer` / :class:`MiniLMScorer`, BM25 for :class:`BM25Scorer`,
    the cross-encoder's (sigmoid) output for :class:`CrossEncoderScorer`). NaN scores
    sort last. Unlike LLM rankers, a single candidate is scored too (no 1.0 shortcut).

    **Relevance** (``Ranking.relevance``, see :mod:`rerank_rag._relevance`): a fixed
    logistic map of the cosine for :class:`MiniLMScorer` / :class:`BiEncoderScorer`
    (0.5 at the calibrated ``COSINE_MIDPOINT``), the probability for
    :class:`CrossEncoderScorer`, the scorer's own ``relevance(scores)`` when it has one,
    and positional (a rank cut) otherwise, e.g. for :class:`BM25Scorer`.

    A scorer whose scores depend on the whole candidate set (``BM25Scorer``: its IDF
    statistics come from the candidates) declares ``batchable = False`` and always
    gets all candidates in one call.

    Errors raised by the scorer (a model that fails to load, bad input) propagate:
    unlike an LLM call, a local model failure is not transient, so there is no
    fallback order.

    Args:
        scorer: any object with ``score(query, passages) -> list[float]``; its
            ``ascore`` is used on the async path when present (otherwise ``score`` runs
            in a worker thread).
        batch_size: passages per ``score`` call (>= 1).
    """

    def __init__(self, scorer: Scorer, *, batch_size: int = 32) -> None:
        if not callable(getattr(scorer, "score", None)):
            raise TypeError(
                f"scorer must have a score(query, passages) method, got {type(scorer).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.scorer = scorer
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"PointwiseRanker({self.scorer!r}, batch_size={self.batch_size})"

    @property
    def judges_relevance(self) -> bool:
        """True when the scorer's relevance is calibrated (MiniLM, bi-/cross-encoder, a
        scorer with its own ``relevance``); False when it is positional (BM25, ...)."""
        return scorer_judges_relevance(self.scorer)

    def warm_up(self) -> None:
        """Load the scorer's model now (forwards to ``scorer.warm_up()`` when present)."""
        fn = getattr(self.scorer, "warm_up", None)
        if callable(fn):
            fn()

    def _trivial(self, cands: list[Candidate], k: int) -> Ranking | None:  # type: ignore[override]
        # Only the empty list is trivial: a single candidate is still scored, so scores
        # always keep the scorer's scale (callers may threshold them).
        if not cands:
            return Ranking(order=(), scores=(), usage=Usage())
        return None

    def _batches(self, n: int) -> list[tuple[int, int]]:
        if not getattr(self.scorer, "batchable", True):
            return [(0, n)]
        return [(i, min(n, i + self.batch_size)) for i in range(0, n, self.batch_size)]

    def _finish(self, scores: list[float]) -> Result:
        order = _sort(scores)
        ordered = [scores[i] for i in order]
        return order, ordered, scorer_relevance(self.scorer, ordered)

    def _rank_sync(self, query: str, cands: list[Candidate], usage: Usage) -> Result:
        texts = [c.text for c in cands]
        who = type(self.scorer).__name__
        scores: list[float] = []
        for lo, hi in self._batches(len(texts)):
            scores.extend(check_scores(self.scorer.score(query, texts[lo:hi]), hi - lo, who))
        return self._finish(scores)

    async def _rank_async(self, query: str, cands: list[Candidate], usage: Usage) -> Result:
        texts = [c.text for c in cands]
        who = type(self.scorer).__name__
        ascore = getattr(self.scorer, "ascore", None)
        scores: list[float] = []
        for lo, hi in self._batches(len(texts)):
            chunk = texts[lo:hi]
            if callable(ascore):
                out = await ascore(query, chunk)
            else:
                out = await asyncio.to_thread(self.scorer.score, query, chunk)
            scores.extend(check_scores(out, hi - lo, who))
        return self._finish(scores)
