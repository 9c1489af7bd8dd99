"""Shared ``rank`` / ``arank`` plumbing for every ranker.

Subclasses implement one of:

* :class:`PlanRanker`: ``_plan(query, candidates, usage)``, a generator plan (see
  :mod:`rerank_rag._plan`) returning ``(order, scores)`` over *all* candidates; the
  sync and async paths share it.
* :class:`BaseRanker` directly: ``_rank_sync`` and ``_rank_async``.

The base class validates input (clear errors), handles the trivial cases (0 or 1
candidate: no model call), times the call, checks that the result is a permutation
(never a lost or invented document) and cuts to ``top_n``.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

from ._errors import LLMError, is_permanent
from ._plan import Plan, arun_plan, run_plan
from ._types import Candidate, CandidateLike, Ranking, Usage, as_candidates, check_top_n
from .llm._base import LLMBackend

__all__ = [
    "BaseRanker",
    "PlanRanker",
    "check_query",
    "finish_ranking",
    "raise_if_permanent",
    "warn_degraded",
]

#: What ``_rank_sync``/``_rank_async``/``_plan`` return: ``(order, scores)`` over all
#: candidates, optionally with a third item, the relevance of each entry of ``order``
#: (see :mod:`rerank_rag._relevance`).
Result = tuple[Sequence[int], Sequence[float]] | tuple[Sequence[int], Sequence[float], Sequence[float]]


def raise_if_permanent(outcome: object) -> None:
    """Raise ``outcome`` if it is a non-transient :class:`~rerank_rag.LLMError`.

    The error policy of every ranker: an :class:`~rerank_rag.LLMConfigurationError`
    (wrong key, wrong URL, unknown model) can never succeed, so it is raised as is,
    never fallen back from, whatever ``strict`` says.
    """
    if isinstance(outcome, LLMError) and is_permanent(outcome):
        raise outcome


def warn_degraded(
    logger: logging.Logger, who: str, failures: Sequence[str], total: int, unit: str, fallback: str
) -> None:
    """Log the transient failures of one ranking once, at WARNING (nothing if none)."""
    if not failures:
        return
    logger.warning(
        "%s: %d of %d %s fell back to %s after a transient failure (first: %s); "
        "counted in ranking.usage.fallbacks",
        who,
        len(failures),
        total,
        unit,
        fallback,
        failures[0],
    )


def check_query(query: object) -> str:
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError("query must be a non-empty string")
    return query


def finish_ranking(
    order: Sequence[int],
    scores: Sequence[float],
    n: int,
    k: int,
    usage: Usage,
    relevance: Sequence[float] | None = None,
) -> Ranking:
    """Validate that ``order`` is a permutation of ``range(n)`` and cut it to ``k``
    (``relevance``, when given, is aligned with ``order`` and cut with it)."""
    order = list(order)
    if len(order) != n or set(order) != set(range(n)):
        raise AssertionError(  # a bug in a ranker, never the user's fault
            f"internal error: ranker produced an invalid permutation of {n} candidates"
        )
    if len(scores) != n:
        raise AssertionError("internal error: ranker produced the wrong number of scores")
    rel = None if relevance is None else tuple(float(v) for v in relevance[:k])
    return Ranking(
        order=tuple(order[:k]), scores=tuple(float(s) for s in scores[:k]), usage=usage, relevance=rel
    )


class BaseRanker(ABC):
    """Validation, trivial cases, timing and top_n for every ranker."""

    def _prepare(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None
    ) -> tuple[str, list[Candidate], int]:
        query = check_query(query)
        cands = as_candidates(candidates)
        k = check_top_n(top_n, len(cands))
        return query, cands, k

    @staticmethod
    def _trivial(cands: list[Candidate], k: int) -> Ranking | None:
        if len(cands) == 0:
            return Ranking(order=(), scores=(), usage=Usage())
        if len(cands) == 1:
            return Ranking(order=(0,), scores=(1.0,), usage=Usage())
        return None

    def rank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Rank ``candidates`` for ``query``; returns positions into ``candidates``."""
        query, cands, k = self._prepare(query, candidates, top_n)
        trivial = self._trivial(cands, k)
        if trivial is not None:
            return trivial
        usage = Usage()
        t0 = time.perf_counter()
        order, scores, *rel = self._rank_sync(query, cands, usage)
        usage.wall_time = time.perf_counter() - t0
        return finish_ranking(order, scores, len(cands), k, usage, rel[0] if rel else None)

    async def arank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Async twin of :meth:`rank`."""
        query, cands, k = self._prepare(query, candidates, top_n)
        trivial = self._trivial(cands, k)
        if trivial is not None:
            return trivial
        usage = Usage()
        t0 = time.perf_counter()
        order, scores, *rel = await self._rank_async(query, cands, usage)
        usage.wall_time = time.perf_counter() - t0
        return finish_ranking(order, scores, len(cands), k, usage, rel[0] if rel else None)

    @abstractmethod
    def _rank_sync(self, query: str, cands: list[Candidate], usage: Usage) -> Result: ...

    @abstractmethod
    async def _rank_async(self, query: str, cands: list[Candidate], usage: Usage) -> Result: ...


class PlanRanker(BaseRanker):
    """A ranker whose algorithm is one plan over an LLM backend (``self.llm``)."""

    llm: LLMBackend

    @abstractmethod
    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Result]: ...

    def _rank_sync(self, query: str, cands: list[Candidate], usage: Usage) -> Result:
        return run_plan(self._plan(query, cands, usage), self.llm, usage)

    async def _rank_async(self, query: str, cands: list[Candidate], usage: Usage) -> Result:
        return await arun_plan(self._plan(query, cands, usage), self.llm, usage)
