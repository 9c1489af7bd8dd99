"""The Ray engine's stages: plain Python that never imports Ray (``pyarrow`` is
imported inside the stages, on the workers), so they are testable in-process.

* :func:`is_one_round` / :func:`first_round`: which rankers split into block rows, and
  the requests of a query's first round, built by the ranker's own plan.
* :func:`expand_rows`: task stage, query rows -> one row per first-round request.
* :class:`LLMStage`: actor stage answering request rows with one client per actor.
* :class:`QueryStage`: actor stage ranking whole queries (sequential methods).
* JSON helpers for rows (candidates, rankings, errors).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields
from typing import Any

from .._errors import LLMError
from .._types import Ranking, Usage
from ._backend import CappedLLM, llm_of, outcome_to_json, request_key, with_backend
from ._types import BatchQuery

__all__ = ["is_one_round", "first_round", "expand_rows", "LLMStage", "QueryStage"]

_USAGE_FIELDS = tuple(f.name for f in fields(Usage))


# -- what a ranker's first round is ----------------------------------------------------


def is_one_round(ranker: Any) -> bool:
    """True for rankers whose LLM calls all go out in one round (JointRank with an LLM,
    LLM pointwise, a single-call listwise ranker); a sliding window is sequential."""
    from ..jointrank import JointRanker
    from ..listwise import ListwiseRanker
    from ..pointwise import LLMPointwiseRanker

    if isinstance(ranker, JointRanker):
        return ranker.scorer is None
    if isinstance(ranker, LLMPointwiseRanker):
        return True
    if isinstance(ranker, ListwiseRanker):
        return ranker.mode == "single" and ranker.passes == 1
    return False


def first_round(ranker: Any, query: str, candidates: Any) -> list[Any]:
    """The requests of the ranker's first round for one query (``[]`` when the query
    needs no LLM call), built by the ranker's own plan."""
    query, cands, k = ranker._prepare(query, candidates, None)
    if ranker._trivial(cands, k) is not None:
        return []
    plan = ranker._plan(query, cands, Usage())
    try:
        return list(next(plan))
    except StopIteration:
        return []
    finally:
        plan.close()


# -- rows ------------------------------------------------------------------------------


def _cands_json(q: BatchQuery) -> str:
    return json.dumps(
        [{"text": c.text, "id": c.id, "score": c.score} for c in q.candidates], ensure_ascii=False
    )


def _error_json(exc: BaseException) -> str:
    if isinstance(exc, LLMError):
        return json.dumps(outcome_to_json(exc))
    return json.dumps({"error": "BatchError", "message": f"{type(exc).__name__}: {exc}", "transient": True})


def _ranking_json(r: Ranking) -> str:
    return json.dumps(
        {
            "order": list(r.order),
            "scores": [float(s) for s in r.scores],
            "relevance": list(r.relevance) if r.relevance is not None else None,
            "usage": {k: getattr(r.usage, k) for k in _USAGE_FIELDS},
        }
    )


def _ranking_from_json(text: str) -> Ranking:
    d = json.loads(text)
    usage = Usage(**{k: v for k, v in d["usage"].items() if k in _USAGE_FIELDS})
    rel = tuple(d["relevance"]) if d.get("relevance") is not None else None
    return Ranking(order=tuple(d["order"]), scores=tuple(d["scores"]), usage=usage, relevance=rel)


def expand_rows(batch: Any, ranker: Any) -> Any:
    """Task stage: query rows -> one row per first-round request (``k``-th of ``n``)."""
    import pyarrow as pa

    out: dict[str, list[Any]] = {"qid": [], "k": [], "n": [], "key": [], "req": []}
    for row in batch.to_pylist():
        reqs = first_round(ranker, row["query"], json.loads(row["cands"]))
        if not reqs:
            for col, v in zip(out, (row["qid"], -1, 0, "", "")):
                out[col].append(v)
        for k, r in enumerate(reqs):
            body = json.dumps({"messages": [dict(m) for m in r.messages], "params": dict(r.params)}, ensure_ascii=False)
            for col, v in zip(out, (row["qid"], k, len(reqs), request_key(r.messages, r.params), body)):
                out[col].append(v)
    return pa.table(
        {
            "qid": pa.array(out["qid"], pa.string()),
            "k": pa.array(out["k"], pa.int64()),
            "n": pa.array(out["n"], pa.int64()),
            "key": pa.array(out["key"], pa.string()),
            "req": pa.array(out["req"], pa.string()),
        }
    )


class LLMStage:
    """Actor-pool stage: answers request rows with one LLM client per actor.

    Args:
        llm: the backend (pickled to each actor: each gets its own client).
        cap: this actor's share of the global cap on calls in flight.
    """

    def __init__(self, llm: Any, cap: int) -> None:
        self.llm = CappedLLM(llm, cap)

    async def _one(self, row: dict[str, Any]) -> str:
        if row["k"] < 0:
            return ""
        if self.llm.fatal is not None:  # a permanent error: stop calling
            return json.dumps(outcome_to_json(self.llm.fatal))
        req = json.loads(row["req"])
        try:
            c = await self.llm.acomplete(req["messages"], **req["params"])
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an outcome
            return _error_json(exc)
        return json.dumps(outcome_to_json(c))

    async def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows = batch.to_pylist()
        outs = await asyncio.gather(*(self._one(r) for r in rows))
        return pa.table(
            {
                "qid": pa.array([r["qid"] for r in rows], pa.string()),
                "k": pa.array([r["k"] for r in rows], pa.int64()),
                "n": pa.array([r["n"] for r in rows], pa.int64()),
                "key": pa.array([r["key"] for r in rows], pa.string()),
                "out": pa.array(list(outs), pa.string()),
            }
        )


class QueryStage:
    """Actor-pool stage for sequential methods: ranks whole queries with ``arank``,
    all queries of the actor interleaved under its cap."""

    def __init__(self, ranker: Any, cap: int, top_n: int | None) -> None:
        inner = llm_of(ranker)
        self.llm = CappedLLM(inner, cap) if inner is not None else None
        self.ranker = with_backend(ranker, self.llm) if inner is not None else ranker
        self.top_n = top_n

    async def _one(self, row: dict[str, Any]) -> tuple[str, str]:
        if self.llm is not None and self.llm.fatal is not None:
            return "", _error_json(self.llm.fatal)
        try:
            ranking = await self.ranker.arank(row["query"], json.loads(row["cands"]), top_n=self.top_n)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported to the driver
            return "", _error_json(exc)
        if self.llm is not None and self.llm.fatal is not None:
            return "", _error_json(self.llm.fatal)  # it may hide a fallback
        return _ranking_json(ranking), ""

    async def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows = batch.to_pylist()
        outs = await asyncio.gather(*(self._one(r) for r in rows))
        return pa.table(
            {
                "qid": pa.array([r["qid"] for r in rows], pa.string()),
                "result": pa.array([o[0] for o in outs], pa.string()),
                "error": pa.array([o[1] for o in outs], pa.string()),
            }
        )
