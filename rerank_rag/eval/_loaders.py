"""Loaders for your own evaluation data: candidates per query plus relevance labels.

Three input formats, told apart by their content (not their file names):

* **rerank-rag JSONL**, one query per line, easy to write from a chatbot log::

      {"qid": "q1", "query": "how do I reset my router",
       "candidates": [{"docid": "a7", "text": "Unplug the router...", "score": 12.3}, ...],
       "labels": {"a7": 2, "b3": 0}}

  ``score`` and ``labels`` are optional; other candidate fields are kept as metadata.
  Without ``candidates``, a ``corpus`` is required and the candidates are its BM25
  top-``depth`` for the query (filled up to ``depth`` with the passages sharing no
  term with it, in corpus order).
* **RankGPT / pyserini JSON** (``.json`` array or JSON lines) of
  ``{"query", "hits": [{"qid", "docid", "content", "rank", "score"}]}``; no labels.
* **TREC run** (``qid Q0 docid rank score tag``), with **topics** (``qid<TAB>query``
  or BEIR ``queries.jsonl``) for the query texts and a **corpus** for the passage
  texts; ordered per query as trec_eval orders it (score descending, ties by docid
  descending).

Labels come from the JSONL ``labels`` or from a qrels file (TREC ``qid 0 docid grade``
or BEIR ``query-id corpus-id score`` TSV); a qrels file replaces inline labels.

:func:`iter_queries` streams the queries one at a time (for batch jobs and
large files); :func:`load_dataset` loads a whole :class:`RerankDataset` for
``rerank-rag eval``. Every error names the file, the line and the missing field.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Union

from .._types import Candidate
from ._data import DataNotFoundError, EvalQuery, RerankDataset, _open_text, load_qrels, load_topics
from ._trec import run_lines, trec_eval_sorted

__all__ = [
    "FORMATS",
    "detect_format",
    "iter_queries",
    "load_dataset",
    "load_corpus",
    "dataset_name",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The formats :func:`detect_format` tells apart.
FORMATS = ("jsonl", "rankgpt", "trec-run")

_ID_KEYS = ("docid", "_id", "id", "doc_id", "pid")
_TEXT_KEYS = ("text", "contents", "content", "passage")


def _exists(path: PathLike | None, what: str, option: str) -> Path:
    if path is None:
        raise DataNotFoundError(f"{what} is required: pass {option} FILE")
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"{what} not found: {p} (given as {option})")
    return p


def dataset_name(*paths: PathLike | None) -> str:
    """A dataset name from file names: the first path's stem without compression and
    format suffixes or a ``qrels.`` / ``topics.`` / ``run.`` prefix
    (``qrels.dl19-passage.txt`` -> ``dl19-passage``, ``support_questions.jsonl.gz``
    -> ``support_questions``)."""
    for p in paths:
        if p is None:
            continue
        name = Path(p).name
        for suffix in (".gz", ".jsonl", ".json", ".tsv", ".txt", ".trec", ".run", ".csv"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        for prefix in ("qrels.", "qrels-", "qrels_", "topics.", "topics-", "topics_", "run.", "run-", "run_"):
            if name.lower().startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix) :]
                break
        if name:
            return name
    return "dataset"


# -- format detection ---------------------------------------------------------------


def _first_line(path: Path) -> str:
    with _open_text(path) as f:
        for line in f:
            if line.strip():
                return line.strip()
    return ""


def detect_format(path: PathLike) -> str:
    """``"jsonl"``, ``"rankgpt"`` or ``"trec-run"``, from the file's content.

    Raises:
        ValueError: naming the file when it is empty, a qrels file, or none of these.
    """
    p = _exists(path, "input file", "--run")
    line = _first_line(p)
    if not line:
        raise ValueError(f"{p} is empty")
    if line.startswith("["):
        return "rankgpt" if _first_array_record_has(p, "hits") else "jsonl"
    if line.startswith("{"):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}:1: invalid JSON: {exc}") from None
        if isinstance(rec, dict) and "hits" in rec:
            return "rankgpt"
        if isinstance(rec, dict) and "gold_doc_ids" in rec:
            raise ValueError(
                f"{p} holds multi-hop questions (gold_doc_ids): evaluate them with --multihop, see docs/evaluation.md"
            )
        return "jsonl"
    parts = line.split()
    if len(parts) >= 6:
        return "trec-run"
    if len(parts) in (3, 4):
        raise ValueError(f"{p} looks like a qrels file (relevance labels): pass it as --qrels, not as the run")
    raise ValueError(
        f"{p}: unknown format (first line {line[:80]!r}); expected rerank-rag JSONL, RankGPT JSON or a TREC run"
    )


def _first_array_record_has(path: Path, key: str) -> bool:
    with _open_text(path) as f:
        data = json.load(f)
    return bool(isinstance(data, list) and data and isinstance(data[0], dict) and key in data[0])


# -- records (JSON array or JSON lines) ---------------------------------------------------


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` for every record; ``where`` is ``file:line`` or ``file[i]``."""
    with _open_text(path) as f:
        first = ""
        lines: list[str] = []
        for line in f:
            if line.strip():
                first = line.lstrip()
                lines.append(line)
                break
            lines.append(line)
        if first.startswith("["):
            text = "".join(lines) + f.read()
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: invalid JSON: {exc}") from None
            for i, rec in enumerate(data):
                yield f"{path}[{i}]", rec
            return
        lineno = 0
        for lineno, line in enumerate(lines, 1):
            if line.strip():
                yield f"{path}:{lineno}", _parse_line(path, lineno, line)
        for lineno, line in enumerate(f, lineno + 1):
            if line.strip():
                yield f"{path}:{lineno}", _parse_line(path, lineno, line)


