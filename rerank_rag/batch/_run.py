"""The batch API: stream rankings, or write a resumable run file.

* :func:`arerank_batch`: an async iterator of :class:`BatchResult` (completion order).
* :func:`rerank_batch`: the same, collected, in input order (small batches, notebooks).
* :func:`rerank_to_run`: the resumable, lossless path the CLI uses: results go to the
  journal as they finish, a rerun skips finished queries, and the TREC run plus the
  usage report are written when every query is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from ._backend import llm_of
from ._journal import Journal, finalize, journal_path
from ._local import LocalEngine
from ._progress import BatchProgress
from ._types import BatchResult

__all__ = ["make_engine", "arerank_batch", "rerank_batch", "arerank_to_run", "rerank_to_run", "ENGINES"]

ENGINES = ("local", "ray")


def make_engine(ranker: Any, engine: str = "local", **options: Any) -> Any:
    """A :class:`LocalEngine` or a :class:`~rerank_rag.batch.RayEngine` (``rerank-rag[ray]``)."""
    if engine == "local":
        return LocalEngine(ranker, **options)
    if engine == "ray":
        from ._ray import RayEngine

        return RayEngine(ranker, **options)
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


async def _close_llm(ranker: Any) -> None:
    aclose = getattr(llm_of(ranker), "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def arerank_batch(
    ranker: Any, queries: Iterable[Any], *, engine: str = "local", skip: Iterable[str] = (), **options: Any
) -> AsyncIterator[BatchResult]:
    """Rerank ``queries`` (``BatchQuery``, ``(qid, query, candidates)`` tuples or mappings)
    with ``ranker``; yield each :class:`BatchResult` as soon as its query is done.

    ``options`` go to the engine (``max_calls_in_flight``, ``top_n``, ...)."""
    eng = make_engine(ranker, engine, **options)
    async for res in eng.astream(queries, skip=set(skip)):
        yield res


def rerank_batch(ranker: Any, queries: Iterable[Any], *, engine: str = "local", **options: Any) -> list[BatchResult]:
    """Blocking :func:`arerank_batch`, results in input order."""

    async def main() -> list[BatchResult]:
        try:
            return [r async for r in arerank_batch(ranker, queries, engine=engine, **options)]
        finally:
            await _close_llm(ranker)

    return sorted(asyncio.run(main()), key=lambda r: r.index)


async def arerank_to_run(
    ranker: Any,
    queries: Iterable[Any],
    out: str | Path,
    *,
    engine: str = "local",
    header: Mapping[str, Any] | None = None,
    report_out: str | Path | None = None,
    report_extra: Mapping[str, Any] | None = None,
    tag: str = "rerank-rag",
    restart: bool = False,
    progress: str = "auto",
    log_every: float = 10.0,
    total: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Rerank into a TREC run file, resumably (see :func:`rerank_to_run`)."""
    if total is None:
        total = getattr(queries, "total", None)
        if total is None and hasattr(queries, "__len__"):
            total = len(queries)  # type: ignore[arg-type]
    eng = make_engine(ranker, engine, **options)
    jpath = journal_path(out)
    head = dict(header or {"ranker": repr(ranker)})
    journal = Journal(jpath, head, restart=restart)
    todo = None if total is None else max(0, total - len(journal.done))
    bar = BatchProgress(todo, stats=eng.stats, mode=progress, log_every=log_every, label=f"batch {engine}")
    t0 = time.perf_counter()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.5)
            bar.tick()

    tick = asyncio.get_running_loop().create_task(ticker())
    ranked = 0
    try:
        async for res in eng.astream(queries, skip=journal.done):
            journal.append(res)
            ranked += 1
            bar.update(1)
        journal.flush()
    finally:
        tick.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick
        bar.close()
        journal.close()
        await _close_llm(ranker)
    wall = time.perf_counter() - t0
    expected = getattr(eng, "input_qids", None)
    stats = eng.stats()
    extra: dict[str, Any] = {
        "engine": engine,
        "settings": head,
        "this_run": {
            "queries_ranked": ranked,
            "queries_resumed": journal.resumed,
            "wall_time_s": wall,
            "queries_per_s": ranked / wall if wall > 0 else 0.0,
            "calls_per_s": stats.get("calls", 0) / wall if wall > 0 else 0.0,
            "engine_stats": stats,
        },
        **dict(report_extra or {}),
    }
    if report_out is None:
        report_out = Path(str(out) + ".usage.json")
    report = finalize(jpath, out, tag=tag, report_out=report_out, report_extra=extra, only=expected)
    return report


def rerank_to_run(ranker: Any, queries: Iterable[Any], out: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Rerank ``queries`` into the TREC run ``out``, resumably and losslessly.

    Each finished query is appended to ``<out>.journal.jsonl`` and ``fsync``'d; an
    interrupted run loses at most the queries in flight, and calling this again with
    the same ``out`` skips the finished ones. When all are done, ``out`` is written in
    input order (each query exactly once) and the usage report goes to
    ``report_out`` (default ``<out>.usage.json``). Returns the report.

    Keyword arguments: ``engine`` (``"local"`` or ``"ray"``), ``header`` (the settings
    a resumed journal must match), ``tag`` (run tag), ``restart`` (ignore an existing
    journal), ``progress`` (``"auto"``, ``"bar"``, ``"log"``, ``"off"``), and the
    engine's options (``max_calls_in_flight``, ``top_n``, ...).
    """
    return asyncio.run(arerank_to_run(ranker, queries, out, **kwargs))
