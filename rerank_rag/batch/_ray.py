"""The Ray engine: batch reranking across machines with Ray Data.

Two pipelines, both ``map_batches`` with a callable class, so Ray Data runs a stateful
actor pool (``ActorPoolStrategy``) where each actor holds one LLM client behind its
share of the global cap:

* **One-round methods** (JointRank with an LLM, LLM pointwise, a single listwise
  call): ``query rows -> block rows -> LLM stage -> grouped by query -> aggregated``.
  A task stage expands each query into the requests of its first (and only) round
  (one row per JointRank block or per pointwise passage); the LLM stage answers the
  rows on the actor pool; the driver groups the answers by query as they stream in
  and hands them to the ranker's own ``arank`` through a
  :class:`~rerank_rag.batch._backend.ReplayLLM`, so the aggregation (and any
  retry round for failed blocks, sent live from the driver) is the ranker's code,
  not a copy. Grouping happens on the driver, in the stream, rather than with
  ``Dataset.groupby().map_groups()``: that is an all-to-all barrier (no query would
  finish before the last LLM call, and a crash would lose every answer), which the
  resumable journal could not use.
* **Sequential methods** (the sliding window): query rows go to an actor pool where
  each actor ranks its queries concurrently with ``arank`` under its cap, the same
  interleaving as the local engine (a query's next window is queued as soon as its
  previous one returns).

Same seed and inputs give the same rankings as the local engine: both run the same
plans against the same server. The driver keeps the inputs of the queries not yet
finished (Ray Data takes its input from the driver: ``from_items``).

Ray Data restarts a dead actor and retries its tasks; the driver keeps the first answer
of a duplicated row or query, so a killed worker loses nothing but time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Container, Iterable
from typing import Any

from .._errors import LLMError, is_permanent, require
from ._backend import (
    CappedLLM,
    ReplayLLM,
    llm_of,
    outcome_from_json,
    request_key,
    with_backend,
)
from ._local import iter_indexed, query_failed
from ._stages import (
    LLMStage,
    QueryStage,
    _cands_json,
    _ranking_from_json,
    expand_rows,
    first_round,
    is_one_round,
)
from ._types import BatchError, BatchQuery, BatchResult, _result

__all__ = ["RayEngine"]

log = logging.getLogger("rerank_rag.batch")


def _import_ray() -> Any:
    ray = require("ray", "ray", feature="the Ray batch engine")
    require("ray.data", "ray", feature="the Ray batch engine")
    require("pyarrow", "ray", feature="the Ray batch engine")
    return ray


# -- the engine --------------------------------------------------------------------------


class RayEngine:
    """Rerank many queries with Ray Data (``pip install 'rerank-rag[ray]'``).

    Args:
        ranker: any rerank-rag ranker; it is pickled to the workers (with its LLM
            backend's settings: each actor opens its own client).
        address: the Ray cluster (``"auto"``, ``"ray://head:10001"``); ``None`` uses
            the running Ray instance or starts a local one (stopped afterwards).
        num_actors: actors in the LLM (or query) stage's pool.
        max_calls_in_flight: the global cap on LLM calls in flight, split evenly over
            the actors (each gets ``ceil(cap / num_actors)``).
        batch_size: rows per actor call (default: half an actor's cap; each actor runs
            ``concurrent_batches`` calls at once).
        concurrent_batches: actor calls that run concurrently on one actor's event loop.
        actor_num_cpus: CPUs reserved per actor (LLM clients mostly wait: keep it low).
        split: ``"auto"`` (block rows for one-round methods, whole queries otherwise),
            ``"blocks"`` or ``"queries"``.
        top_n: keep the best ``top_n`` per query.
        runtime_env: Ray runtime environment for a cluster (e.g. ``{"pip":
            ["rerank-rag[openai]"]}`` or ``env_vars``), passed to ``ray.init``.
        init_kwargs: more ``ray.init`` arguments.
    """

    def __init__(
        self,
        ranker: Any,
        *,
        address: str | None = None,
        num_actors: int = 2,
        max_calls_in_flight: int = 64,
        batch_size: int | None = None,
        concurrent_batches: int = 4,
        actor_num_cpus: float = 0.5,
        split: str = "auto",
        top_n: int | None = None,
        runtime_env: dict[str, Any] | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not callable(getattr(ranker, "arank", None)):
            raise TypeError(f"ranker must have an async arank(); got {type(ranker).__name__}")
        for name, v in (("num_actors", num_actors), ("max_calls_in_flight", max_calls_in_flight), ("concurrent_batches", concurrent_batches)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if split not in ("auto", "blocks", "queries"):
            raise ValueError(f"split must be 'auto', 'blocks' or 'queries', got {split!r}")
        if split == "blocks" and not is_one_round(ranker):
            raise ValueError(f"split='blocks' needs a one-round ranker (JointRank, LLM pointwise); {type(ranker).__name__} is sequential")
        self.ranker = ranker
        self.address = address
        self.num_actors = num_actors
        self.max_calls_in_flight = max_calls_in_flight
        self.actor_cap = max(1, math.ceil(max_calls_in_flight / num_actors))
        self.batch_size = batch_size or max(1, math.ceil(self.actor_cap / 2))
        self.concurrent_batches = concurrent_batches
        self.actor_num_cpus = actor_num_cpus
        self.split = "blocks" if split == "blocks" or (split == "auto" and is_one_round(ranker)) else "queries"
        self.top_n = top_n
        self.runtime_env = runtime_env
        self.init_kwargs = dict(init_kwargs or {})
        self.input_qids: set[str] = set()
        self.done = 0
        self.calls = 0
        self.tokens = 0
        self.running = 0
        self.driver_calls = 0
        self._live: CappedLLM | None = None
        self._owns_ray = False
        self.init_s = 0.0

    def stats(self) -> dict[str, Any]:
        live = self._live
        return {
            "queries_done": self.done,
            "queries_running": self.running,
            "calls": self.calls + (live.calls if live is not None else 0),
            "tokens": self.tokens,
            "split": self.split,
            "actors": self.num_actors,
            "driver_calls": self.driver_calls,
            "ray_init_s": self.init_s,
        }

    # -- Ray ------------------------------------------------------------------------------
    def _init(self) -> Any:
        t0 = time.perf_counter()
        ray = _import_ray()
        try:
            return self._init_ray(ray)
        finally:
            self.init_s = time.perf_counter() - t0

    def _init_ray(self, ray: Any) -> Any:
        if not ray.is_initialized():
            kw = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
            if self.runtime_env is not None:
                kw["runtime_env"] = self.runtime_env
            ray.init(address=self.address, **kw)
            self._owns_ray = True
        ctx = ray.data.DataContext.get_current()
        for name, value in (("enable_progress_bars", False), ("print_on_execution_start", False), ("verbose_progress", False)):
            if hasattr(ctx, name):
                setattr(ctx, name, value)
        return ray

    def _compute(self, ray: Any) -> Any:
        strategy = ray.data.ActorPoolStrategy
        kw: dict[str, Any] = {"size": self.num_actors}
        if "max_concurrent_calls_per_actor" in inspect.signature(strategy).parameters:
            kw["max_concurrent_calls_per_actor"] = self.concurrent_batches
        return strategy(**kw)

    def _dataset(self, ray: Any, rows: list[dict[str, str]]) -> Any:
        per_block = self.batch_size if self.split == "queries" else max(1, math.ceil(self.batch_size / 8))
        blocks = max(1, min(len(rows), math.ceil(len(rows) / per_block)))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        compute = self._compute(ray)
        extra: dict[str, Any] = {}
        if "max_concurrent_calls_per_actor" not in inspect.signature(ray.data.ActorPoolStrategy).parameters:
            extra["max_concurrency"] = self.concurrent_batches  # older Ray: actor option
        if self.split == "blocks":
            ds = ds.map_batches(expand_rows, fn_kwargs={"ranker": self.ranker}, batch_size=per_block, batch_format="pyarrow")
            return ds.map_batches(
                LLMStage,
                fn_constructor_kwargs={"llm": llm_of(self.ranker), "cap": self.actor_cap},
                compute=compute,
                batch_size=self.batch_size,
                batch_format="pyarrow",
                num_cpus=self.actor_num_cpus,
                **extra,
            )
        return ds.map_batches(
            QueryStage,
            fn_constructor_kwargs={"ranker": self.ranker, "cap": self.actor_cap, "top_n": self.top_n},
            compute=compute,
            batch_size=self.batch_size,
            batch_format="pyarrow",
            num_cpus=self.actor_num_cpus,
            **extra,
        )

    # -- driver ------------------------------------------------------------------------
    async def astream(self, queries: Iterable[Any], *, skip: Container[str] = ()) -> AsyncIterator[BatchResult]:
        """Rank every query (skipping ids in ``skip``); yield results as they finish.

        Same errors as :meth:`LocalEngine.astream`.
        """
        self.input_qids = set()
        source = iter(iter_indexed(queries, skip, self.input_qids))
        first = next(source, None)
        if first is None:
            return
        if self.split == "blocks":
            q0 = first[1]
            a = [request_key(r.messages, r.params) for r in first_round(self.ranker, q0.query, list(q0.candidates))]
            b = [request_key(r.messages, r.params) for r in first_round(self.ranker, q0.query, list(q0.candidates))]
            if a != b:
                raise BatchError(
                    "the ranker builds different requests for the same query on every call "
                    "(JointRank with seed=None?): the Ray engine's block rows need a fixed seed"
                )
        # Ray starts (processes, agents: seconds) while this thread reads the input
        init = asyncio.get_running_loop().run_in_executor(None, self._init)
        ray = None
        try:
            items = [first, *source]
            rows = [{"qid": q.qid, "query": q.query, "cands": _cands_json(q)} for _, q in items]
            ray = await init
            ds = self._dataset(ray, rows)
            del rows
            async for res in self._drive(ds, items):
                yield res
        finally:
            if ray is None:
                with contextlib.suppress(BaseException):
                    ray = await init  # the input failed while Ray was starting
            if self._owns_ray and ray is not None:
                ray.shutdown()
                self._owns_ray = False

    async def _drive(self, ds: Any, items: list[tuple[int, BatchQuery]]) -> AsyncIterator[BatchResult]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        inbox: deque[tuple[str, Any]] = deque()
        stop = threading.Event()

        def post(kind: str, payload: Any) -> None:
            inbox.append((kind, payload))
            wake.set()

        def pump() -> None:
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                    if stop.is_set():
                        return
                    rows = batch.to_pylist()
                    loop.call_soon_threadsafe(post, "rows", rows)
                loop.call_soon_threadsafe(post, "end", None)
            except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                try:
                    loop.call_soon_threadsafe(post, "error", exc)
                except RuntimeError:
                    pass  # the loop is gone: the batch was stopped

        pending: dict[str, tuple[int, BatchQuery]] = {q.qid: (i, q) for i, q in items}
        thread = threading.Thread(target=pump, name="rerank-rag-ray-pump", daemon=True)
        thread.start()
        blocks = self.split == "blocks"
        live = None
        if blocks:
            live = CappedLLM(llm_of(self.ranker), self.actor_cap, on_change=wake.set)
            self._live = live
        answers: dict[str, dict[int, tuple[str, Any]]] = defaultdict(dict)
        tasks: dict[asyncio.Task[BatchResult], str] = {}
        finished: deque[asyncio.Task[BatchResult]] = deque()
        ended = False

        def on_done(t: asyncio.Task[BatchResult]) -> None:
            finished.append(t)
            wake.set()

        try:
            while True:
                if live is not None and live.fatal is not None:
                    raise live.fatal
                while inbox:
                    kind, payload = inbox.popleft()
                    if kind == "error":
                        raise BatchError(f"the Ray pipeline failed: {type(payload).__name__}: {payload}") from payload
                    if kind == "end":
                        ended = True
                        continue
                    for row in payload:
                        qid = row["qid"]
                        if qid not in pending:
                            continue  # a duplicate (a retried task) of a finished query
                        if blocks:
                            self._absorb_block_row(row, answers, pending, tasks, on_done, live)
                        else:
                            res = self._query_row(row, pending)
                            self.done += 1
                            yield res
                while finished:
                    t = finished.popleft()
                    qid = tasks.pop(t)
                    exc = t.exception()
                    if exc is not None:
                        raise query_failed(qid, exc)
                    res = t.result()
                    self.done += 1
                    yield res
                self.running = len(tasks)
                if ended and not tasks and not finished and not inbox:
                    break
                wake.clear()
                if not inbox and not finished:
                    await wake.wait()
            if pending:
                raise BatchError(f"the Ray pipeline returned no result for {len(pending)} queries (e.g. {next(iter(pending))!r})")
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if live is not None:
                self.driver_calls = live.calls
                self.calls += live.calls
                self._live = None
            await loop.run_in_executor(None, thread.join, 5.0)

    def _absorb_block_row(
        self,
        row: dict[str, Any],
        answers: dict[str, dict[int, tuple[str, Any]]],
        pending: dict[str, tuple[int, BatchQuery]],
        tasks: dict[asyncio.Task[BatchResult], str],
        on_done: Any,
        live: Any,
    ) -> None:
        qid = row["qid"]
        if row["k"] >= 0:
            outcome = outcome_from_json(json.loads(row["out"]))
            if isinstance(outcome, LLMError) and is_permanent(outcome):
                raise outcome
            got = answers[qid]
            if row["k"] not in got:
                got[row["k"]] = (row["key"], outcome)
                self.calls += 1
                if not isinstance(outcome, LLMError):
                    self.tokens += outcome.prompt_tokens + outcome.completion_tokens
            if len(got) < row["n"]:
                return
        index, q = pending.pop(qid)
        got = answers.pop(qid, {})
        replay: dict[str, list[Any]] = defaultdict(list)
        for k in sorted(got):
            key, outcome = got[k]
            replay[key].append(outcome)
        task = asyncio.get_running_loop().create_task(self._aggregate(index, q, replay, live))
        tasks[task] = qid
        task.add_done_callback(on_done)

    async def _aggregate(self, index: int, q: BatchQuery, answers: dict[str, list[Any]], live: Any) -> BatchResult:
        replay = ReplayLLM(answers, live=live)
        ranking = await with_backend(self.ranker, replay).arank(q.query, list(q.candidates), top_n=self.top_n)
        if replay.unused():
            raise BatchError(
                "the driver's requests differ from the ones the Ray workers answered "
                "(a ranker whose plan is not deterministic?)"
            )
        return _result(index, q, ranking)

    def _query_row(self, row: dict[str, Any], pending: dict[str, tuple[int, BatchQuery]]) -> BatchResult:
        qid = row["qid"]
        if row["error"]:
            data = json.loads(row["error"])
            if not data.get("transient", True):
                raise outcome_from_json(data)
            err = BatchError(f"query {qid!r} could not be ranked: {data.get('message')}")
            raise err
        index, q = pending.pop(qid)
        ranking = _ranking_from_json(row["result"])
        self.calls += ranking.usage.llm_calls
        self.tokens += ranking.usage.total_tokens
        return _result(index, q, ranking)
