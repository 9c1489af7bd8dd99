"""Decompose, retrieve every query concurrently, merge, rerank against the original question.

This is the pipeline of Ammann, Golde & Akbik (2025), "Question Decomposition for
Retrieval-Augmented Generation": Q = {q} + DECOMPOSE(q); retrieve top-k for every
query; merge (union with de-duplication); rerank the pool against the *original*
question; keep the top results.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .._errors import RerankRagError
from .._ranker import check_query
from .._types import Candidate, Ranking, Usage, check_top_n
from ..retrievers import Retriever, as_retriever
from ._decomposer import Decomposer, Decomposition, dedupe_subquestions
from ._merge import MERGE_METHODS, PooledCandidate, merge_results

__all__ = [
    "DecomposeRetrieveRerank",
    "PipelineResult",
    "RetrievalUsage",
    "SkippedQuery",
    "RetrievalError",
]


class RetrievalError(RerankRagError):
    """First-stage retrieval failed (in strict mode, or for every query)."""


@dataclass(frozen=True, slots=True)
class SkippedQuery:
    """A query whose retrieval failed and was skipped (non-strict mode).

    Attributes:
        index: position in :attr:`PipelineResult.queries` (0 = original question).
        query: the query text.
        error: ``"ExceptionType: message"``.
        exception: the exception itself.
    """

    index: int
    query: str
    error: str
    exception: BaseException | None = None


@dataclass(slots=True)
class RetrievalUsage:
    """What the retrieval stage did.

    Attributes:
        calls: retriever calls made (one per query).
        failed_calls: calls that raised (their queries are in ``skipped_queries``).
        hits: candidates returned over all queries (before de-duplication).
        unique: candidates in the merged pool.
        wall_time: seconds for the whole stage (all queries, concurrently).
        per_query_time: seconds per query, aligned with the query list.
    """

    calls: int = 0
    failed_calls: int = 0
    hits: int = 0
    unique: int = 0
    wall_time: float = 0.0
    per_query_time: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "hits": self.hits,
            "unique": self.unique,
            "wall_time": self.wall_time,
            "per_query_time": list(self.per_query_time),
        }


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """The result of :meth:`DecomposeRetrieveRerank.run`.

    Attributes:
        question: the original question.
        candidates: the final ``top_k`` candidates, best first (each appears once).
        scores: the reranker's score per final candidate (non-increasing); without a
            reranker, the RRF score (``merge="rrf"``) or ``1 - position / n``.
        items: the final candidates with their provenance (:class:`PooledCandidate`).
        pool: every merged candidate, in the order given to the reranker.
        queries: the query set (original question first, then the sub-questions).
        decomposition: the decomposer's result (``None`` without a decomposer).
        skipped_queries: queries whose retrieval failed (non-strict mode).
        usage: per stage: ``"decompose"`` (:class:`~rerank_rag.Usage`), ``"retrieve"``
            (:class:`RetrievalUsage`), ``"rerank"`` (:class:`~rerank_rag.Usage`), each
            with its ``wall_time``.
        wall_time: seconds for the whole run.
        ranking: the reranker's raw :class:`~rerank_rag.Ranking` (positions into ``pool``).
        rerank_error: the reranker's error message when it failed and the pool order was
            kept instead (non-strict mode).
    """

    question: str
    candidates: list[Candidate]
    scores: list[float]
    items: list[PooledCandidate]
    pool: list[PooledCandidate]
    queries: tuple[str, ...]
    decomposition: Decomposition | None
    skipped_queries: tuple[SkippedQuery, ...]
    usage: dict[str, Any]
    wall_time: float
    ranking: Ranking
    rerank_error: str | None = None

    @property
    def sub_questions(self) -> tuple[str, ...]:
        return self.queries[1:]

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


DecomposerLike = Any  # Decomposer | Callable[[str], Sequence[str]] | None


class _ScorerRanker:
    """Adapts a pointwise ``Scorer`` (``score`` / ``ascore``) to ``rank`` / ``arank``."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer

    def _finish(self, scores: Sequence[float], n: int, top_n: int | None, t0: float) -> Ranking:
        if len(scores) != n:
            raise ValueError(f"scorer returned {len(scores)} scores for {n} passages")
        return Ranking.from_scores(list(scores), top_n, Usage(wall_time=time.perf_counter() - t0))

    def rank(self, query: str, candidates: Sequence[Candidate], top_n: int | None = None) -> Ranking:
        t0 = time.perf_counter()
        scores = self.scorer.score(query, [c.text for c in candidates])
        return self._finish(scores, len(candidates), top_n, t0)

    async def arank(
        self, query: str, candidates: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        t0 = time.perf_counter()
        if callable(getattr(self.scorer, "ascore", None)):
            scores = await self.scorer.ascore(query, [c.text for c in candidates])
        else:
            scores = await asyncio.to_thread(self.scorer.score, query, [c.text for c in candidates])
        return self._finish(scores, len(candidates), top_n, t0)


def _as_ranker(ranker: Any) -> Any:
    if ranker is None:
        return None
    if callable(getattr(ranker, "rank", None)):
        return ranker
    if callable(getattr(ranker, "score", None)):
        return _ScorerRanker(ranker)
    raise TypeError(
        f"ranker of type {type(ranker).__name__} has neither rank() nor score(): pass a "
        "rerank_rag ranker (PointwiseRanker, ListwiseRanker, JointRanker, ...), a Scorer, "
        "or None to keep the merged order"
    )


def _check_positive(name: str, value: object, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _validate_ranking(ranking: Any, n: int) -> Ranking:
    """A ranker's answer must be a Ranking of distinct in-range positions."""
    if not isinstance(ranking, Ranking):
        raise TypeError(f"ranker returned {type(ranking).__name__}, expected a Ranking")
    order = ranking.order
    if len(set(order)) != len(order) or any(not 0 <= i < n for i in order):
        raise ValueError(f"ranker returned an invalid order over {n} candidates: {order!r}")
    return ranking


class DecomposeRetrieveRerank:
    """Question decomposition + concurrent retrieval + merge + rerank.

    Args:
        retriever: the first stage: a callable ``query -> list of passages`` (sync or
            async, optionally taking ``k``), a :class:`~rerank_rag.retrievers.BM25Retriever`,
            or a LangChain / LlamaIndex retriever (see
            :func:`~rerank_rag.retrievers.as_retriever`).
        ranker: any rerank-rag ranker (``rank`` / ``arank``: pointwise, listwise,
            JointRank), a pointwise ``Scorer``, or ``None`` to keep the merged order.
            It always scores against the *original* question.
        decomposer: ``None`` (single-query retrieval + rerank, the baseline), a
            :class:`Decomposer`, an LLM backend (wrapped in a default
            ``Decomposer``), or a callable ``question -> list[str]`` (sync or async)
            returning sub-questions (e.g. gold decompositions). The original question
            is always kept; sub-questions that repeat it or each other are dropped.
        k: candidates retrieved per query (default 10, as in the paper).
        top_k: results returned after reranking (default 10; ``None`` for the whole pool).
        merge: ``"union"`` (default; the paper's plain union in first-seen order),
            ``"interleave"`` (round-robin by rank) or ``"rrf"`` (reciprocal rank fusion).
            The merged order is the reranker's input order.
        rrf_k: the RRF constant (default 60).
        strict: raise instead of degrading. A retriever error then raises
            :class:`RetrievalError`, a decomposer or reranker error propagates.
            Otherwise a failed query is skipped (recorded in ``skipped_queries``), a
            failed callable decomposer means no decomposition, and a failed reranker
            keeps the merged order (``usage["rerank"].fallbacks``). If *every* query
            fails, :class:`RetrievalError` is raised in both modes.
        max_workers: threads for sync retrieval of several queries (default: one per
            query, at most 16).
    """

    def __init__(
        self,
        retriever: Any,
        ranker: Any,
        *,
        decomposer: DecomposerLike = None,
        k: int = 10,
        top_k: int | None = 10,
        merge: str = "union",
        rrf_k: int = 60,
        strict: bool = False,
        max_workers: int | None = None,
    ) -> None:
        self.retriever: Retriever = as_retriever(retriever)
        self.ranker = _as_ranker(ranker)
        if (
            decomposer is not None
            and not isinstance(decomposer, Decomposer)
            and callable(getattr(decomposer, "complete", None))
            and callable(getattr(decomposer, "acomplete", None))
        ):
            decomposer = Decomposer(decomposer, strict=strict)  # an LLM backend
        if not (decomposer is None or isinstance(decomposer, Decomposer) or callable(decomposer)):
            raise TypeError(
                "decomposer must be None, a Decomposer, an LLM backend or a callable "
                "question -> list[str]"
            )
        _check_positive("k", k)
        _check_positive("top_k", top_k, allow_none=True)
        _check_positive("max_workers", max_workers, allow_none=True)
        if merge not in MERGE_METHODS:
            raise ValueError(f"merge must be one of {', '.join(MERGE_METHODS)}; got {merge!r}")
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
            raise ValueError(f"rrf_k must be a non-negative int, got {rrf_k!r}")
        self.decomposer = decomposer
        self.k = k
        self.top_k = top_k
        self.merge = merge
        self.rrf_k = rrf_k
        self.strict = strict
        self.max_workers = max_workers

    def __repr__(self) -> str:
        return (
            f"DecomposeRetrieveRerank(retriever={self.retriever!r}, ranker={type(self.ranker).__name__}, "
            f"decomposer={type(self.decomposer).__name__}, k={self.k}, top_k={self.top_k}, "
            f"merge={self.merge!r})"
        )

    # -- stage 1: decomposition ----------------------------------------------------------

    def _from_callable(self, question: str, subs: Any, t0: float) -> Decomposition:
        if subs is None:
            subs = []
        if isinstance(subs, str) or not isinstance(subs, Sequence):
            raise TypeError("a decomposer callable must return a list of strings")
        kept = dedupe_subquestions(list(subs), question=question)
        return Decomposition(
            question, tuple(kept), usage=Usage(wall_time=time.perf_counter() - t0)
        )

    def _callable_failed(self, question: str, exc: BaseException, t0: float) -> Decomposition:
        if self.strict:
            raise exc
        usage = Usage(fallbacks=1, wall_time=time.perf_counter() - t0)
        return Decomposition(question, (), usage=usage, error=f"{type(exc).__name__}: {exc}")

    def _decompose(self, question: str) -> Decomposition | None:
        d = self.decomposer
        if d is None:
            return None
        if isinstance(d, Decomposer):
            return d.decompose(question)
        t0 = time.perf_counter()
        try:
            subs = d(question)
            if inspect.isawaitable(subs):
                subs = asyncio.run(_await(subs))
            return self._from_callable(question, subs, t0)
        except Exception as exc:  # noqa: BLE001 - degrade or re-raise per strict
            return self._callable_failed(question, exc, t0)

    async def _adecompose(self, question: str) -> Decomposition | None:
        d = self.decomposer
        if d is None:
            return None
        if isinstance(d, Decomposer):
            return await d.adecompose(question)
        t0 = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(d) or inspect.iscoroutinefunction(
                getattr(d, "__call__", None)
            ):
                subs = await d(question)
            else:
                subs = await asyncio.to_thread(d, question)
                if inspect.isawaitable(subs):
                    subs = await subs
            return self._from_callable(question, subs, t0)
        except Exception as exc:  # noqa: BLE001
            return self._callable_failed(question, exc, t0)

    # -- stage 2: retrieval ---------------------------------------------------------------

    def _timed_retrieve(self, query: str) -> tuple[list[Candidate] | BaseException, float]:
        t0 = time.perf_counter()
        try:
            out: list[Candidate] | BaseException = self.retriever.retrieve(query, self.k)
        except Exception as exc:  # noqa: BLE001 - recorded per query
            out = exc
        return out, time.perf_counter() - t0

    async def _atimed_retrieve(self, query: str) -> tuple[list[Candidate] | BaseException, float]:
        t0 = time.perf_counter()
        try:
            out: list[Candidate] | BaseException = await self.retriever.aretrieve(query, self.k)
        except Exception as exc:  # noqa: BLE001
            out = exc
        return out, time.perf_counter() - t0

    def _retrieve_all(self, queries: Sequence[str]) -> list[tuple[Any, float]]:
        if len(queries) == 1 and not self.retriever.is_async:
            return [self._timed_retrieve(queries[0])]
        # (an async retriever always runs in a worker thread, with its own event loop, so
        # that ``run`` also works when called from code that has a running loop)
        workers = min(len(queries), self.max_workers or 16)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rerank-rag-retrieve") as ex:
            return list(ex.map(self._timed_retrieve, queries))

    def _collect(
        self, queries: Sequence[str], outcomes: Sequence[tuple[Any, float]], wall: float
    ) -> tuple[list[list[Candidate]], list[SkippedQuery], RetrievalUsage]:
        results: list[list[Candidate]] = []
        skipped: list[SkippedQuery] = []
        usage = RetrievalUsage(calls=len(queries), wall_time=wall)
        usage.per_query_time = tuple(t for _, t in outcomes)
        for i, (q, (out, _)) in enumerate(zip(queries, outcomes)):
            if isinstance(out, BaseException):
                if self.strict:
                    raise RetrievalError(
                        f"retrieval failed for query {i} ({q!r}): {type(out).__name__}: {out}"
                    ) from out
                usage.failed_calls += 1
                skipped.append(SkippedQuery(i, q, f"{type(out).__name__}: {out}", out))
                results.append([])
            else:
                results.append(out)
                usage.hits += len(out)
        if queries and len(skipped) == len(queries):
            first = skipped[0].exception
            raise RetrievalError(
                f"retrieval failed for every query ({len(queries)}); first error: {skipped[0].error}"
            ) from first
        return results, skipped, usage

    # -- stage 3/4: merge, rerank --------------------------------------------------------

    def _no_rerank(self, pool: list[PooledCandidate]) -> Ranking:
        n = len(pool)
        if self.merge == "rrf":
            scores = [p.fused_score or 0.0 for p in pool]
            return Ranking(tuple(range(n)), tuple(scores))
        return Ranking.from_order(list(range(n)))

    def _rerank_failed(self, pool: list[PooledCandidate], exc: BaseException, t0: float) -> tuple[Ranking, str]:
        if self.strict:
            raise exc
        fallback = self._no_rerank(pool)
        usage = Usage(fallbacks=1, wall_time=time.perf_counter() - t0)
        return Ranking(fallback.order, fallback.scores, usage), f"{type(exc).__name__}: {exc}"

    def _finish(
        self,
        question: str,
        decomposition: Decomposition | None,
        queries: tuple[str, ...],
        pool: list[PooledCandidate],
        ranking: Ranking,
        rerank_error: str | None,
        skipped: list[SkippedQuery],
        r_usage: RetrievalUsage,
        t_start: float,
    ) -> PipelineResult:
        n_keep = check_top_n(self.top_k, len(ranking.order)) if ranking.order else 0
        order = list(ranking.order[:n_keep])
        scores = list(ranking.scores[:n_keep])
        items = [pool[i] for i in order]
        d_usage = decomposition.usage if decomposition is not None else Usage()
        return PipelineResult(
            question=question,
            candidates=[it.candidate for it in items],
            scores=scores,
            items=items,
            pool=pool,
            queries=queries,
            decomposition=decomposition,
            skipped_queries=tuple(skipped),
            usage={"decompose": d_usage, "retrieve": r_usage, "rerank": ranking.usage},
            wall_time=time.perf_counter() - t_start,
            ranking=ranking,
            rerank_error=rerank_error,
        )

    # -- public --------------------------------------------------------------------------

    def run(self, question: str) -> PipelineResult:
        """Run the pipeline for ``question`` (sync; retrieval runs in a thread pool).

        Raises:
            TypeError / ValueError: ``question`` is not a non-empty string.
            RetrievalError: every query failed, or one did with ``strict=True``.
        """
        question = check_query(question)
        t_start = time.perf_counter()
        decomposition = self._decompose(question)
        queries = decomposition.queries if decomposition is not None else (question,)

        t0 = time.perf_counter()
        outcomes = self._retrieve_all(queries)
        results, skipped, r_usage = self._collect(queries, outcomes, time.perf_counter() - t0)
        pool = merge_results(results, queries, method=self.merge, rrf_k=self.rrf_k)
        r_usage.unique = len(pool)

        t0 = time.perf_counter()
        rerank_error = None
        if self.ranker is None or not pool:
            ranking = self._no_rerank(pool)
        else:
            try:
                ranking = self.ranker.rank(question, [p.candidate for p in pool], top_n=self.top_k)
                ranking = _validate_ranking(ranking, len(pool))
            except Exception as exc:  # noqa: BLE001 - degrade or re-raise per strict
                ranking, rerank_error = self._rerank_failed(pool, exc, t0)
        return self._finish(
            question, decomposition, queries, pool, ranking, rerank_error, skipped, r_usage, t_start
        )

    async def arun(self, question: str) -> PipelineResult:
        """Async twin of :meth:`run` (async retrievers via ``asyncio.gather``, sync ones
        in worker threads)."""
        question = check_query(question)
        t_start = time.perf_counter()
        decomposition = await self._adecompose(question)
        queries = decomposition.queries if decomposition is not None else (question,)

        t0 = time.perf_counter()
        outcomes = list(await asyncio.gather(*(self._atimed_retrieve(q) for q in queries)))
        results, skipped, r_usage = self._collect(queries, outcomes, time.perf_counter() - t0)
        pool = merge_results(results, queries, method=self.merge, rrf_k=self.rrf_k)
        r_usage.unique = len(pool)

        t0 = time.perf_counter()
        rerank_error = None
        if self.ranker is None or not pool:
            ranking = self._no_rerank(pool)
        else:
            cands = [p.candidate for p in pool]
            try:
                if callable(getattr(self.ranker, "arank", None)):
                    ranking = await self.ranker.arank(question, cands, top_n=self.top_k)
                else:
                    ranking = await asyncio.to_thread(self.ranker.rank, question, cands, self.top_k)
                ranking = _validate_ranking(ranking, len(pool))
            except Exception as exc:  # noqa: BLE001
                ranking, rerank_error = self._rerank_failed(pool, exc, t0)
        return self._finish(
            question, decomposition, queries, pool, ranking, rerank_error, skipped, r_usage, t_start
        )

    __call__ = run


async def _await(aw: Any) -> Any:
    return await aw

