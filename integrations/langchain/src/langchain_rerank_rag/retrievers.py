"""LangChain retrievers: a compressor over any base retriever, and decomposition.

Both depend on ``langchain-core`` only (``ContextualCompressionRetriever`` lives in
``langchain-classic``). Child runs (base retriever, LLM calls) nest under the
retriever's run.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

from rerank_rag import Candidate

from .compressors import _CALLBACKS, RerankRagCompressor, backend_for, with_score

__all__ = ["RerankingRetriever", "DecomposeRetriever"]

_SOURCE = "_langchain_rerank_rag_source"


class RerankingRetriever(BaseRetriever):
    """Retrieve with ``base_retriever``, then rerank with ``base_compressor``.

    A core-only equivalent of ``ContextualCompressionRetriever``: the async path is
    natively async (``ainvoke`` + ``acompress_documents``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    base_retriever: Runnable[str, list[Document]]
    base_compressor: BaseDocumentCompressor

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        docs = self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()})
        cb = run_manager.get_child()
        return list(self.base_compressor.compress_documents(docs, query, callbacks=cb))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        cfg = {"callbacks": run_manager.get_child()}
        docs = await self.base_retriever.ainvoke(query, config=cfg)
        cb = run_manager.get_child()
        return list(await self.base_compressor.acompress_documents(docs, query, callbacks=cb))


def _candidates(docs: list[Document]) -> list[Candidate]:
    # The source document travels with its candidate: results map back to it exactly,
    # never by text, even after merging and de-duplication.
    return [Candidate(text=d.page_content, id=d.id, metadata={_SOURCE: d}) for d in docs]


class DecomposeRetriever(BaseRetriever):
    """Question decomposition + retrieval per sub-question + merge + rerank.

    ``llm`` splits the question into at most ``max_subquestions`` sub-questions; the
    original question and each sub-question retrieve from ``base_retriever``
    (concurrently; the first ``k`` results of each are kept); the de-duplicated pool (``merge``: "union",
    "interleave" or "rrf") is reranked against the *original* question by ``reranker``
    (one of this package's compressors or any rerank-rag ranker; ``None`` keeps the
    merged order) and the best ``top_k`` are returned, score in
    ``metadata["relevance_score"]``. See :class:`rerank_rag.DecomposeRetrieveRerank`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    base_retriever: Runnable[str, list[Document]]
    llm: Any = Field(exclude=True, description="rerank-rag backend or LangChain chat model")
    reranker: Any = Field(default=None, exclude=True, description="compressor or ranker")
    k: int = Field(default=10, gt=0, description="documents kept per query (at most what "
                   "base_retriever returns)")
    top_k: int | None = Field(default=10, gt=0, description="documents returned")
    merge: str = "union"
    max_subquestions: int = 5
    strict: bool = False
    score_key: str = "relevance_score"
    _decomposer: Any = PrivateAttr(default=None)
    _ranker: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        from rerank_rag import Decomposer

        self._decomposer = Decomposer(
            backend_for(self.llm), max_subquestions=self.max_subquestions, strict=self.strict
        )
        r = self.reranker
        self._ranker = r.ranker if isinstance(r, RerankRagCompressor) else r
        self._pipeline(lambda q, k: [], None)  # validate merge / k / top_k now

    def _pipeline(self, sync_fn: Any, async_fn: Any) -> Any:
        # A thin orchestrator around the prebuilt decomposer and ranker, made per call so
        # the base retriever receives this run's callbacks in every worker thread.
        from rerank_rag import DecomposeRetrieveRerank
        from rerank_rag.retrievers import Retriever

        retriever = Retriever(sync_fn, async_fn)
        return DecomposeRetrieveRerank(
            retriever, self._ranker, decomposer=self._decomposer, k=self.k,
            top_n=self.top_k, merge=self.merge, strict=self.strict,
        )

    def _documents(self, result: Any) -> list[Document]:
        return [
            with_score(c.metadata[_SOURCE], s, self.score_key)
            for c, s in zip(result.candidates, result.scores)
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        def retrieve(q: str, k: int) -> list[Candidate]:
            cfg = {"callbacks": run_manager.get_child()}
            return _candidates(self.base_retriever.invoke(q, config=cfg))

        token = _CALLBACKS.set(run_manager.get_child())
        try:
            return self._documents(self._pipeline(retrieve, None).run(query))
        finally:
            _CALLBACKS.reset(token)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        async def aretrieve(q: str, k: int) -> list[Candidate]:
            cfg = {"callbacks": run_manager.get_child()}
            return _candidates(await self.base_retriever.ainvoke(q, config=cfg))

        token = _CALLBACKS.set(run_manager.get_child())
        try:
            return self._documents(await self._pipeline(None, aretrieve).arun(query))
        finally:
            _CALLBACKS.reset(token)
