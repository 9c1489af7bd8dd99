"""LangChain retrievers: a compressor over any base retriever, and decomposition.

Both depend on ``langchain-core`` only (``ContextualCompressionRetriever`` lives in
``langchain-classic``) and follow LangChain's retriever conventions: ``k`` is the number
of documents returned, set at construction or per call (``invoke(query, k=1)``); other
``invoke`` keyword arguments go to the base retriever. Child runs (base retriever, LLM
calls) nest under the retriever's run.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import set_config_context
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from rerank_rag import Candidate

from .compressors import RerankRagCompressor, as_ranker, unranked, with_score

__all__ = ["RerankingRetriever", "DecomposeRetriever"]

_SOURCE = "_langchain_rerank_rag_source"


def _count(name: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _explicit(compressor: Any, field: str) -> Any:
    """The value of ``field`` on one of our compressors if it was set explicitly."""
    if isinstance(compressor, RerankRagCompressor) and field in compressor.model_fields_set:
        return getattr(compressor, field)
    return None


def _agree(ours: Any, theirs: Any, what: str) -> None:
    if ours is not None and theirs is not None and ours != theirs:
        raise ValueError(
            f"conflicting {what}: the retriever says {ours!r}, its reranker says {theirs!r}; "
            "set it in one place (the retriever takes the reranker's when unset)"
        )


class RerankingRetriever(BaseRetriever):
    """Retrieve with ``base_retriever``, then rerank with ``base_compressor``.

    A core-only equivalent of ``ContextualCompressionRetriever`` with native async.
    ``k``: documents returned (``None``: the compressor's ``top_n``); ``invoke(q, k=...)``
    overrides it per call, other ``invoke`` keyword arguments reach the base retriever.
    Works with any LangChain compressor (the result is cut to ``k``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    base_retriever: Runnable[str, list[Document]]
    base_compressor: BaseDocumentCompressor
    k: int | None = Field(default=None, gt=0, description="documents returned")

    def model_post_init(self, context: Any, /) -> None:
        _agree(self.k, _explicit(self.base_compressor, "top_n"), "number of results (k / top_n)")

    def _split(self, kwargs: dict[str, Any]) -> int | None:
        return _count("k", kwargs.pop("k", None)) or self.k

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = self._split(kwargs)
        cfg = {"callbacks": run_manager.get_child()}
        docs = self.base_retriever.invoke(query, config=cfg, **kwargs)
        comp, cb = self.base_compressor, run_manager.get_child()
        if isinstance(comp, RerankRagCompressor):
            return comp.compress(docs, query, cb, top_n=k)
        return list(comp.compress_documents(docs, query, callbacks=cb))[:k]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = self._split(kwargs)
        cfg = {"callbacks": run_manager.get_child()}
        docs = await self.base_retriever.ainvoke(query, config=cfg, **kwargs)
        comp, cb = self.base_compressor, run_manager.get_child()
        if isinstance(comp, RerankRagCompressor):
            return await comp.acompress(docs, query, cb, top_n=k)
        return list(await comp.acompress_documents(docs, query, callbacks=cb))[:k]


def _candidates(docs: list[Document]) -> list[Candidate]:
    # The source document travels with its candidate: results map back to it exactly,
    # never by text, even after merging and de-duplication.
    return [Candidate(text=d.page_content, id=d.id, metadata={_SOURCE: d}) for d in docs]


class DecomposeRetriever(BaseRetriever):
    """Question decomposition + retrieval per sub-question + merge + rerank.

    ``llm`` splits the question into at most ``max_subquestions`` sub-questions; the
    original question and each sub-question retrieve ``fetch_k`` documents from
    ``base_retriever`` (concurrently); the de-duplicated pool (``merge``: "union",
    "interleave" or "rrf") is reranked against the *original* question by ``reranker``
    (one of this package's compressors, any rerank-rag ranker or ``Scorer``; ``None``
    keeps the merged order) and the best ``k`` are returned, score in
    ``metadata[score_key]``. ``k`` and ``score_key`` default to the reranker's
    ``top_n`` / ``score_key`` (``k``: 4 without one, like LangChain's vector-store
    retrievers); values set on both must agree. ``invoke(q, k=..., fetch_k=...)``
    overrides them per call. See :class:`rerank_rag.DecomposeRetrieveRerank`.

    Changed in 0.2: ``k`` is the number of results (LangChain's convention), the depth
    per query is ``fetch_k``; ``top_k`` is a deprecated alias of ``k``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    base_retriever: Runnable[str, list[Document]]
    llm: Any = Field(exclude=True, description="rerank-rag backend or LangChain chat model")
    reranker: Any = Field(default=None, exclude=True, description="compressor, ranker or Scorer")
    k: int | None = Field(default=None, gt=0, description="documents returned")
    fetch_k: int = Field(default=10, gt=0, description="documents retrieved per query")
    merge: str = "union"
    max_subquestions: int = 5
    strict: bool = False
    score_key: str | None = None
    _decomposer: Any = PrivateAttr(default=None)
    _ranker: Any = PrivateAttr(default=None)
    _k: int = PrivateAttr(default=4)
    _key: str = PrivateAttr(default="relevance_score")

    @model_validator(mode="before")
    @classmethod
    def _top_k_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "top_k" in data:
            warnings.warn("DecomposeRetriever(top_k=...) is deprecated: use k (the number of "
                          "results); the depth per query is now fetch_k", DeprecationWarning,
                          stacklevel=4)
            data = dict(data)
            top_k = data.pop("top_k")
            _agree(data.get("k"), top_k, "number of results (k / deprecated top_k; the "
                   "depth per query is now fetch_k)")
            data["k"] = top_k
        return data

    def model_post_init(self, context: Any, /) -> None:
        from rerank_rag import Decomposer

        r = self.reranker
        _agree(self.k, _explicit(r, "top_n"), "number of results (k / the reranker's top_n)")
        _agree(self.score_key, _explicit(r, "score_key"), "score_key")
        if isinstance(r, RerankRagCompressor):
            self._ranker, default_k, self._key = r.ranker, r.top_n, r.score_key
        else:
            self._ranker, default_k = (None if r is None else as_ranker(r)), 4
        self._k = self.k or default_k
        self._key = self.score_key or self._key
        self._decomposer = Decomposer(self.llm, max_subquestions=self.max_subquestions,
                                      strict=self.strict)
        self._pipeline(lambda q, k: [], None, self._k, self.fetch_k)  # validate merge now

    def _pipeline(self, sync_fn: Any, async_fn: Any, k: int | None, fetch_k: int) -> Any:
        # A thin orchestrator around the prebuilt decomposer and ranker, made per call so
        # the base retriever receives this run's callbacks in every worker thread.
        from rerank_rag import DecomposeRetrieveRerank
        from rerank_rag.retrievers import Retriever

        return DecomposeRetrieveRerank(
            Retriever(sync_fn, async_fn), self._ranker, decomposer=self._decomposer,
            k=fetch_k, merge=self.merge, strict=self.strict, top_n=k,
        )

    def _args(self, kwargs: dict[str, Any]) -> tuple[int | None, int, dict[str, Any]]:
        k = _count("k", kwargs.pop("k", None)) or self._k
        fetch_k = _count("fetch_k", kwargs.pop("fetch_k", None)) or self.fetch_k
        if isinstance(self.base_retriever, BaseRetriever):  # LangChain: k = results wanted
            kwargs = {"k": fetch_k, **kwargs}
        return k, fetch_k, kwargs

    def _documents(self, result: Any) -> list[Document]:
        return [
            with_score(c.metadata[_SOURCE], s, self._key)
            for c, s in zip(result.candidates, result.scores, strict=True)
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, fetch_k, extra = self._args(kwargs)

        def retrieve(q: str, _: int) -> list[Candidate]:
            cfg = {"callbacks": run_manager.get_child()}
            return _candidates(self.base_retriever.invoke(q, config=cfg, **extra))

        if not query.strip():
            docs = [c.metadata[_SOURCE] for c in retrieve(query, 0)]
            return unranked(docs, k, "DecomposeRetriever")
        with set_config_context({"callbacks": run_manager.get_child()}) as ctx:
            return self._documents(ctx.run(self._pipeline(retrieve, None, k, fetch_k).run, query))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, fetch_k, extra = self._args(kwargs)

        async def aretrieve(q: str, _: int) -> list[Candidate]:
            cfg = {"callbacks": run_manager.get_child()}
            return _candidates(await self.base_retriever.ainvoke(q, config=cfg, **extra))

        if not query.strip():
            docs = await aretrieve(query, 0)
            return unranked([c.metadata[_SOURCE] for c in docs], k, "DecomposeRetriever")
        pipeline = self._pipeline(None, aretrieve, k, fetch_k)
        with set_config_context({"callbacks": run_manager.get_child()}) as ctx:
            return self._documents(await asyncio.create_task(pipeline.arun(query), context=ctx))
