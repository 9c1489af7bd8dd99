"""Batch reranking of large query sets.

Rerank an iterable of ``(query id, query, candidates)`` with any ranker, keeping the
LLM server full, on one machine (:class:`LocalEngine`) or on a Ray cluster
(:class:`RayEngine`, ``pip install 'rerank-rag[ray]'``), and stream the rankings with
their usage, or write a resumable TREC run (:func:`rerank_to_run`, the ``rerank-rag
batch`` command).

    >>> from rerank_rag import FakeLLM, ListwiseRanker
    >>> from rerank_rag.batch import rerank_batch
    >>> ranker = ListwiseRanker(FakeLLM(lambda messages: "[2] > [1]"))
    >>> results = rerank_batch(ranker, [("q1", "capital of France?", ["Berlin", "Paris"])])
    >>> results[0].qid, results[0].ranking.order
    ('q1', (1, 0))

Importing this package loads no third-party module; Ray is imported by
:class:`RayEngine` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._inputs import FORMATS, QuerySource, read_input
from ._journal import Journal, finalize, journal_path, read_journal
from ._local import LocalEngine
from ._progress import BatchProgress
from ._run import arerank_batch, arerank_to_run, make_engine, rerank_batch, rerank_to_run
from ._types import BatchError, BatchQuery, BatchResult, as_batch_query

if TYPE_CHECKING:  # pragma: no cover
    from ._ray import RayEngine

__all__ = [
    "BatchError",
    "BatchProgress",
    "BatchQuery",
    "BatchResult",
    "FORMATS",
    "Journal",
    "LocalEngine",
    "QuerySource",
    "RayEngine",
    "arerank_batch",
    "arerank_to_run",
    "as_batch_query",
    "finalize",
    "journal_path",
    "make_engine",
    "read_input",
    "read_journal",
    "rerank_batch",
    "rerank_to_run",
]


def __getattr__(name: str) -> Any:
    if name == "RayEngine":
        from ._ray import RayEngine

        return RayEngine
    raise AttributeError(f"module 'rerank_rag.batch' has no attribute {name!r}")