def _parse_line(path: Path, lineno: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from None


def _grade(where: str, docid: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{where}: label of {docid!r} must be an integer grade, got {value!r}")
    return int(value)


def _str_id(where: str, what: str, value: Any) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        raise ValueError(f"{where}: {what} must be a string or number, got {value!r}")
    s = str(value).strip()
    if not s:
        raise ValueError(f"{where}: {what} is empty")
    return s


def _jsonl_query(where: str, rec: Any, depth: int | None, retrieve: Any) -> EvalQuery:
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object {{qid, query, candidates, labels}}, got {type(rec).__name__}")
    if "qid" not in rec:
        raise ValueError(f"{where}: record lacks 'qid'")
    if "query" not in rec:
        hint = " ('question' found: multi-hop records go to --multihop)" if "question" in rec else ""
        raise ValueError(f"{where}: record lacks 'query'{hint}")
    qid = _str_id(where, "'qid'", rec["qid"])
    query = rec["query"]
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"{where}: 'query' must be a non-empty string")
    labels = None
    if rec.get("labels") is not None:
        if not isinstance(rec["labels"], dict):
            raise ValueError(f"{where}: 'labels' must be an object {{docid: grade}}")
        labels = {_str_id(where, "a label's docid", d): _grade(where, str(d), g) for d, g in rec["labels"].items()}
    if "candidates" not in rec:
        if retrieve is None:
            raise ValueError(f"{where}: record lacks 'candidates' (pass --corpus FILE to retrieve them with BM25)")
        cands = list(retrieve(query))
    else:
        raw = rec["candidates"]
        if not isinstance(raw, list):
            raise ValueError(f"{where}: 'candidates' must be a list of {{docid, text, score?}}")
        cands = []
        seen: set[str] = set()
        for j, c in enumerate(raw[:depth] if depth else raw):
            if not isinstance(c, dict):
                raise ValueError(f"{where}: candidate {j} must be an object {{docid, text, score?}}")
            for key in ("docid", "text"):
                if key not in c:
                    raise ValueError(f"{where}: candidate {j} lacks '{key}'")
            docid = _str_id(where, f"candidate {j}'s 'docid'", c["docid"])
            if docid in seen:
                raise ValueError(f"{where}: candidate {j}: docid {docid!r} appears twice for query {qid!r}")
            seen.add(docid)
            if not isinstance(c["text"], str):
                raise ValueError(f"{where}: candidate {j}'s 'text' must be a string")
            score = c.get("score")
            if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
                raise ValueError(f"{where}: candidate {j}'s 'score' must be a number")
            meta = {k: v for k, v in c.items() if k not in ("docid", "text", "score")}
            cands.append(Candidate(text=c["text"], id=docid, score=None if score is None else float(score), metadata=meta))
    return EvalQuery(qid=qid, text=query.strip(), candidates=tuple(cands), labels=labels)


def _rankgpt_query(where: str, rec: Any, depth: int | None) -> EvalQuery:
    if not isinstance(rec, dict) or "query" not in rec or "hits" not in rec:
        raise ValueError(f"{where}: RankGPT record lacks 'query' or 'hits'")
    qid = rec.get("qid")
    cands = []
    seen: set[str] = set()
    for j, h in enumerate(rec["hits"]):
        if not isinstance(h, dict) or "docid" not in h:
            raise ValueError(f"{where}: hit {j} lacks 'docid'")
        if qid is None:
            qid = h.get("qid")
        if depth and len(cands) >= depth:
            continue
        docid = _str_id(where, f"hit {j}'s 'docid'", h["docid"])
        if docid in seen:
            raise ValueError(f"{where}: hit {j}: docid {docid!r} appears twice")
        seen.add(docid)
        try:
            score = float(h.get("score", 0.0))
            rank = int(h.get("rank", j + 1))
        except (TypeError, ValueError):
            raise ValueError(f"{where}: hit {j}: 'score' and 'rank' must be numbers") from None
        cands.append(Candidate(text=str(h.get("content", "")), id=docid, score=score, metadata={"rank": rank}))
    if qid is None:
        raise ValueError(f"{where}: no qid (neither top-level nor in the hits)")
    return EvalQuery(qid=_str_id(where, "qid", qid), text=str(rec["query"]), candidates=tuple(cands))


# -- corpus and TREC runs -------------------------------------------------------------


def load_corpus(path: PathLike, *, ids: Iterable[str] | None = None) -> dict[str, str]:
    """``{docid: text}`` from a corpus file, optionally only the documents in ``ids``.

    Accepted: JSON lines (BEIR ``corpus.jsonl``: ``{"_id", "title", "text"}``; also
    ``docid``/``id`` and ``contents``), a JSON object ``{docid: text}`` or array of such
    records, or TSV ``docid<TAB>text`` (MS MARCO ``collection.tsv``); ``.gz`` is fine.
    A title is prepended to the text (``"title text"``).
    """
    p = _exists(path, "corpus", "--corpus")
    wanted = None if ids is None else set(ids)
    out: dict[str, str] = {}
    line = _first_line(p)
    if line.startswith("{") and not _is_jsonl(p):  # one pretty-printed object {docid: text}
        with _open_text(p) as f:
            data = json.load(f)
        return _from_mapping(p, data, wanted)
    if line.startswith(("{", "[")):
        for where, rec in _records(p):
            if not isinstance(rec, dict):
                raise ValueError(f"{where}: expected a JSON object with an id and a text")
            if not any(k in rec for k in _ID_KEYS) and rec and all(isinstance(v, str) for v in rec.values()):
                out.update(_from_mapping(where, rec, wanted))  # a one-line {docid: text}
                continue
            key = next((k for k in _ID_KEYS if k in rec), None)
            tkey = next((k for k in _TEXT_KEYS if k in rec), None)
            if key is None or tkey is None:
                raise ValueError(f"{where}: corpus record needs an id ({'/'.join(_ID_KEYS)}) and a text ({'/'.join(_TEXT_KEYS)})")
            docid = _str_id(where, "the document id", rec[key])
            if wanted is not None and docid not in wanted:
                continue
            title = str(rec.get("title") or "").strip()
            text = str(rec[tkey])
            out[docid] = f"{title} {text}".strip() if title else text
        return out
    with _open_text(p) as f:
        for lineno, raw in enumerate(f, 1):
            raw = raw.rstrip("\r\n")
            if not raw.strip():
                continue
            if "\t" not in raw:
                raise ValueError(f"{p}:{lineno}: expected 'docid<TAB>text'")
            docid, text = raw.split("\t", 1)
            docid = docid.strip()
            if wanted is None or docid in wanted:
                out[docid] = text.replace("\t", " ").strip()
    return out


def _from_mapping(where: Any, data: Any, wanted: set[str] | None) -> dict[str, str]:
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{where}: expected {{docid: text}} or one record per line")
    return {str(d): t for d, t in data.items() if wanted is None or str(d) in wanted}


def _is_jsonl(path: Path) -> bool:
    with _open_text(path) as f:
        first = f.readline()
    try:
        json.loads(first)
        return True
    except json.JSONDecodeError:
        return False


def _trec_blocks(path: Path) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """``(qid, [(docid, score)])`` per query, in trec_eval order; a query's lines must be
    contiguous (a sorted run)."""
    done: set[str] = set()
    qid: str | None = None
    rows: list[tuple[str, float]] = []

    seen: set[str] = set()
    with _open_text(path) as f:
        for lineno, q, docid, _, score in run_lines(path, f):
            if q != qid:
                if qid is not None:
                    yield qid, trec_eval_sorted(rows)
                    done.add(qid)
                if q in done:
                    raise ValueError(
                        f"{path}:{lineno}: query {q!r} appears again after other queries; "
                        "sort the run by query id (sort -s -k1,1)"
                    )
                qid, rows, seen = q, [], set()
            if docid in seen:
                raise ValueError(f"{path}:{lineno}: document {docid!r} appears twice for query {q!r}")
            seen.add(docid)
            rows.append((docid, score))
    if qid is not None:
        yield qid, trec_eval_sorted(rows)


def _trec_queries(
    run: Path, topics_path: PathLike | None, corpus_path: PathLike | None, depth: int | None
) -> Iterator[EvalQuery]:
    topics = load_topics(_exists(topics_path, "topics (the query texts of a TREC run)", "--topics"))
    corpus_file = _exists(corpus_path, "corpus (the passage texts of a TREC run)", "--corpus")
    needed: set[str] = set()
    for _, rows in _trec_blocks(run):
        needed.update(d for d, _ in (rows[:depth] if depth else rows))
    texts = load_corpus(corpus_file, ids=needed)
    missing = needed - texts.keys()
    if missing:
        ex = ", ".join(sorted(missing)[:5])
        raise ValueError(f"{len(missing)} documents of {run} are not in the corpus {corpus_file} (e.g. {ex})")
    for qid, rows in _trec_blocks(run):
        if qid not in topics:
            raise ValueError(f"query {qid!r} of {run} has no text in the topics file {topics_path}")
        cands = tuple(
            Candidate(text=texts[d], id=d, score=s, metadata={"rank": i + 1})
            for i, (d, s) in enumerate(rows[:depth] if depth else rows)
        )
        yield EvalQuery(qid=qid, text=topics[qid], candidates=cands)


# -- the public entry points -----------------------------------------------------------


def _corpus_retriever(corpus_path: PathLike, depth: int | None) -> Any:
    """BM25 top-``depth`` over the corpus, filled up to ``depth`` with the passages BM25
    did not return (they share no term with the query), in corpus order, score 0."""
    from ..retrievers import BM25Retriever  # lazy: only when records have no candidates

    texts = load_corpus(corpus_path)
    docs = [Candidate(text=t, id=d) for d, t in texts.items()]
    retriever = BM25Retriever(docs)
    k = min(depth or 100, len(docs))

    def retrieve(query: str) -> list[Candidate]:
        hits = list(retriever.search(query, k))
        got = {c.id for c in hits}
        rest = (Candidate(text=d.text, id=d.id, score=0.0) for d in docs if d.id not in got)
        hits += itertools.islice(rest, k - len(hits))
        return [Candidate(text=c.text, id=c.id, score=c.score, metadata={"rank": i + 1}) for i, c in enumerate(hits)]

    return retrieve


def iter_queries(
    source: PathLike,
    *,
    topics: PathLike | None = None,
    corpus: PathLike | None = None,
    depth: int | None = None,
    format: str = "auto",
) -> Iterator[EvalQuery]:
    """Stream the queries of ``source``, one :class:`EvalQuery` at a time.

    Args:
        source: a rerank-rag JSONL, RankGPT JSON / JSON lines, or TREC run file.
        topics: the query texts of a TREC run (``qid<TAB>query`` or BEIR ``queries.jsonl``).
        corpus: passage texts: required for a TREC run; for JSONL records without
            ``candidates`` their BM25 top-``depth`` over it (default 100).
        depth: keep the first ``depth`` candidates of each query (``None``: all).
        format: ``"auto"`` (from the content, :func:`detect_format`) or one of
            :data:`FORMATS`.

    Each query's ``candidates`` are best first with ``Candidate.id`` = docid and
    ``Candidate.score`` = the given score; ``labels`` holds the JSONL labels (``None``
    otherwise). JSON lines are read one line at a time; a JSON array (RankGPT
    ``.json``) is parsed whole first. A TREC run is read twice (its documents first,
    to load only those passages of the corpus) and its queries must be contiguous.

    Raises:
        DataNotFoundError: a required file is missing (the message names the option).
        ValueError: naming the file, line and field of a malformed record.
    """
    if depth is not None and depth <= 0:
        raise ValueError(f"depth must be positive, got {depth}")
    path = _exists(source, "input file", "--run")
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise ValueError(f"format must be 'auto' or one of {', '.join(FORMATS)}; got {format!r}")
    if fmt == "trec-run":
        yield from _trec_queries(path, topics, corpus, depth)
        return
    retrieve = None
    seen: set[str] = set()
    for where, rec in _records(path):
        if fmt == "rankgpt":
            q = _rankgpt_query(where, rec, depth)
        else:
            if retrieve is None and isinstance(rec, dict) and "candidates" not in rec and corpus is not None:
                retrieve = _corpus_retriever(corpus, depth)
            q = _jsonl_query(where, rec, depth, retrieve)
        if q.qid in seen:
            raise ValueError(f"{where}: query {q.qid!r} appears twice")
        seen.add(q.qid)
        yield q


def load_dataset(
    source: PathLike,
    *,
    qrels: PathLike | None = None,
    topics: PathLike | None = None,
    corpus: PathLike | None = None,
    depth: int | None = None,
    name: str | None = None,
    threshold: int = 1,
    format: str = "auto",
    require_labels: bool = True,
) -> RerankDataset:
    """Load ``source`` whole, with its labels, as a :class:`RerankDataset`.

    Args:
        source, topics, corpus, depth, format: as :func:`iter_queries`.
        qrels: a qrels file (TREC ``qid 0 docid grade`` or BEIR TSV); replaces the
            JSONL ``labels`` when given.
        name: the dataset name in reports (default: from the file names,
            :func:`dataset_name`).
        threshold: minimum grade counted relevant by MRR and recall (trec_eval ``-l``).
        require_labels: raise when there is no label at all (the default; evaluation
            needs them).

    Queries without any label are kept (they are ranked) but left out of the averages,
    as trec_eval does; ``info["unjudged_queries"]`` counts them.
    """
    path = _exists(source, "input file", "--run")
    fmt = detect_format(path) if format == "auto" else format
    queries = list(iter_queries(path, topics=topics, corpus=corpus, depth=depth, format=fmt))
    if qrels is not None:
        judgments = load_qrels(_exists(qrels, "qrels", "--qrels"))
        label_source = str(qrels)
    else:
        judgments = {q.qid: dict(q.labels) for q in queries if q.labels}
        label_source = f"'labels' in {path.name}" if judgments else ""
    if require_labels and not judgments:
        raise DataNotFoundError(
            f"no relevance labels: the records of {path} have no 'labels' and no --qrels FILE was given"
        )
    texts: dict[str, str] = {}
    for q in queries:
        for c in q.candidates:
            texts.setdefault(str(c.id), c.text)
    if fmt == "trec-run":
        first_stage = f"TREC run {path.name}"
    elif fmt == "jsonl" and corpus is not None and "candidates" not in _peek_keys(path):
        first_stage = f"BM25 over {Path(corpus).name} (rerank_rag.retrievers.BM25Retriever)"
    else:
        first_stage = f"the order in {path.name}"
    unjudged = sum(1 for q in queries if not judgments.get(q.qid))
    return RerankDataset(
        name=name or dataset_name(qrels, path),
        queries=queries,
        qrels={q: dict(j) for q, j in judgments.items()},
        threshold=threshold,
        corpus=texts,
        first_stage=first_stage,
        info={"format": fmt, "source": str(path), "labels": label_source, "unjudged_queries": unjudged},
    )


def _peek_keys(path: Path) -> set[str]:
    for _, rec in _records(path):
        return set(rec) if isinstance(rec, dict) else set()
    return set()
