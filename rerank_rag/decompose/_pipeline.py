"""Decompose, retrieve every query concurrently, merge, rerank against the original question.

This is the pipeline of Ammann, Golde & Akbik (2025), "Question Decomposition for
Retrieval-Augmented Generation": Q = {q} + DECOMPOSE(q); retrieve ``k`` candidates for
every query; merge (union with de-duplication); rerank the pool against the *original*
question; keep the ``top_n`` best.

Reading guide: :meth:`DecomposeRetrieveRerank._steps` is the whole pipeline, top to
bottom, in one generator. It *yields* the three slow calls (decompose; retrieve every
query; rerank) and receives their outcomes; everything else (what a failure means,
merging, the final cut) happens there, once. :meth:`~DecomposeRetrieveRerank.run` and
:meth:`~DecomposeRetrieveRerank.arun` are two small drivers that perform those calls,
with threads or with asyncio.

Failure policy (each recorded in :attr:`PipelineResult.failures` and in ``usage``):

* a decomposer's transient failure: no decomposition (the decomposer logs it);
* a query whose retrieval fails: skipped (``usage["retrieve"].failed_calls``); every
  query failing raises :class:`RetrievalError`;
* a reranker failure: the merged order is kept (``usage["rerank"].fallbacks``);
* the pipeline logs its own degradations once per run at WARNING;
* an error with ``transient = False`` (e.g. :class:`~rerank_rag.LLMConfigurationError`)
  is raised from any stage; ``strict=True`` raises every failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Union

from .._errors import RerankRagError, is_permanent
from .._ranker import check_query
from .._retrieval import Retriever, as_retriever
from .._types import Candidate, Ranking, Usage, check_top_n
from ..adapters import arank, checked_ranking
from ._decomposer import Decomposition, describe
from ._function import as_decomposer
from ._merge import MERGE_METHODS, PooledCandidate, id_conflicts, merge_results
from ._result import PipelineResult, RetrievalUsage, StageFailure

__all__ = ["DecomposeRetrieveRerank", "RetrievalError"]

log = logging.getLogger("rerank_rag.decompose")


class RetrievalError(RerankRagError):
    """First-stage retrieval failed (in strict mode, or for every query)."""


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


# The three slow calls the pipeline yields (and what the drivers send back).
@dataclass(frozen=True, slots=True)
class _Decompose:  # -> Decomposition
    question: str


@dataclass(frozen=True, slots=True)
class _Retrieve:  # -> one (candidates | exception, seconds) per query
    queries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Rerank:  # -> Ranking | exception
    question: str
    candidates: tuple[Candidate, ...]


_Call = Union[_Decompose, _Retrieve, _Rerank]
_MISSING: Any = object()


class DecomposeRetrieveRerank:
    """Question decomposition + concurrent retrieval + merge + rerank.

    Args:
        retriever: the first stage: a callable ``query -> list of passages`` (sync or
            async; ``k`` is passed only to a parameter named for it), a
            :class:`~rerank_rag.retrievers.BM25Retriever`, or a LangChain / LlamaIndex
            retriever (see :func:`~rerank_rag.as_retriever`).
        ranker: any rerank-rag ranker (``rank`` / ``arank``: pointwise, listwise,
            JointRank), a pointwise ``Scorer``, or ``None`` to keep the merged order.
            It always scores against the *original* question.
        decomposer: ``None`` (single-query retrieval + rerank, the baseline), a
            :class:`Decomposer`, an LLM backend (wrapped in a default ``Decomposer``),
            or a callable ``question -> list[str]`` (sync or async) returning
            sub-questions (e.g. gold decompositions). The original question is always
            kept; sub-questions that repeat it or each other are dropped.
        k: candidates retrieved per query (default 10, as in the paper).
        top_n: results returned after reranking (default 10; ``None`` for the whole pool).
        merge: ``"union"`` (default; the paper's plain union in first-seen order),
            ``"interleave"`` (round-robin by rank) or ``"rrf"`` (reciprocal rank fusion).
            The merged order is the reranker's input order.
        rrf_k: the RRF constant (default 60).
        strict: raise instead of degrading: a retriever error raises
            :class:`RetrievalError`, a decomposer or reranker error propagates.
        max_subquestions: cap on sub-questions for a callable decomposer or an LLM
            backend (default 5); a :class:`Decomposer` keeps its own.
        retriever_timeout: seconds one retriever call may take (default ``None``: no
            limit). A call past it counts as a failed query (``TimeoutError``).
        max_workers: threads for sync retrieval of several queries (default: one per
            query, at most 16).
        top_k: deprecated name of ``top_n`` (DeprecationWarning; removed after 0.2).
    """

    def __init__(
        self,
        retriever: Any,
        ranker: Any,
        *,
        decomposer: Any = None,
        k: int = 10,
        top_n: int | None = _MISSING,
        merge: str = "union",
        rrf_k: int = 60,
        strict: bool = False,
        max_subquestions: int | None = None,
        retriever_timeout: float | None = None,
        max_workers: int | None = None,
        top_k: int | None = _MISSING,
    ) -> None:
        if top_k is not _MISSING:
            if top_n is not _MISSING:
                raise TypeError("pass top_n only (top_k is its deprecated name)")
            warnings.warn(
                "DecomposeRetrieveRerank(top_k=...) is deprecated; use top_n=",
                DeprecationWarning, stacklevel=2,
            )
            top_n = top_k
        top_n = 10 if top_n is _MISSING else top_n
        _check_positive("k", k)
        _check_positive("top_n", top_n, allow_none=True)
        _check_positive("max_workers", max_workers, allow_none=True)
        if merge not in MERGE_METHODS:
            raise ValueError(f"merge must be one of {', '.join(MERGE_METHODS)}; got {merge!r}")
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
            raise ValueError(f"rrf_k must be a non-negative int, got {rrf_k!r}")
        self.retriever: Retriever = as_retriever(retriever, timeout=retriever_timeout)
        self.ranker = _as_ranker(ranker)
        self.decomposer = as_decomposer(
            decomposer, max_subquestions=max_subquestions, strict=strict
        )
        self.k = k
        self.top_n = top_n
        self.merge = merge
        self.rrf_k = rrf_k
        self.strict = strict
        self.max_workers = max_workers

    @property
    def top_k(self) -> int | None:
        """Deprecated name of :attr:`top_n`."""
        warnings.warn("DecomposeRetrieveRerank.top_k is deprecated; use top_n",
                      DeprecationWarning, stacklevel=2)
        return self.top_n

    def __repr__(self) -> str:
        return (
            f"DecomposeRetrieveRerank(retriever={self.retriever!r}, "
            f"ranker={type(self.ranker).__name__}, decomposer={self.decomposer!r}, "
            f"k={self.k}, top_n={self.top_n}, merge={self.merge!r})"
        )

    # -- the pipeline, top to bottom ------------------------------------------------------

    def _steps(self, question: str) -> Generator[_Call, Any, PipelineResult]:
        t_start = time.perf_counter()
        failures: list[StageFailure] = []

        # 1. Decomposition: the query set is the question plus its sub-questions.
        #    (A decomposer degrades by itself: an empty decomposition with an error.)
        decomposition: Decomposition | None = None
        queries: tuple[str, ...] = (question,)
        if self.decomposer is not None:
            decomposition = yield _Decompose(question)
            queries = decomposition.queries
            if decomposition.error is not None:
                failures.append(StageFailure("decompose", decomposition.error))

        # 2. Retrieval: k candidates for every query, all at once. A failed query is
        #    recorded and skipped; strict mode or a permanent error raises.
        t0 = time.perf_counter()
        outcomes = yield _Retrieve(queries)
        retrieval = RetrievalUsage(
            calls=len(queries),
            wall_time=time.perf_counter() - t0,
            per_query_time=tuple(seconds for _, seconds in outcomes),
        )
        results: list[list[Candidate]] = []
        for i, (query, (found, _)) in enumerate(zip(queries, outcomes)):
            if isinstance(found, Exception):
                if is_permanent(found):
                    raise found
                if self.strict:
                    raise RetrievalError(
                        f"retrieval failed for query {i} ({query!r}): {describe(found)}"
                    ) from found
                failures.append(StageFailure("retrieve", describe(found), found, i, query))
                retrieval.failed_calls += 1
                found = []
            results.append(found)
            retrieval.hits += len(found)
        if retrieval.failed_calls == len(queries):
            first = next(f for f in failures if f.stage == "retrieve")
            raise RetrievalError(
                f"retrieval failed for every query ({len(queries)}); first error: {first.error}"
            ) from first.exception

        # 3. Merge: one de-duplicated pool, in the order the reranker will see it.
        pool = merge_results(results, queries, method=self.merge, rrf_k=self.rrf_k)
        retrieval.unique, retrieval.id_conflicts = len(pool), id_conflicts(pool)

        # 4. Rerank the pool against the original question; on failure keep the merge order.
        ranking = self._merged_order(pool)
        if self.ranker is not None and pool:
            t0 = time.perf_counter()
            ranked = yield _Rerank(question, tuple(p.candidate for p in pool))
            if isinstance(ranked, Exception):
                if self.strict or is_permanent(ranked):
                    raise ranked
                failures.append(StageFailure("rerank", describe(ranked), ranked))
                usage = Usage(fallbacks=1, wall_time=time.perf_counter() - t0)
                ranking = Ranking(ranking.order, ranking.scores, usage)
            else:
                ranking = ranked

        n_keep = check_top_n(self.top_n, len(ranking.order)) if ranking.order else 0
        items = [pool[i] for i in ranking.order[:n_keep]]
        own = [f for f in failures if f.stage != "decompose"]  # the decomposer logs its own
        if own:
            log.warning(
                "decompose-retrieve-rerank degraded for %r: %s",
                question if len(question) <= 80 else question[:77] + "...",
                "; ".join(f.summary() for f in own),
            )
        return PipelineResult(
            question=question,
            candidates=[it.candidate for it in items],
            scores=list(ranking.scores[:n_keep]),
            items=items,
            pool=pool,
            queries=queries,
            decomposition=decomposition,
            failures=tuple(failures),
            usage={
                "decompose": decomposition.usage if decomposition is not None else Usage(),
                "retrieve": retrieval,
                "rerank": ranking.usage,
            },
            wall_time=time.perf_counter() - t_start,
            ranking=ranking,
        )

    def _merged_order(self, pool: list[PooledCandidate]) -> Ranking:
        """The pool as it is: RRF scores with ``merge="rrf"``, else ``1 - position / n``."""
        if self.merge == "rrf":
            return Ranking(tuple(range(len(pool))), tuple(p.fused_score or 0.0 for p in pool))
        return Ranking.from_order(list(range(len(pool))))

    # -- the sync driver -------------------------------------------------------------------

    def run(self, question: str) -> PipelineResult:
        """Run the pipeline for ``question`` (sync; several queries retrieve in threads).

        Works inside a running event loop too (async decomposers and retrievers then run
        on their own loop in a worker thread).

        Raises:
            TypeError / ValueError: ``question`` is not a non-empty string.
            RetrievalError: every query failed, or one did with ``strict=True``.
            LLMConfigurationError: from any stage (any error with ``transient=False``
                is raised as it is).
        """
        steps = self._steps(check_query(question))
        call = next(steps)
        while True:
            try:
                call = steps.send(self._perform(call))
            except StopIteration as done:
                return done.value

    def _perform(self, call: _Call) -> Any:
        if isinstance(call, _Decompose):
            assert self.decomposer is not None
            return self.decomposer.decompose(call.question)
        if isinstance(call, _Retrieve):
            if len(call.queries) == 1:
                return [self._retrieve_one(call.queries[0])]
            workers = min(len(call.queries), self.max_workers or 16)
            with ThreadPoolExecutor(workers, thread_name_prefix="rerank-rag-retrieve") as pool:
                return list(pool.map(self._retrieve_one, call.queries))
        assert isinstance(call, _Rerank)
        try:
            ranked = self.ranker.rank(call.question, list(call.candidates), top_n=self.top_n)
            return checked_ranking(ranked, len(call.candidates), "candidates")
        except Exception as exc:  # noqa: BLE001 - judged in _steps
            return exc

    def _retrieve_one(self, query: str) -> tuple[Any, float]:
        t0 = time.perf_counter()
        try:
            found: Any = self.retriever.retrieve(query, self.k)
        except Exception as exc:  # noqa: BLE001 - judged in _steps
            found = exc
        return found, time.perf_counter() - t0

    # -- the async driver ------------------------------------------------------------------

    async def arun(self, question: str) -> PipelineResult:
        """Async twin of :meth:`run` (async retrievers via ``asyncio.gather``, sync ones
        in worker threads)."""
        steps = self._steps(check_query(question))
        call = next(steps)
        while True:
            try:
                call = steps.send(await self._aperform(call))
            except StopIteration as done:
                return done.value

    async def _aperform(self, call: _Call) -> Any:
        if isinstance(call, _Decompose):
            assert self.decomposer is not None
            return await self.decomposer.adecompose(call.question)
        if isinstance(call, _Retrieve):
            return list(await asyncio.gather(*map(self._aretrieve_one, call.queries)))
        assert isinstance(call, _Rerank)
        cands = list(call.candidates)
        try:
            ranked = await arank(self.ranker, call.question, cands, self.top_n)
            return checked_ranking(ranked, len(cands), "candidates")
        except Exception as exc:  # noqa: BLE001 - judged in _steps
            return exc

    async def _aretrieve_one(self, query: str) -> tuple[Any, float]:
        t0 = time.perf_counter()
        try:
            found: Any = await self.retriever.aretrieve(query, self.k)
        except Exception as exc:  # noqa: BLE001 - judged in _steps
            found = exc
        return found, time.perf_counter() - t0

    __call__ = run
