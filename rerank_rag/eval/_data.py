"""Loaders for the evaluation data: TREC qrels/topics/runs, RankGPT/pyserini JSON,
the SciFact CSV release and MuSiQue.

Formats (see ``shared/data/*/PROVENANCE.md`` of the project):

* qrels: ``qid 0|Q0 docid grade`` per line.
* topics: ``qid<TAB>query`` per line, optionally gzip-compressed.
* RankGPT / pyserini JSON: a JSON array (``.json``) or one object per line
  (``.jsonl``) of ``{"query": str, "hits": [{"content", "qid", "docid", "rank",
  "score"}]}``.
* SciFact release (``scifact.zip``): ``corpus_train.csv`` (doc_id, title, abstract,
  structured) where ``abstract`` is a numpy-style printed list of sentence strings;
  ``claims_validation.csv`` holds the BEIR test claims.
* MuSiQue: ``musique_train.json`` (records with 20 paragraphs each) and
  ``musique_train_corpus.json`` (``[{title, text}]``).

:class:`RerankDataset` bundles queries, their first-stage candidates and the qrels, for
``rerank-rag eval``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from .._types import Candidate

__all__ = [
    "Hit",
    "QueryHits",
    "EvalQuery",
    "RerankDataset",
    "load_qrels",
    "load_topics",
    "load_rankgpt_json",
    "load_scifact_corpus",
    "parse_numpy_string_list",
    "load_scifact",
    "load_dl19",
    "load_musique",
    "DataNotFoundError",
    "default_data_dir",
]

PathLike = Union[str, "os.PathLike[str]"]


class DataNotFoundError(FileNotFoundError):
    """An evaluation data file is missing; the message says which and where."""


def default_data_dir() -> Path | None:
    """``$RERANK_RAG_DATA`` if set, else ``../shared/data`` next to the checkout, if it exists."""
    env = os.environ.get("RERANK_RAG_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "data"
        if (parent / "pyproject.toml").exists() and cand.is_dir():
            return cand
    return None


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataNotFoundError(f"{what} not found: {path} (pass --data-dir pointing at the data folder)")
    return path


def _open_text(path: PathLike) -> io.TextIOBase:
    p = str(path)
    if p.endswith(".gz"):
        import gzip

        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8")  # type: ignore[return-value]
    return open(p, encoding="utf-8")  # type: ignore[return-value]


# -- TREC formats ------------------------------------------------------------------


def load_qrels(path: PathLike) -> dict[str, dict[str, int]]:
    """Read qrels into ``{qid: {docid: grade}}``: TREC (``qid iter docid grade``) or
    BEIR TSV (``query-id corpus-id score``, header line optional).

    Raises:
        ValueError: naming the line of a malformed entry.
    """
    qrels: dict[str, dict[str, int]] = {}
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) == 3:
                if lineno == 1 and not parts[2].lstrip("-").isdigit():
                    continue  # BEIR header: query-id corpus-id score
                parts = [parts[0], "0", parts[1], parts[2]]
            if len(parts) != 4:
                raise ValueError(f"{path}:{lineno}: expected 'qid iter docid grade', got {line.strip()!r}")
            qid, _, docid, grade = parts
            try:
                qrels.setdefault(qid, {})[docid] = int(grade)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: grade must be an integer, got {grade!r}") from None
    return qrels


def load_topics(path: PathLike) -> dict[str, str]:
    """Read topics into ``{qid: query}``: ``qid<TAB>query`` lines, or JSON lines
    ``{"_id"|"qid", "text"|"query"}`` (BEIR ``queries.jsonl``); plain or ``.gz``."""
    topics: dict[str, str] = {}
    with _open_text(path) as f:
        first = f.readline()
    if first.lstrip().startswith("{"):
        with _open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from None
                qid = next((rec[k] for k in ("_id", "qid", "id", "query_id") if k in rec), None)
                text = next((rec[k] for k in ("text", "query", "title") if k in rec), None)
                if qid is None or not isinstance(text, str):
                    raise ValueError(f"{path}:{lineno}: a topic needs an id (_id/qid) and a text (text/query)")
                topics[str(qid).strip()] = text.strip()
        return topics
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(f"{path}:{lineno}: expected 'qid<TAB>query', got {line!r}")
            qid, query = line.split("\t", 1)
            topics[qid.strip()] = query.strip()
    return topics


# -- RankGPT / pyserini JSON -------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One first-stage hit: docid, passage text, first-stage rank and score."""

    docid: str
    content: str
    rank: int
    score: float


