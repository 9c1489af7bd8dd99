"""Pipelines: a ranker (and its one shared LLM client) behind a ``model`` name.

A :class:`Pipeline` is built from a :class:`~rerank_rag.serve.PipelineSpec` when the
service starts: the ranker is constructed, a local scorer's model is loaded (in a
worker thread), and an LLM pipeline gets **one** :class:`~rerank_rag.llm.
OpenAICompatibleLLM` whose ``max_concurrency`` bounds its calls across all requests.
A local llama.cpp model (``llm.local``) starts on the first request that needs it and
stops with the service.

Rankings run through the core's ``arank``: LLM calls are async, and a pointwise scorer
runs its CPU work in a worker thread (``ascore``), so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .._types import Ranking
from ._config import ConfigError, PipelineSpec

__all__ = ["Pipeline", "RANKERS", "build_cache"]

log = logging.getLogger("rerank_rag.serve")


def _scorer_pipeline(scorer_path: str) -> Callable[[Mapping[str, Any], Any], Any]:
    def build(options: Mapping[str, Any], llm: Any) -> Any:
        from ..pointwise import PointwiseRanker

        module, _, cls = scorer_path.rpartition(".")
        scorer = getattr(importlib.import_module(module), cls)(**options)
        return PointwiseRanker(scorer)

    return build


def _llm_pipeline(ranker_path: str) -> Callable[[Mapping[str, Any], Any], Any]:
    def build(options: Mapping[str, Any], llm: Any) -> Any:
        module, _, cls = ranker_path.rpartition(".")
        return getattr(importlib.import_module(module), cls)(llm, **options)

    return build


#: Bundled ranker names -> (needs an LLM, builder(options, llm) -> ranker).
RANKERS: dict[str, tuple[bool, Callable[[Mapping[str, Any], Any], Any]]] = {
    "minilm": (False, _scorer_pipeline("rerank_rag.pointwise.MiniLMScorer")),
    "bm25": (False, _scorer_pipeline("rerank_rag.pointwise.BM25Scorer")),
    "cross-encoder": (False, _scorer_pipeline("rerank_rag.pointwise.CrossEncoderScorer")),
    "bi-encoder": (False, _scorer_pipeline("rerank_rag.pointwise.BiEncoderScorer")),
    "listwise": (True, _llm_pipeline("rerank_rag.listwise.ListwiseRanker")),
    "jointrank": (True, _llm_pipeline("rerank_rag.jointrank.JointRanker")),
    "llm-pointwise": (True, _llm_pipeline("rerank_rag.pointwise.LLMPointwiseRanker")),
    "pairwise": (True, _llm_pipeline("rerank_rag.pairwise.PairwiseRanker")),
    "setwise": (True, _llm_pipeline("rerank_rag.setwise.SetwiseRanker")),
    "tournament": (True, _llm_pipeline("rerank_rag.tournament.TourRanker")),
    "tdpart": (True, _llm_pipeline("rerank_rag.tdpart.TDPartRanker")),
}

_SCORER_CONCURRENCY = 2


def build_cache(cache: Mapping[str, Any] | None) -> Any:
    """The shared response cache of ``[cache]`` (``None`` when not configured)."""
    if cache is None:
        return None
    from ..llm._cache import MemoryCache, SQLiteCache

    if cache["kind"] == "sqlite":
        return SQLiteCache(cache["path"])
    return MemoryCache(max_entries=cache.get("max_entries", 10_000))


class Pipeline:
    """A ranker behind a ``model`` name, with its concurrency limit and lifecycle."""

    def __init__(self, spec: PipelineSpec, *, cache: Any = None) -> None:
        self.spec = spec
        self.name = spec.name
        self._cache = cache
        self.ranker: Any = None
        self._llm: Any = None
        self._local: Any = None
        self._local_lock: asyncio.Lock | None = None
        self.needs_llm = False
        factory = RANKERS.get(spec.ranker)
        if factory is None:
            if ":" not in spec.ranker:
                raise ConfigError(
                    f"pipeline {spec.name!r}: unknown ranker {spec.ranker!r}; use one of "
                    f"{', '.join(RANKERS)} or 'package.module:factory'"
                )
            self.needs_llm = spec.llm is not None
        else:
            self.needs_llm = factory[0]
            if self.needs_llm and spec.llm is None:
                raise ConfigError(f"pipeline {spec.name!r}: ranker {spec.ranker!r} needs an [llm] table")
            if not self.needs_llm and spec.llm is not None:
                raise ConfigError(f"pipeline {spec.name!r}: ranker {spec.ranker!r} takes no llm")
        limit = spec.concurrency
        if limit is None and not self.needs_llm:
            limit = _SCORER_CONCURRENCY
        self._slots = asyncio.Semaphore(limit) if limit else None

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, ranker={self.spec.ranker!r})"

    # -- lifecycle ---------------------------------------------------------------------

    def check(self) -> None:
        """Fail fast on what would fail at startup: an unset API-key variable."""
        if self.spec.llm is not None:
            self.spec.llm.api_key()

    def _make_llm(self) -> Any:
        llm = self.spec.llm
        assert llm is not None
        if llm.local is not None:
            return None  # started on first use (see _ensure_local)
        from ..llm._openai import OpenAICompatibleLLM

        return OpenAICompatibleLLM(
            llm.model or "",
            base_url=llm.base_url,
            api_key=llm.api_key(),
            max_concurrency=llm.max_concurrency,
            timeout=llm.timeout,
            max_retries=llm.max_retries,
            cache=self._cache if llm.cache else None,
        )

    def _build_ranker(self, llm: Any) -> Any:
        spec = self.spec
        try:
            factory = RANKERS.get(spec.ranker)
            if factory is not None:
                return factory[1](spec.options, llm)
            module, _, attr = spec.ranker.partition(":")
            fn = getattr(importlib.import_module(module), attr)
            return fn(llm=llm, **spec.options)
        except TypeError as exc:  # a wrong option name or type
            raise ConfigError(f"pipeline {spec.name!r}: {exc}") from exc

    def start(self) -> None:
        """Build the ranker and load a local scorer's model (blocking: run in a thread).

        An LLM pipeline on the local llama.cpp model builds its ranker when the model
        has started, on the first request.
        """
        if self.needs_llm:
            self._llm = self._make_llm()
            if self._llm is None:  # local model: later
                return
        self.ranker = self._build_ranker(self._llm)
        warm = getattr(self.ranker, "warm_up", None)
        if not callable(getattr(self.ranker, "arank", None)):
            raise ConfigError(
                f"pipeline {self.name!r}: {type(self.ranker).__name__} has no arank(query, "
                "documents, top_n) method (see rerank_rag.Ranker)"
            )
        if callable(warm):
            warm()

    async def _ensure_local(self) -> None:
        if self.ranker is not None:
            return
        if self._local_lock is None:
            self._local_lock = asyncio.Lock()
        async with self._local_lock:
            if self.ranker is not None:
                return
            from ..local._server import LocalLLMServer

            llm = self.spec.llm
            assert llm is not None and llm.local is not None
            server = LocalLLMServer(llm.local)
            log.info("pipeline %s: starting the local model %s", self.name, llm.local)
            await asyncio.to_thread(server.start)
            self._local = server
            self._llm = server.make_llm(
                max_concurrency=llm.max_concurrency,
                timeout=llm.timeout,
                max_retries=llm.max_retries,
                cache=self._cache if llm.cache else None,
            )
            self.ranker = self._build_ranker(self._llm)

    async def aclose(self) -> None:
        """Close the LLM client and stop a local model server."""
        llm, self._llm = self._llm, None
        aclose = getattr(llm, "aclose", None)
        if callable(aclose):
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - closing must not mask the shutdown
                log.debug("pipeline %s: closing the LLM client failed", self.name, exc_info=True)
        local, self._local = self._local, None
        if local is not None:
            await asyncio.to_thread(local.stop)

    # -- ranking -----------------------------------------------------------------------

    async def rank(self, query: str, texts: list[str], top_n: int | None) -> Ranking:
        """Rank ``texts`` for ``query`` (``arank``), within the pipeline's concurrency."""
        if self.ranker is None:
            await self._ensure_local()
        if self._slots is None:
            return await self.ranker.arank(query, texts, top_n)
        async with self._slots:
            return await self.ranker.arank(query, texts, top_n)

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` shows for this pipeline (no secrets)."""
        llm = self.spec.llm
        out: dict[str, Any] = {
            "id": self.name,
            "object": "model",
            "owned_by": "rerank-rag",
            "ranker": self.spec.ranker,
            "description": self.spec.description,
        }
        if llm is not None:
            out["llm"] = {"local": llm.local} if llm.local else {"base_url": llm.base_url, "model": llm.model}
        return out
