"""What :class:`~rerank_rag.decompose.DecomposeRetrieveRerank` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._types import Candidate, Ranking, Usage
from ._decomposer import Decomposition
from ._merge import PooledCandidate

__all__ = ["PipelineResult", "RetrievalUsage", "StageFailure", "SkippedQuery"]


@dataclass(frozen=True, slots=True)
class StageFailure:
    """A failure the pipeline recorded and degraded past (non-strict mode).

    Attributes:
        stage: ``"decompose"`` (no decomposition), ``"retrieve"`` (that query was
            skipped) or ``"rerank"`` (the merged order was kept).
        error: ``"ExceptionType: message"``.
        exception: the exception itself (``None`` when only its description is known,
            e.g. a :class:`Decomposer` fallback).
        index: for ``"retrieve"``: position of the query in
            :attr:`PipelineResult.queries` (0 = original question).
        query: for ``"retrieve"``: the query text.
    """

    stage: str
    error: str
    exception: BaseException | None = None
    index: int | None = None
    query: str | None = None

    def summary(self) -> str:
        if self.stage == "retrieve":
            return f"query {self.index} ({self.query!r}) skipped: {self.error}"
        if self.stage == "rerank":
            return f"reranker failed, merged order kept: {self.error}"
        return f"no decomposition: {self.error}"

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "error": self.error, "index": self.index, "query": self.query}


#: The 0.1 name of a retrieval failure (now a :class:`StageFailure` with ``stage="retrieve"``).
SkippedQuery = StageFailure


@dataclass(slots=True)
class RetrievalUsage:
    """What the retrieval stage did.

    Attributes:
        calls: retriever calls made (one per query).
        failed_calls: calls that raised or timed out (their queries were skipped).
        hits: candidates returned over all queries (before de-duplication).
        unique: candidates in the merged pool.
        id_conflicts: ids that came with more than one text (kept as separate passages).
        wall_time: seconds for the whole stage (all queries, concurrently).
        per_query_time: seconds per query, aligned with the query list.
    """

    calls: int = 0
    failed_calls: int = 0
    hits: int = 0
    unique: int = 0
    id_conflicts: int = 0
    wall_time: float = 0.0
    per_query_time: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "hits": self.hits,
            "unique": self.unique,
            "id_conflicts": self.id_conflicts,
            "wall_time": self.wall_time,
            "per_query_time": list(self.per_query_time),
        }


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """The result of :meth:`DecomposeRetrieveRerank.run`.

    Attributes:
        question: the original question.
        candidates: the final ``top_n`` candidates, best first (each appears once).
        scores: the reranker's score per final candidate (non-increasing); without a
            reranker (or after a reranker failure), the RRF score (``merge="rrf"``) or
            ``1 - position / n``.
        items: the final candidates with their provenance (:class:`PooledCandidate`).
        pool: every merged candidate, in the order given to the reranker.
        queries: the query set (original question first, then the sub-questions).
        decomposition: the decomposer's result (``None`` without a decomposer).
        failures: every failure degraded past, in pipeline order (empty when all went
            well).
        usage: per stage: ``"decompose"`` (:class:`~rerank_rag.Usage`), ``"retrieve"``
            (:class:`RetrievalUsage`), ``"rerank"`` (:class:`~rerank_rag.Usage`), each
            with its ``wall_time``.
        wall_time: seconds for the whole run.
        ranking: the reranker's raw :class:`~rerank_rag.Ranking` (positions into ``pool``).
    """

    question: str
    candidates: list[Candidate]
    scores: list[float]
    items: list[PooledCandidate]
    pool: list[PooledCandidate]
    queries: tuple[str, ...]
    decomposition: Decomposition | None
    failures: tuple[StageFailure, ...]
    usage: dict[str, Any]
    wall_time: float
    ranking: Ranking

    @property
    def sub_questions(self) -> tuple[str, ...]:
        return self.queries[1:]

    @property
    def skipped_queries(self) -> tuple[StageFailure, ...]:
        """The queries whose retrieval failed (``failures`` of stage ``"retrieve"``)."""
        return tuple(f for f in self.failures if f.stage == "retrieve")

    @property
    def rerank_error(self) -> str | None:
        """The reranker's error when the merged order was kept instead, else ``None``."""
        return next((f.error for f in self.failures if f.stage == "rerank"), None)

    def llm_usage(self) -> Usage:
        """LLM usage of decomposition and reranking together (depths add up)."""
        total = Usage()
        total.merge(self.usage["decompose"]).merge(self.usage["rerank"])
        total.wall_time = self.wall_time
        return total

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary (for logs and evaluation records)."""
        return {
            "question": self.question,
            "queries": list(self.queries),
            "results": [
                {**it.as_dict(), "score": s} for it, s in zip(self.items, self.scores)
            ],
            "pool_size": len(self.pool),
            "failures": [f.as_dict() for f in self.failures],
            "skipped_queries": [{"index": s.index, "query": s.query, "error": s.error}
                                for s in self.skipped_queries],
            "usage": {
                "decompose": self.usage["decompose"].as_dict(),
                "retrieve": self.usage["retrieve"].as_dict(),
                "rerank": self.usage["rerank"].as_dict(),
            },
            "wall_time": self.wall_time,
            "rerank_error": self.rerank_error,
        }