@dataclass(frozen=True)
class QueryHits:
    """One query with its first-stage hits in ranked order."""

    qid: str
    query: str
    hits: tuple[Hit, ...]


def _iter_json_records(path: PathLike) -> Iterator[Any]:
    p = str(path)
    with _open_text(p) as f:
        if p.endswith(".jsonl") or p.endswith(".jsonl.gz"):
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from None
        else:
            data = json.load(f)
            if not isinstance(data, list):
                raise ValueError(f"{path}: expected a JSON array of {{query, hits}} objects")
            yield from data


def load_rankgpt_json(path: PathLike) -> list[QueryHits]:
    """Read the RankGPT / pyserini retrieval format (``.json`` array or ``.jsonl``).

    Hits keep the file order (which is the first-stage rank order in these files).
    The qid comes from the hits (``hit["qid"]``) or a top-level ``"qid"``.

    Raises:
        ValueError: naming the record of a malformed entry.
    """
    out: list[QueryHits] = []
    for i, rec in enumerate(_iter_json_records(path)):
        if not isinstance(rec, dict) or "query" not in rec or "hits" not in rec:
            raise ValueError(f"{path}: record {i} lacks 'query' or 'hits'")
        hits = []
        qid = rec.get("qid")
        for j, h in enumerate(rec["hits"]):
            try:
                if qid is None:
                    qid = h.get("qid")
                hits.append(
                    Hit(
                        docid=str(h["docid"]),
                        content=str(h.get("content", "")),
                        rank=int(h.get("rank", j + 1)),
                        score=float(h.get("score", 0.0)),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: record {i}, hit {j} is malformed: {exc}") from None
        if qid is None:
            raise ValueError(f"{path}: record {i} has no qid (neither top-level nor in its hits)")
        out.append(QueryHits(qid=str(qid), query=str(rec["query"]), hits=tuple(hits)))
    return out


# -- evaluation dataset ------------------------------------------------------------


@dataclass(frozen=True)
class EvalQuery:
    """One query to rerank: its id, text and first-stage candidates (best first).

    Each candidate's ``id`` is the docid and ``score`` the first-stage score.
    ``labels`` is ``{docid: grade}`` when the input carried labels with the query
    (rerank-rag JSONL), else ``None``.
    """

    qid: str
    text: str
    candidates: tuple[Candidate, ...]
    labels: Mapping[str, int] | None = field(default=None, compare=False)


@dataclass
class RerankDataset:
    """Queries with first-stage candidates, the qrels, and the texts of all documents.

    Made by :func:`~rerank_rag.eval.load_dataset` (your files), :func:`load_dl19` or
    :func:`load_scifact`. A query without judgments is ranked but, as in trec_eval, not
    averaged.

    Attributes:
        name: e.g. ``"dl19"``; for your files, derived from their names.
        queries: the queries, each with its candidates.
        qrels: ``{qid: {docid: grade}}``.
        threshold: minimum grade that counts as relevant for MRR / recall (2 on DL19,
            as ``trec_eval -l 2``; 1 on SciFact).
        corpus: ``{docid: text}`` of every document (used by the simulator).
        first_stage: how the candidates were retrieved.
        info: free-form notes (e.g. measured first-stage quality).
    """

    name: str
    queries: list[EvalQuery]
    qrels: dict[str, dict[str, int]]
    threshold: int = 1
    corpus: dict[str, str] = field(default_factory=dict)
    first_stage: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def limit(self, n: int | None) -> RerankDataset:
        """The first ``n`` queries only (all when ``None``)."""
        if n is None:
            return self
        if n <= 0:
            raise ValueError(f"the number of queries must be positive, got {n}")
        return RerankDataset(
            name=self.name,
            queries=self.queries[:n],
            qrels={q.qid: self.qrels[q.qid] for q in self.queries[:n] if q.qid in self.qrels},
            threshold=self.threshold,
            corpus=self.corpus,
            first_stage=self.first_stage,
            info=dict(self.info),
        )

    def first_stage_run(self) -> dict[str, list[str]]:
        """``{qid: [docid, ...]}`` in first-stage order."""
        return {q.qid: [str(c.id) for c in q.candidates] for q in self.queries}


def _dataset_from_hits(
    name: str, hits: Sequence[QueryHits], qrels: dict[str, dict[str, int]], depth: int | None,
    threshold: int, first_stage: str,
) -> RerankDataset:
    queries: list[EvalQuery] = []
    corpus: dict[str, str] = {}
    for qh in hits:
        cands = []
        for h in qh.hits[:depth] if depth else qh.hits:
            corpus.setdefault(h.docid, h.content)
            cands.append(Candidate(text=h.content, id=h.docid, score=h.score, metadata={"rank": h.rank}))
        queries.append(EvalQuery(qid=qh.qid, text=qh.query, candidates=tuple(cands)))
    return RerankDataset(
        name=name, queries=queries, qrels=qrels, threshold=threshold, corpus=corpus, first_stage=first_stage
    )


def _dl19_dir(data_dir: PathLike) -> Path:
    d = Path(data_dir)
    return d / "trec-dl19" if (d / "trec-dl19").is_dir() else d


def load_dl19(data_dir: PathLike, *, first_stage: str = "bm25", depth: int | None = 100) -> RerankDataset:
    """TREC DL 2019 passage: 43 queries, top-``depth`` first-stage candidates, qrels.

    Args:
        data_dir: the data folder (holding ``trec-dl19/``) or ``trec-dl19`` itself.
        first_stage: ``"bm25"`` (``retrieve_results_dl19.json``, the RankGPT input) or
            ``"dense"`` (``dl19_top100_contriever.jsonl``).
        depth: keep the first ``depth`` candidates (``None``: all).
    """
    d = _dl19_dir(data_dir)
    files = {"bm25": "retrieve_results_dl19.json", "dense": "dl19_top100_contriever.jsonl"}
    if first_stage not in files:
        raise ValueError(f"first_stage must be one of {sorted(files)}, got {first_stage!r}")
    qrels = load_qrels(_need(d / "qrels.dl19-passage.txt", "DL19 qrels"))
    hits = load_rankgpt_json(_need(d / files[first_stage], f"DL19 {first_stage} run"))
    return _dataset_from_hits("dl19", hits, qrels, depth, 2, first_stage)


# -- SciFact -----------------------------------------------------------------------


def parse_numpy_string_list(field_text: str) -> list[str]:
    """Parse a numpy-printed list of strings (``['a' 'b'\\n 'c']``) into its strings.

    Adjacent literals are *separate* items (a whole-field ``ast.literal_eval`` would
    wrongly concatenate them), so each STRING token is evaluated on its own.
    """
    import ast
    import tokenize

    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(field_text).readline):
            if tok.type == tokenize.STRING:
                out.append(ast.literal_eval(tok.string))
    except (tokenize.TokenError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot parse the string list {field_text[:80]!r}...: {exc}") from None
    return out


def _scifact_dir(data_dir: PathLike) -> Path:
    d = Path(data_dir)
    return d / "beir-scifact" if (d / "beir-scifact").is_dir() else d


def load_scifact_corpus(data_dir: PathLike) -> dict[str, tuple[str, str]]:
    """``{doc_id: (title, abstract)}`` from ``scifact.zip`` (abstract sentences joined by spaces)."""
    import csv
    import zipfile

    z = _need(_scifact_dir(data_dir) / "scifact.zip", "SciFact release (scifact.zip)")
    corpus: dict[str, tuple[str, str]] = {}
    csv.field_size_limit(1 << 24)
    with zipfile.ZipFile(z) as zf:
        name = next((n for n in zf.namelist() if n.endswith("corpus_train.csv")), None)
        if name is None:
            raise DataNotFoundError(f"{z} has no corpus_train.csv")
        with zf.open(name) as raw:
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            for row in reader:
                sentences = parse_numpy_string_list(row["abstract"])
                corpus[str(row["doc_id"]).strip()] = (row["title"].strip(), " ".join(s.strip() for s in sentences))
    return corpus


def load_scifact(
    data_dir: PathLike,
    *,
    depth: int = 100,
    retriever_factory: Callable[[list[Candidate]], Any] | None = None,
) -> RerankDataset:
    """BEIR SciFact test: 300 claims, a BM25 top-``depth`` over title + abstract, qrels.

    There is no shipped run: the first stage is built here with
    ``rerank_rag.retrievers.BM25Retriever`` over the 5,183 abstracts (text = title +
    " " + abstract; Lucene BM25 k1=0.9, b=0.4, stopwords, Porter stemming: nDCG@10
    0.6769, the published Lucene figure is 0.676-0.679), or with
    ``retriever_factory(corpus_candidates)``, which must return a callable
    ``retriever(query, k) -> list[Candidate]`` (sync or async; best first,
    ``Candidate.id`` the doc id).
    """
    d = _scifact_dir(data_dir)
    qrels = load_qrels(_need(d / "qrels.beir-v1.0.0-scifact.test.txt", "SciFact qrels"))
    topics = load_topics(_need(d / "topics.beir-v1.0.0-scifact.test.tsv.gz", "SciFact topics"))
    corpus = load_scifact_corpus(d)
    texts = {docid: f"{title} {abstract}".strip() for docid, (title, abstract) in corpus.items()}
    docs = [Candidate(text=t, id=docid, metadata={"title": corpus[docid][0]}) for docid, t in texts.items()]
    if retriever_factory is None:
        from ..retrievers import BM25Retriever  # lazy: owned by the retrievers module

        retriever = BM25Retriever(docs)
        how = "rerank_rag.retrievers.BM25Retriever (title + abstract)"
    else:
        retriever = retriever_factory(docs)
        how = getattr(retriever, "__name__", type(retriever).__name__)
    queries: list[EvalQuery] = []
    for qid in sorted(topics, key=lambda q: int(q) if q.isdigit() else q):
        if qid not in qrels:
            continue
        text = topics[qid]
        hits = _call_retriever(retriever, text, depth)
        queries.append(EvalQuery(qid=qid, text=text, candidates=tuple(hits[:depth])))
    return RerankDataset(
        name="scifact", queries=queries, qrels=qrels, threshold=1, corpus=texts, first_stage=f"bm25: {how}"
    )


def _call_retriever(retriever: Any, query: str, depth: int) -> list[Candidate]:
    import inspect

    res = retriever(query, depth)
    if inspect.isawaitable(res):
        import asyncio

        res = asyncio.run(_await(res))
    return list(res)


async def _await(x: Any) -> Any:
    return await x


# -- MuSiQue -----------------------------------------------------------------------


def load_musique(data_dir: PathLike) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``(records, corpus)`` of the MuSiQue-100 sample, as published (see PROVENANCE.md)."""
    d = Path(data_dir)
    d = d / "musique-100" if (d / "musique-100").is_dir() else d
    with open(_need(d / "musique_train.json", "MuSiQue questions"), encoding="utf-8") as f:
        records = json.load(f)
    with open(_need(d / "musique_train_corpus.json", "MuSiQue corpus"), encoding="utf-8") as f:
        corpus = json.load(f)
    if not isinstance(records, list) or not isinstance(corpus, list):
        raise ValueError(f"{d}: expected JSON arrays in musique_train.json and musique_train_corpus.json")
    return records, corpus


def judgments_from_mapping(qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Copy a qrels-like mapping into plain dicts with str keys and int grades."""
    return {str(q): {str(d): int(g) for d, g in j.items()} for q, j in qrels.items()}
