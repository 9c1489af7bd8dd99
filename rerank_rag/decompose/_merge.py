"""Merging the result lists of several queries into one de-duplicated pool.

**When two retrieved candidates are the same passage** (one rule, applied everywhere):

* their texts must be equal after :func:`passage_text_key` (Unicode NFC, runs of
  whitespace collapsed, ends stripped; case and punctuation are kept), and
* their ids must not disagree: equal ids, or at least one of them without an id.

So a passage found once with an id and once without is one pool entry (it takes the
id: the first candidate seen with an id represents it). Different ids with the same
text are different passages (a corpus may hold duplicates; ids are authoritative).
Different texts under the same id are kept apart as different passages, never
collapsed: collapsing could lose a passage (chunks sharing their document's id,
query-dependent snippets), and keeping both costs the reranker one more candidate.
Each such id is logged once per merge at WARNING and counted in
``usage["retrieve"].id_conflicts`` by the pipeline.

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
import logging
import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .._types import Candidate

__all__ = [
    "Hit",
    "PooledCandidate",
    "merge_results",
    "candidate_key",
    "passage_text_key",
    "id_conflicts",
    "MergeMethod",
]

log = logging.getLogger("rerank_rag.decompose")

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
        candidate: the candidate that represents the entry: the first one seen with an
            id, else the first one seen.
        key: a key unique within the pool (``"id:<id>"`` or ``"text:<sha1>"``;
            ``"#2"``, ``"#3"``... appended when an id carries several texts).
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


def passage_text_key(text: str) -> str:
    """The comparison form of a passage text: NFC, whitespace runs collapsed, ends stripped.

    Nothing else is dropped: case, punctuation and symbols are part of the passage.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def candidate_key(candidate: Candidate) -> str:
    """The key of a candidate on its own: ``"id:<id>"``, else a hash of its text key.

    In a pool, an id-less candidate joins the entry holding the same text (which may
    carry an id); see the module docs for the full rule.
    """
    if candidate.id is not None:
        return f"id:{candidate.id}"
    digest = hashlib.sha1(passage_text_key(candidate.text).encode("utf-8")).hexdigest()
    return f"text:{digest}"


class _Entry:
    __slots__ = ("candidate", "hits", "first_seen")

    def __init__(self, candidate: Candidate, first_seen: int) -> None:
        self.candidate = candidate
        self.hits: list[Hit] = []
        self.first_seen = first_seen


class _Pool:
    """The de-duplication rule of the module docs, as two look-ups."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self._by_id_text: dict[tuple[Hashable, str], _Entry] = {}
        self._by_text: dict[str, _Entry] = {}  # the first entry seen with this text

    def entry_for(self, cand: Candidate) -> _Entry:
        text = passage_text_key(cand.text)
        if cand.id is None:
            found = self._by_text.get(text)
        else:
            found = self._by_id_text.get((cand.id, text))
            if found is None:
                same_text = self._by_text.get(text)
                if same_text is not None and same_text.candidate.id is None:
                    found = same_text  # the id-less entry adopts this id
                    found.candidate = cand
                    self._by_id_text[(cand.id, text)] = found
        if found is not None:
            return found
        entry = _Entry(cand, len(self.entries))
        self.entries.append(entry)
        self._by_text.setdefault(text, entry)
        if cand.id is not None:
            self._by_id_text[(cand.id, text)] = entry
        return entry


def _keys(entries: Sequence[_Entry]) -> list[str]:
    used: dict[str, int] = {}
    out: list[str] = []
    for e in entries:
        base = candidate_key(e.candidate)
        used[base] = used.get(base, 0) + 1
        out.append(base if used[base] == 1 else f"{base}#{used[base]}")
    return out


def _conflicting_ids(candidates: Iterable[Candidate]) -> list[Hashable]:
    """Ids held by more than one of ``candidates`` (pool entries of one id differ in text)."""
    count: dict[Hashable, int] = {}
    for c in candidates:
        if c.id is not None:
            count[c.id] = count.get(c.id, 0) + 1
    return [i for i, n in count.items() if n > 1]


def id_conflicts(pool: Sequence[PooledCandidate]) -> int:
    """How many ids label more than one pool entry (different texts under one id)."""
    return len(_conflicting_ids(p.candidate for p in pool))


def merge_results(
    results: Sequence[Sequence[Candidate]],
    queries: Sequence[str],
    *,
    method: str = "union",
    rrf_k: int = 60,
) -> list[PooledCandidate]:
    """Merge per-query result lists into one pool (see the module docs for the rule).

    Args:
        results: one list per query, best first. A query whose retrieval failed may be
            given an empty list.
        queries: the query texts, aligned with ``results``.
        method: ``"union"``, ``"interleave"`` or ``"rrf"``.
        rrf_k: the RRF constant (60, as in Cormack et al. 2009).

    Duplicates inside one query's list keep only their first (best) rank. Ids that
    carry several texts are logged once at WARNING.
    """
    if len(results) != len(queries):
        raise ValueError(f"got {len(results)} result lists for {len(queries)} queries")
    if method not in MERGE_METHODS:
        raise ValueError(f"merge must be one of {', '.join(MERGE_METHODS)}; got {method!r}")
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
        raise ValueError(f"rrf_k must be a non-negative int, got {rrf_k!r}")

    pool = _Pool()
    per_query: list[list[_Entry]] = []  # each query's entries, de-duplicated, by rank
    for qi, (query, lst) in enumerate(zip(queries, results)):
        here: list[_Entry] = []
        for rank, cand in enumerate(lst, start=1):
            entry = pool.entry_for(cand)
            if entry.hits and entry.hits[-1].query_index == qi:
                continue  # already found by this query at a better rank
            entry.hits.append(Hit(qi, query, rank, cand.score))
            here.append(entry)
        per_query.append(here)

    conflicts = _conflicting_ids(e.candidate for e in pool.entries)
    if conflicts:
        shown = ", ".join(repr(i) for i in conflicts[:5]) + (", ..." if len(conflicts) > 5 else "")
        log.warning(
            "merge: %d id(s) carry different texts (%s); kept as separate passages",
            len(conflicts), shown,
        )

    fused: dict[int, float] = {}
    if method == "union":
        order = list(pool.entries)
    elif method == "interleave":
        order, placed = [], set()
        for r in range(max((len(h) for h in per_query), default=0)):
            for here in per_query:
                if r < len(here) and id(here[r]) not in placed:
                    placed.add(id(here[r]))
                    order.append(here[r])
    else:
        fused = {id(e): sum(1.0 / (rrf_k + h.rank) for h in e.hits) for e in pool.entries}
        order = sorted(pool.entries, key=lambda e: (-fused[id(e)], e.first_seen))
    keys = dict(zip(map(id, pool.entries), _keys(pool.entries)))
    return [
        PooledCandidate(e.candidate, keys[id(e)], tuple(e.hits), fused.get(id(e)))
        for e in order
    ]
