"""Ranking metrics, pure Python, matching ``trec_eval`` where it defines them.

All functions take one query's ranking as an ordered sequence of document ids (best
first) and that query's judgments ``{docid: grade}``; :func:`evaluate` averages them
over queries.

* :func:`ndcg_at_k` is ``trec_eval -m ndcg_cut.k``: gain = the judged grade (linear,
  not ``2**g - 1``), discount ``log2(rank + 1)``, ideal DCG from *all* judged documents
  of the query (not only the retrieved ones); unjudged and non-positive grades gain 0;
  a query with no positive judgment scores 0.
* :func:`mrr_at_k`: reciprocal rank of the first document with ``grade >= threshold``
  within the top ``k`` (0 if none).
* :func:`recall_at_k`: relevant documents (``grade >= threshold``) in the top ``k``
  divided by all relevant documents of the query (``trec_eval -l threshold -m
  recall.k``); 0 for a query without relevant documents, as trec_eval does.
* :func:`judged_at_k`: the fraction of the top ``k`` that has a judgment (any grade);
  the denominator is ``min(k, len(ranking))`` so a short list is not penalised.

Duplicate ids in a ranking count once (the first occurrence), as trec_eval refuses
duplicates.

Why not ``pytrec_eval`` or ``ir-measures``: these four metrics are a hundred lines of
pure Python that import in microseconds, need no compiled extension, and cover what
the harness reports (including ``judged@k``, which trec_eval lacks as such);
``pytrec_eval`` is a C extension and ``ir-measures`` a layer over several backends.
Equality with trec_eval is not assumed but tested: ``tests/test_eval_metrics.py``
compares every metric, per query, with trec_eval's own code (``pytrec-eval-terrier``,
in the ``dev`` extra) on random runs and on the DL19 BM25 run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Qrels",
    "ndcg_at_k",
    "mrr_at_k",
    "recall_at_k",
    "judged_at_k",
    "parse_metric",
    "evaluate",
    "EvalResult",
    "DEFAULT_METRICS",
    "AVERAGING",
]

#: ``{qid: {docid: grade}}``
Qrels = Mapping[str, Mapping[str, int]]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@100", "judged@10")

_METRIC_RE = re.compile(r"^(ndcg|mrr|recall|judged)@(\d+)$")


def _dedup(ranking: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for d in ranking:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"cutoff k must be a positive int, got {k!r}")


def ndcg_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """nDCG@k exactly as ``trec_eval -m ndcg_cut.k`` computes it (linear gain).

    Args:
        ranking: document ids, best first.
        judgments: this query's ``{docid: grade}``; missing ids are unjudged (gain 0).
        k: cutoff.
    """
    _check_k(k)
    dcg = 0.0
    for i, d in enumerate(_dedup(ranking)[:k]):
        g = judgments.get(d, 0)
        if g > 0:
            dcg += g / math.log2(i + 2)
    ideal = sorted((g for g in judgments.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(
    ranking: Sequence[str], judgments: Mapping[str, int], k: int, *, threshold: int = 1
) -> float:
    """Reciprocal rank of the first document with ``grade >= threshold`` in the top k."""
    _check_k(k)
    for i, d in enumerate(_dedup(ranking)[:k]):
        if judgments.get(d, 0) >= threshold:
            return 1.0 / (i + 1)
    return 0.0


def recall_at_k(
    ranking: Sequence[str], judgments: Mapping[str, int], k: int, *, threshold: int = 1
) -> float:
    """Fraction of the relevant documents (``grade >= threshold``) found in the top k."""
    _check_k(k)
    relevant = {d for d, g in judgments.items() if g >= threshold}
    if not relevant:
        return 0.0
    return sum(1 for d in _dedup(ranking)[:k] if d in relevant) / len(relevant)


def judged_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Fraction of the top ``min(k, len(ranking))`` documents that have a judgment."""
    _check_k(k)
    top = _dedup(ranking)[:k]
    if not top:
        return 0.0
    return sum(1 for d in top if d in judgments) / len(top)


