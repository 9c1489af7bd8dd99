"""Value types of batch reranking: a query in, a result out, and the batch errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import RerankRagError
from .._types import Candidate, Ranking, as_candidates

__all__ = ["BatchQuery", "BatchResult", "BatchError", "as_batch_query"]


class BatchError(RerankRagError):
    """A batch stopped: one query could not be ranked (the message names it), or the
    input is malformed. Results already written stay written; a rerun resumes."""


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an ``int`` >= 1 (not a bool); ValueError naming ``name`` otherwise.
    The one check of the engines' counts and caps."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class BatchQuery:
    """One query of a batch: its id, text and first-stage candidates (best first).

    ``candidates[i].id`` is the document id written to TREC runs (readers fill it);
    the Python API also accepts candidates without ids (results are positions).
    """

    qid: str
    query: str
    candidates: tuple[Candidate, ...]

    def docids(self) -> list[str]:
        """The candidates' ids, in input order (``BatchError`` if one has none)."""
        out = []
        for i, c in enumerate(self.candidates):
            if c.id is None:
                raise BatchError(f"query {self.qid!r}: candidate {i} has no id (needed for a run file)")
            out.append(str(c.id))
        return out


def as_batch_query(item: Any) -> BatchQuery:
    """A :class:`BatchQuery` from a ``BatchQuery``, a ``(qid, query, candidates)`` tuple
    or a mapping ``{"qid", "query", "candidates"}``; ``BatchError`` names what is wrong."""
    if isinstance(item, BatchQuery):
        return item
    if isinstance(item, Mapping):
        missing = [k for k in ("qid", "query", "candidates") if k not in item]
        if missing:
            raise BatchError(f"a batch query needs 'qid', 'query' and 'candidates'; missing {missing}")
        qid, query, cands = item["qid"], item["query"], item["candidates"]
    elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 3:
        qid, query, cands = item
    else:
        raise BatchError(
            "a batch query is a BatchQuery, a (qid, query, candidates) tuple or a mapping "
            f"with those keys; got {type(item).__name__}"
        )
    qid = str(qid)
    if not qid or any(ch.isspace() for ch in qid):
        raise BatchError(f"query id {qid!r} is empty or contains whitespace")
    if not isinstance(query, str) or not query.strip():
        raise BatchError(f"query {qid!r}: the query text must be a non-empty string")
    try:
        candidates = tuple(as_candidates(cands))
    except (TypeError, ValueError) as exc:
        raise BatchError(f"query {qid!r}: {exc}") from None
    return BatchQuery(qid=qid, query=query, candidates=candidates)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The ranking of one query of a batch.

    Attributes:
        index: position of the query in the input (0-based, counting skipped ones), so
            outputs can be put back in input order.
        qid: the query id.
        ranking: positions into the query's candidates, with scores and usage.
        docids: the ranked candidates' ids (best first) when every candidate had one.
    """

    index: int
    qid: str
    ranking: Ranking
    docids: tuple[str, ...] | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON-able journal record of this result."""
        r = self.ranking
        return {
            "i": self.index,
            "qid": self.qid,
            "order": list(r.order),
            "docids": list(self.docids) if self.docids is not None else None,
            "scores": [float(s) for s in r.scores],
            "relevance": list(r.relevance) if r.relevance is not None else None,
            "usage": r.usage.as_dict(),
        }


def _result(index: int, q: BatchQuery, ranking: Ranking) -> BatchResult:
    docids = None
    if all(c.id is not None for c in q.candidates):
        docids = tuple(str(q.candidates[i].id) for i in ranking.order)
    return BatchResult(index=index, qid=q.qid, ranking=ranking, docids=docids)

