"""Batch inputs: thin readers that turn files into :class:`BatchQuery` streams.

* RankGPT / pyserini JSON (``[{query, hits: [{qid, docid, content, score}]}]``, ``.json``
  or ``.jsonl``): read with :func:`rerank_rag.eval.load_rankgpt_json`.
* A TREC run with the topics (``qid<TAB>query``) and a corpus: the run and topics are
  read with :func:`rerank_rag.eval.read_run` and :func:`rerank_rag.eval.load_topics`;
  the corpus (``docid<TAB>text`` TSV, or JSONL ``{"docid"|"_id"|"id", "text",
  "title"?}``) is streamed and only the documents the run names are kept.
* JSONL, one query per line: ``{"qid", "query", "candidates": [{"docid", "text",
  "score"?}]}``, streamed line by line (bounded memory; the batch pulls queries as it
  needs them).

Each reader checks what a run file needs (ids without whitespace, no document twice
for a query) and raises :class:`~rerank_rag.batch.BatchError` naming the file, line
and query.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .._types import Candidate
from ._types import BatchError, BatchQuery

__all__ = ["QuerySource", "read_input", "read_rankgpt", "read_jsonl", "read_trec", "FORMATS"]

FORMATS = ("auto", "rankgpt", "jsonl", "trec")
PathLike = str | os.PathLike[str]


@dataclass
class QuerySource:
    """An iterable of :class:`BatchQuery` that may be iterated more than once.

    Attributes:
        total: number of queries (``None`` when unknown without reading everything).
        describe: what was read (for reports).
    """

    factory: Callable[[], Iterator[BatchQuery]]
    total: int | None
    describe: dict[str, Any]

    def __iter__(self) -> Iterator[BatchQuery]:
        return self.factory()


def _check_ids(where: str, qid: str, docids: list[str]) -> None:
    if not qid or any(c.isspace() for c in qid):
        raise BatchError(f"{where}: query id {qid!r} is empty or contains whitespace")
    seen: set[str] = set()
    for d in docids:
        if not d or any(c.isspace() for c in d):
            raise BatchError(f"{where}: query {qid!r}: document id {d!r} is empty or contains whitespace")
        if d in seen:
            raise BatchError(f"{where}: query {qid!r} lists document {d!r} twice")
        seen.add(d)


def _limit(depth: int | None, items: list[Any]) -> list[Any]:
    return items[:depth] if depth else items


# -- RankGPT / pyserini JSON -----------------------------------------------------------


def read_rankgpt(path: PathLike, *, depth: int | None = None) -> QuerySource:
    """The RankGPT / pyserini retrieval format (``.json`` array or ``.jsonl``)."""
    from ..eval._data import load_rankgpt_json

    try:
        data = load_rankgpt_json(path)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
    queries: list[BatchQuery] = []
    for qh in data:
        hits = _limit(depth, list(qh.hits))
        _check_ids(str(path), qh.qid, [h.docid for h in hits])
        cands = tuple(Candidate(text=h.content, id=h.docid, score=h.score) for h in hits)
        queries.append(BatchQuery(qid=qh.qid, query=qh.query, candidates=cands))
    return QuerySource(lambda: iter(queries), len(queries), {"format": "rankgpt", "path": str(path)})


# -- JSONL {qid, query, candidates} ---------------------------------------------------


def _jsonl_query(path: PathLike, lineno: int, rec: Any, depth: int | None) -> BatchQuery:
    where = f"{path}:{lineno}"
    if not isinstance(rec, dict):
        raise BatchError(f"{where}: expected a JSON object {{qid, query, candidates}}")
    for key in ("qid", "query", "candidates"):
        if key not in rec:
            raise BatchError(f"{where}: missing {key!r} (expected {{qid, query, candidates}})")
    qid = str(rec["qid"])
    query = rec["query"]
    if not isinstance(query, str) or not query.strip():
        raise BatchError(f"{where}: query {qid!r} has an empty or non-string 'query'")
    raw = rec["candidates"]
    if not isinstance(raw, list):
        raise BatchError(f"{where}: query {qid!r}: 'candidates' must be a list")
    cands = []
    for j, c in enumerate(_limit(depth, raw)):
        if not isinstance(c, dict) or "text" not in c:
            raise BatchError(f"{where}: query {qid!r}, candidate {j}: expected {{docid, text, score?}}")
        docid = c.get("docid", c.get("id"))
        if docid is None:
            raise BatchError(f"{where}: query {qid!r}, candidate {j} has no 'docid'")
        text = c["text"]
        if not isinstance(text, str):
            raise BatchError(f"{where}: query {qid!r}, candidate {j}: 'text' must be a string")
        score = c.get("score")
        try:
            score = None if score is None else float(score)
        except (TypeError, ValueError):
            raise BatchError(f"{where}: query {qid!r}, candidate {j}: 'score' must be a number") from None
        cands.append(Candidate(text=text, id=str(docid), score=score))
    _check_ids(where, qid, [str(c.id) for c in cands])
    return BatchQuery(qid=qid, query=query, candidates=tuple(cands))


def _open(path: PathLike) -> Any:
    p = str(path)
    if p.endswith(".gz"):
        import gzip

        return gzip.open(p, "rt", encoding="utf-8")
    return open(p, encoding="utf-8")


def read_jsonl(path: PathLike, *, depth: int | None = None) -> QuerySource:
    """JSONL, one ``{qid, query, candidates: [{docid, text, score?}]}`` per line (streamed)."""
    if not Path(path).exists():
        raise BatchError(f"input not found: {path}")
    with _open(path) as f:
        total = sum(1 for line in f if line.strip())

    def gen() -> Iterator[BatchQuery]:
        with _open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BatchError(f"{path}:{lineno}: invalid JSON: {exc}") from None
                yield _jsonl_query(path, lineno, rec, depth)

    return QuerySource(gen, total, {"format": "jsonl", "path": str(path)})


# -- TREC run + topics + corpus --------------------------------------------------------


def _load_corpus(path: PathLike, wanted: set[str]) -> dict[str, str]:
    """``{docid: text}`` for the ``wanted`` ids, from a TSV or JSONL corpus."""
    p = str(path)
    out: dict[str, str] = {}
    jsonl = p.endswith((".jsonl", ".jsonl.gz", ".json"))
    with _open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if jsonl:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BatchError(f"{path}:{lineno}: invalid JSON: {exc}") from None
                docid = rec.get("docid", rec.get("_id", rec.get("id"))) if isinstance(rec, dict) else None
                if docid is None:
                    raise BatchError(f"{path}:{lineno}: expected {{docid|_id|id, text, title?}}")
                docid = str(docid)
                if docid in wanted:
                    title = str(rec.get("title") or "").strip()
                    text = str(rec.get("text") or rec.get("contents") or "")
                    out[docid] = f"{title} {text}".strip() if title else text
            else:
                parts = line.rstrip("\n").rstrip("\r").split("\t")
                if len(parts) < 2:
                    raise BatchError(f"{path}:{lineno}: expected 'docid<TAB>text' (or docid<TAB>title<TAB>text)")
                if parts[0].strip() in wanted:
                    out[parts[0].strip()] = " ".join(x.strip() for x in parts[1:] if x.strip())
    return out


def read_trec(
    run: PathLike, *, topics: PathLike, corpus: PathLike, depth: int | None = None
) -> QuerySource:
    """A first-stage TREC run (ranked as trec_eval would), its topics and the corpus."""
    from ..eval._data import load_topics
    from ..eval._trec import read_run

    for what, p in (("run", run), ("topics", topics), ("corpus", corpus)):
        if not Path(p).exists():
            raise BatchError(f"{what} file not found: {p}")
    try:
        runs = read_run(run)
        qtexts = load_topics(topics)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
    ranked = {qid: [d for d, _ in entries][: depth or None] for qid, entries in runs.items()}
    scores = {qid: dict(entries) for qid, entries in runs.items()}
    missing_q = [q for q in ranked if q not in qtexts]
    if missing_q:
        raise BatchError(f"{topics}: no query text for {len(missing_q)} run queries, e.g. {missing_q[0]!r}")
    wanted = {d for ds in ranked.values() for d in ds}
    texts = _load_corpus(corpus, wanted)
    missing_d = sorted(wanted - texts.keys())
    if missing_d:
        raise BatchError(f"{corpus}: {len(missing_d)} documents of the run are not in the corpus, e.g. {missing_d[0]!r}")

    def gen() -> Iterator[BatchQuery]:
        for qid, docids in ranked.items():
            _check_ids(str(run), qid, docids)
            cands = tuple(Candidate(text=texts[d], id=d, score=scores[qid][d]) for d in docids)
            yield BatchQuery(qid=qid, query=qtexts[qid], candidates=cands)

    return QuerySource(gen, len(ranked), {"format": "trec", "run": str(run), "topics": str(topics), "corpus": str(corpus)})


# -- dispatch ----------------------------------------------------------------------------


def _sniff_jsonl(path: PathLike) -> str:
    with _open(path) as f:
        for line in f:
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    return "jsonl"  # the reader reports the error with its line
                if isinstance(rec, dict) and "hits" in rec:
                    return "rankgpt"
                return "jsonl"
    return "jsonl"


def read_input(
    path: PathLike,
    *,
    format: str = "auto",
    topics: PathLike | None = None,
    corpus: PathLike | None = None,
    depth: int | None = None,
) -> QuerySource:
    """Read a batch input in any supported format (``format="auto"`` guesses from the
    file: a TREC run when ``topics``/``corpus`` are given, RankGPT for ``.json`` and for
    JSONL lines with ``hits``, the ``{qid, query, candidates}`` JSONL otherwise)."""
    if format not in FORMATS:
        raise BatchError(f"unknown input format {format!r}; choose one of {', '.join(FORMATS)}")
    if not Path(path).exists():
        raise BatchError(f"input not found: {path}")
    if format == "auto":
        name = str(path).lower()
        if topics is not None or corpus is not None:
            format = "trec"
        elif name.endswith((".json", ".json.gz")):
            format = "rankgpt"
        else:
            format = _sniff_jsonl(path)
    if format == "trec":
        if topics is None or corpus is None:
            raise BatchError("a TREC run input needs --topics (qid<TAB>query) and --corpus (docid<TAB>text or JSONL)")
        return read_trec(path, topics=topics, corpus=corpus, depth=depth)
    if format == "rankgpt":
        return read_rankgpt(path, depth=depth)
    return read_jsonl(path, depth=depth)
