"""Batch inputs: a thin adapter over :func:`rerank_rag.eval.iter_queries`.

The evaluation loaders read the three formats (rerank-rag JSONL ``{qid, query,
candidates: [{docid, text, score?}]}`` streamed line by line, RankGPT / pyserini JSON,
a TREC run with its topics and corpus) and name the file, line and field of any
malformed record. This module turns their queries into :class:`BatchQuery` objects,
counts the queries up front (for the progress bar and ETA) without keeping them, and
adds what a run file needs: query and document ids without whitespace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._types import BatchError, BatchQuery

__all__ = ["QuerySource", "read_input", "FORMATS"]

#: ``--format`` values (``trec`` is the TREC run + topics + corpus input).
FORMATS = ("auto", "jsonl", "rankgpt", "trec")
_EVAL_FORMAT = {"auto": "auto", "jsonl": "jsonl", "rankgpt": "rankgpt", "trec": "trec-run", "trec-run": "trec-run"}


@dataclass
class QuerySource:
    """An iterable of :class:`BatchQuery` that may be iterated more than once.

    Attributes:
        total: number of queries (``None`` when unknown).
        describe: what was read (for reports).
    """

    factory: Callable[[], Iterator[BatchQuery]]
    total: int | None
    describe: dict[str, Any]

    def __iter__(self) -> Iterator[BatchQuery]:
        return self.factory()


def _check_ids(qid: str, docids: list[str]) -> None:
    if any(c.isspace() for c in qid):
        raise BatchError(f"query id {qid!r} contains whitespace (a TREC run cannot hold it)")
    for d in docids:
        if any(c.isspace() for c in d):
            raise BatchError(f"query {qid!r}: document id {d!r} contains whitespace (a TREC run cannot hold it)")


def _count(path: Path, fmt: str) -> int | None:
    """How many queries ``path`` holds, read cheaply (no query is kept)."""
    from ..eval._data import _open_text

    with _open_text(path) as f:
        if fmt == "trec-run":
            return len({line.split(None, 1)[0] for line in f if line.strip()})
        head = ""
        for line in f:
            if line.strip():
                head = line.lstrip()
                break
        if head.startswith("["):  # a JSON array: the loader parses it whole anyway
            return None
        return 1 + sum(1 for line in f if line.strip())


def read_input(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    topics: str | os.PathLike[str] | None = None,
    corpus: str | os.PathLike[str] | None = None,
    depth: int | None = None,
) -> QuerySource:
    """The queries of a batch input file, streamed by :func:`rerank_rag.eval.iter_queries`.

    Args:
        path: rerank-rag JSONL, RankGPT JSON / JSON lines, or a TREC run.
        format: ``"auto"`` (from the content), ``"jsonl"``, ``"rankgpt"`` or ``"trec"``.
        topics / corpus: the query and passage texts of a TREC run (for JSONL records
            without candidates, ``corpus`` gives their BM25 top-``depth``).
        depth: rerank the first ``depth`` candidates of each query.

    Raises:
        BatchError: the file is missing or malformed (names the file, line and field).
    """
    from ..eval._data import DataNotFoundError
    from ..eval._loaders import detect_format, iter_queries

    if format not in _EVAL_FORMAT:
        raise BatchError(f"unknown input format {format!r}; choose one of {', '.join(FORMATS)}")
    p = Path(path)
    if not p.is_file():
        raise BatchError(f"input not found: {p}")
    try:
        fmt = detect_format(p) if format == "auto" else _EVAL_FORMAT[format]
    except (ValueError, DataNotFoundError) as exc:
        raise BatchError(str(exc)) from None
    if fmt == "trec-run" and (topics is None or corpus is None):
        raise BatchError("a TREC run input needs --topics (qid<TAB>query) and --corpus (docid<TAB>text or JSONL)")

    def gen() -> Iterator[BatchQuery]:
        try:
            for q in iter_queries(p, topics=topics, corpus=corpus, depth=depth, format=fmt):
                _check_ids(q.qid, [str(c.id) for c in q.candidates])
                yield BatchQuery(qid=q.qid, query=q.text, candidates=tuple(q.candidates))
        except (ValueError, DataNotFoundError, json.JSONDecodeError) as exc:
            raise BatchError(str(exc)) from None

    describe = {"format": fmt, "path": str(p)}
    if topics is not None:
        describe["topics"] = str(topics)
    if corpus is not None:
        describe["corpus"] = str(corpus)
    return QuerySource(gen, _count(p, fmt), describe)