def nearest_rank_percentile(xs: Sequence[float], p: float) -> float:
    """The ``p`` quantile (0..1) of ``xs`` by nearest rank (0.0 for none): the reports'
    latency p50 / p95."""
    if not xs:
        return 0.0
    s = sorted(xs)
    return float(s[min(len(s) - 1, max(0, round(p * (len(s) - 1))))])


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; raises ``ValueError`` naming the accepted forms."""
    m = _METRIC_RE.match(name.strip().lower())
    if not m:
        raise ValueError(
            f"unknown metric {name!r}; use ndcg@K, mrr@K, recall@K or judged@K (K a positive int)"
        )
    k = int(m.group(2))
    _check_k(k)
    return m.group(1), k


#: Which queries :func:`evaluate` averages over.
AVERAGING = {
    "run": "the queries of the run that have judgments (trec_eval's default)",
    "judged": "every judged query, a query missing from the run scoring 0 (trec_eval -c)",
}


@dataclass(frozen=True)
class EvalResult:
    """Mean metrics over queries plus the per-query values.

    Attributes:
        means: ``{metric: mean over the evaluated queries}``.
        per_query: ``{metric: {qid: value}}``.
        num_queries: how many queries the means average over.
        missing: qids judged in the qrels but absent from the run (scored 0 when
            ``queries="judged"``, left out otherwise).
        threshold: the minimum grade MRR and recall counted as relevant.
        queries: ``"run"`` or ``"judged"``: which queries were averaged.
    """

    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    num_queries: int
    missing: tuple[str, ...] = ()
    threshold: int = 1
    queries: str = "run"

    def describe(self) -> str:
        """One sentence stating the relevance threshold and the averaging, for reports."""
        how = (
            f"averaged over the {self.num_queries} judged queries of the run (trec_eval default)"
            if self.queries == "run"
            else f"averaged over all {self.num_queries} judged queries, missing ones scoring 0 (trec_eval -c)"
        )
        return f"relevance threshold {self.threshold} (grade >= {self.threshold} is relevant for MRR/recall), {how}"


def evaluate(
    run: Mapping[str, Sequence[str]],
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    threshold: int = 1,
    queries: str = "run",
    complete: bool | None = None,
) -> EvalResult:
    """Average metrics over queries, the way ``trec_eval`` does.

    The two choices that change the numbers are explicit, with trec_eval's defaults:

    Args:
        run: ``{qid: [docid, ...]}`` best first.
        qrels: ``{qid: {docid: grade}}``.
        metrics: names such as ``"ndcg@10"``, ``"mrr@10"``, ``"recall@100"``,
            ``"judged@10"``.
        threshold: minimum grade counted as relevant by ``mrr`` and ``recall``
            (trec_eval's ``-l``, default 1; TREC DL uses 2). nDCG always uses the graded
            gains.
        queries: ``"run"`` (default, as trec_eval): average over the queries present
            in both the run and the qrels. ``"judged"`` (``trec_eval -c``): average over
            every query of the qrels, a query missing from the run scoring 0. Run
            queries absent from the qrels are ignored either way, and an empty ranking
            counts as missing (a TREC run file cannot list a query without documents).
        complete: deprecated alias: ``True`` is ``queries="judged"``, ``False`` is
            ``queries="run"``.
    """
    if complete is not None:
        import warnings

        warnings.warn(
            "evaluate(complete=...) is deprecated; use queries='judged' (trec_eval -c) or queries='run'",
            DeprecationWarning,
            stacklevel=2,
        )
        queries = "judged" if complete else "run"
    if queries not in AVERAGING:
        raise ValueError(f"queries must be 'run' (trec_eval default) or 'judged' (trec_eval -c), got {queries!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise ValueError(f"threshold must be an int grade, got {threshold!r}")
    parsed = [(m, *parse_metric(m)) for m in metrics]
    ranked = {q for q, r in run.items() if len(r)}  # a run file cannot list an empty ranking
    if queries == "judged":
        qids = sorted(qrels)
    else:
        qids = sorted(q for q in qrels if q in ranked)
    missing = tuple(q for q in sorted(qrels) if q not in ranked)
    per_query: dict[str, dict[str, float]] = {m: {} for m, _, _ in parsed}
    for qid in qids:
        ranking = run.get(qid, ())
        judgments = qrels[qid]
        for name, kind, k in parsed:
            if kind == "ndcg":
                v = ndcg_at_k(ranking, judgments, k)
            elif kind == "mrr":
                v = mrr_at_k(ranking, judgments, k, threshold=threshold)
            elif kind == "recall":
                v = recall_at_k(ranking, judgments, k, threshold=threshold)
            else:
                v = judged_at_k(ranking, judgments, k)
            per_query[name][qid] = v
    means = {
        name: (sum(per_query[name].values()) / len(qids) if qids else 0.0) for name, _, _ in parsed
    }
    return EvalResult(
        means=means, per_query=per_query, num_queries=len(qids), missing=missing,
        threshold=threshold, queries=queries,
    )
