"""Shared plumbing of the pairwise, setwise, tournament and top-down rankers.

* :class:`FamilyRanker`: a :class:`~rerank_rag._ranker.PlanRanker` whose plan may also
  return a relevance value per candidate (:class:`Scored`), attached to the
  :class:`~rerank_rag.Ranking` it returns; trivial inputs (0 or 1 candidate) get the
  positional relevance.
* :class:`CallBook`: per-ranking bookkeeping of failed calls and unusable answers, with
  the error policy every ranker follows: a non-transient :class:`~rerank_rag.LLMError`
  (e.g. :class:`~rerank_rag.LLMConfigurationError`) is raised; ``strict=True`` raises on
  transient failures too (:class:`~rerank_rag.RankingFailedError`, or
  :class:`~rerank_rag.ParseError` for an unusable answer); otherwise the documented
  fallback is taken, counted in ``usage.fallbacks`` and logged once per ranking.
* :func:`monotone`: the non-increasing least-squares fit of a sequence
  (pool-adjacent-violators), used to turn per-item judgements into a ``relevance``
  tuple that is monotone along the final order.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

from ._errors import LLMError, ParseError, RankingFailedError
from ._plan import arun_plan, run_plan
from ._ranker import PlanRanker, finish_ranking
from ._types import Candidate, CandidateLike, Ranking, Usage

__all__ = [
    "FamilyRanker",
    "Scored",
    "CallBook",
    "monotone",
    "positional",
    "check_int",
    "check_choice",
]


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def positional(n: int) -> list[float]:
    """``1 - rank / n`` for ranks ``0..n-1`` (1.0 for the best)."""
    return [1.0 - r / n for r in range(n)] if n else []


def monotone(values: Sequence[float]) -> list[float]:
    """The non-increasing sequence closest to ``values`` in least squares (PAV).

    Runs of values that rise along the order are replaced by their mean, so an item
    judged relevant that ended up below one judged irrelevant shares the average with
    it. Values are clamped to [0, 1].
    """
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([min(1.0, max(0.0, float(v))), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out.extend([s / c] * int(c))
    # float noise must not break "non-increasing"
    for i in range(1, len(out)):
        if out[i] > out[i - 1]:
            out[i] = out[i - 1]
    return out


class Scored(tuple):  # type: ignore[type-arg]
    """A plan result ``(order, scores)`` that also carries ``relevance`` (per rank).

    It unpacks like the plain pair every plan driver expects.
    """

    relevance: Sequence[float] | None

    def __new__(
        cls,
        order: Sequence[int],
        scores: Sequence[float],
        relevance: Sequence[float] | None = None,
    ) -> Scored:
        obj = super().__new__(cls, (list(order), list(scores)))
        obj.relevance = None if relevance is None else list(relevance)
        return obj


class CallBook:
    """Failures and unusable answers of one ranking, with the shared error policy."""

    def __init__(self, usage: Usage, *, strict: bool, log: logging.Logger, what: str) -> None:
        self.usage = usage
        self.strict = strict
        self.log = log
        self.what = what
        self.failed = 0
        self.unusable = 0
        self.first_reason: str | None = None

    def error(self, err: LLMError, context: str) -> None:
        """A call ended in ``err``: raise (non-transient or strict) or count a fallback."""
        if not getattr(err, "transient", True):
            raise err
        if self.strict:
            raise RankingFailedError(f"LLM call failed ({context}): {err}") from err
        self.failed += 1
        self.usage.fallbacks += 1
        if self.first_reason is None:
            self.first_reason = f"LLM call failed ({context}): {err}"

    def unusable_answer(self, reason: str) -> None:
        """An answer named no valid passage: raise when strict, else count a fallback."""
        if self.strict:
            raise ParseError(reason)
        self.unusable += 1
        self.usage.fallbacks += 1
        if self.first_reason is None:
            self.first_reason = reason

    def report(self, fallback: str) -> None:
        """Log once (WARNING) what degraded in this ranking, if anything."""
        if self.failed or self.unusable:
            self.log.warning(
                "%s: %d failed call(s) and %d unusable answer(s); %s (first: %s)",
                self.what,
                self.failed,
                self.unusable,
                fallback,
                self.first_reason,
            )


class FamilyRanker(PlanRanker):
    """A plan ranker whose result carries a ``relevance`` tuple.

    Subclasses implement ``_plan`` returning :class:`Scored` (or a plain pair, then
    the relevance is positional) and set ``judges_relevance``: True when the relevance
    values are the model's own relevant / not relevant judgement (what a dynamic
    cut-off may threshold), False when they only encode the rank or the points.
    """

    judges_relevance: bool = False
    strict: bool = False

    def _result(self, res: Any, n: int, k: int, usage: Usage) -> Ranking:
        order, scores = res
        ranking = finish_ranking(order, scores, n, k, usage)
        rel = getattr(res, "relevance", None)
        values = monotone(rel if rel is not None else positional(n))
        return dataclasses.replace(ranking, relevance=tuple(values[:k]))

    @staticmethod
    def _small(cands: list[Candidate], k: int) -> Ranking:
        if not cands:
            return Ranking(order=(), scores=(), usage=Usage(), relevance=())
        return Ranking(order=(0,), scores=(1.0,), usage=Usage(), relevance=(1.0,))

    def rank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Rank ``candidates`` for ``query``; returns positions into ``candidates``."""
        query, cands, k = self._prepare(query, candidates, top_n)
        if len(cands) < 2:
            return self._small(cands, k)
        usage = Usage()
        t0 = time.perf_counter()
        res = run_plan(self._plan(query, cands, usage), self.llm, usage)
        usage.wall_time = time.perf_counter() - t0
        return self._result(res, len(cands), k, usage)

    async def arank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Async twin of :meth:`rank` (same plan, calls of a round run concurrently)."""
        query, cands, k = self._prepare(query, candidates, top_n)
        if len(cands) < 2:
            return self._small(cands, k)
        usage = Usage()
        t0 = time.perf_counter()
        res = await arun_plan(self._plan(query, cands, usage), self.llm, usage)
        usage.wall_time = time.perf_counter() - t0
        return self._result(res, len(cands), k, usage)

    def _llm_config(self) -> Any:
        cfg = getattr(self.llm, "to_config", None)
        return cfg() if callable(cfg) else None
