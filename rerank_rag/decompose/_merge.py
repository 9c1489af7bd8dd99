"""Merging the result lists of several queries into one de-duplicated pool.

Candidates are the same when they have the same ``id``; candidates without an id are
the same when their normalised text (case-folded, whitespace collapsed) is equal. A
candidate with an id and one without are never merged (ids are authoritative).

Every pooled candidate keeps its *provenance*: which queries found it, at which rank
and with which first-stage score. Merging never loses a distinct candidate and never
repeats one.

Orders (``method``):

* ``"union"`` (default, the paper's plain union): first-seen order, walking the
  queries in order (the original question first) and each list from its top;
* ``"interleave"``: round-robin by rank (every query's 1st hit, then every 2nd, ...);
* ``"rrf"``: reciprocal rank fusion, ``sum over queries of 1 / (rrf_k + rank)``
  (ranks from 1), ties broken by first-seen order.

The pool order is the order the reranker receives (it matters for listwise rankers,
whose windows start from the end of the list, and for any fallback to input order).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .._types import Candidate

__all__ = ["Hit", "PooledCandidate", "merge_results", "candidate_key", "MergeMethod"]

MergeMethod = Literal["union", "interleave", "rrf"]
MERGE_METHODS: tuple[str, ...] = ("union", "interleave", "rrf")


@dataclass(frozen=True, slots=True)
class Hit:
    """One query's retrieval of a pooled candidate.

    Attributes:
        query_index: position of the query in the query list (0 = original question).
        query: the query text.
        rank: 1-based rank in that query's result list.
        score: the first-stage score the retriever gave (``None`` if it gave none).
    """

    query_index: int
    query: str
    rank: int
    score: float | None


@dataclass(frozen=True, slots=True)
class PooledCandidate:
    """A de-duplicated candidate with its provenance.

    Attributes:
        candidate: the candidate as first seen (from the earliest query that found it).
        key: the de-duplication key (``"id:<id>"`` or ``"text:<sha1>"``).
        hits: every query that retrieved it, in query order.
        fused_score: the RRF score when ``method="rrf"``, else ``None``.
    """

    candidate: Candidate
    key: str
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    fused_score: float | None = None

    @property
    def queries(self) -> tuple[str, ...]:
        """The queries that found this candidate."""
        return tuple(h.query for h in self.hits)

    @property
    def best_rank(self) -> int:
        """The best (smallest) rank any query gave it."""
        return min(h.rank for h in self.hits)

    @property
    def found_by_original(self) -> bool:
        """Whether the original question (query 0) retrieved it."""
        return any(h.query_index == 0 for h in self.hits)

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.candidate.text,
            "id": self.candidate.id,
            "key": self.key,
            "fused_score": self.fused_score,
            "hits": [
                {"query_index": h.query_index, "query": h.query, "rank": h.rank, "score": h.score}
                for h in self.hits
            ],
        }


def _normalise_text(text: str) -> str:
    return " ".join(text.casefold().split())


def candidate_key(candidate: Candidate) -> str:
    """The de-duplication key of a candidate: its id, else a hash of its normalised text."""
    if candidate.id is not None:
        return f"id:{candidate.id}"
    digest = hashlib.sha1(_normalise_text(candidate.text).encode("utf-8")).hexdigest()
    return f"text:{digest}"


def merge_results(
    results: Sequence[Sequence[Candidate]],
    queries: Sequence[str],
    *,
    method: str = "union",
    rrf_k: int = 60,
) -> list[PooledCandidate]:
    """Merge per-query result lists into one pool (see the module docs for the orders).

    Args:
        results: one list per query, best first. A query whose retrieval failed may be
            given an empty list.
        queries: the query texts, aligned with ``results``.
        method: ``"union"``, ``"interleave"`` or ``"rrf"``.
        rrf_k: the RRF constant (60, as in Cormack et al. 2009).

    Duplicates inside one query's list keep only their first (best) rank.
    """
    if len(results) != len(queries):
        raise ValueError(f"got {len(results)} result lists for {len(queries)} queries")
    if method not in MERGE_METHODS:
        raise ValueError(f"merge must be one of {', '.join(MERGE_METHODS)}; got {method!r}")
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
        raise ValueError(f"rrf_k must be a non-negative int, got {rrf_k!r}")

    first: dict[str, Candidate] = {}
    seen_order: dict[str, int] = {}
    hits: dict[str, list[Hit]] = {}
    # per-query de-duplicated (key, rank) lists, for the interleave order
    per_query: list[list[str]] = []
    for qi, (query, lst) in enumerate(zip(queries, results)):
        keys_here: list[str] = []
        seen_here: set[str] = set()
        for rank, cand in enumerate(lst, start=1):
            key = candidate_key(cand)
            if key in seen_here:
                continue
            seen_here.add(key)
            keys_here.append(key)
            if key not in first:
                first[key] = cand
                seen_order[key] = len(seen_order)
                hits[key] = []
            hits[key].append(Hit(qi, query, rank, cand.score))
        per_query.append(keys_here)

    if method == "union":
        order = sorted(first, key=seen_order.__getitem__)
    elif method == "interleave":
        order = []
        placed: set[str] = set()
        depth = max((len(p) for p in per_query), default=0)
        for r in range(depth):
            for keys_here in per_query:
                if r < len(keys_here) and keys_here[r] not in placed:
                    placed.add(keys_here[r])
                    order.append(keys_here[r])
    else:
        fused = {key: sum(1.0 / (rrf_k + h.rank) for h in hs) for key, hs in hits.items()}
        order = sorted(first, key=lambda key: (-fused[key], seen_order[key]))
        return [
            PooledCandidate(first[key], key, tuple(hits[key]), fused[key]) for key in order
        ]
    return [PooledCandidate(first[key], key, tuple(hits[key]), None) for key in order]
