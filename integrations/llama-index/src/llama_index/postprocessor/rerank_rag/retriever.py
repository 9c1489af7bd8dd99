"""A LlamaIndex retriever for question decomposition + retrieval + merge + rerank."""

from __future__ import annotations

import contextvars
import warnings
from typing import Any

from llama_index.core import Settings
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rerank_rag import Candidate

from .base import RerankRagPostprocessor, as_ranker, node_text

__all__ = ["DecomposeRetriever"]

_UNSET: Any = object()


class DecomposeRetriever(BaseRetriever):
    """Question decomposition + retrieval per sub-question + merge + rerank.

    ``llm`` (default: ``Settings.llm``) splits the question into at most
    ``max_subquestions`` sub-questions; the question and each sub-question retrieve from
    ``retriever`` (concurrently, inside the caller's instrumentation span; the first
    ``k`` nodes of each are kept, so set the retriever's own top-k at least as high);
    the de-duplicated pool (``merge``: "union", "interleave" or "rrf") is reranked
    against the *original* question by ``reranker`` (one of this package's
    postprocessors, any rerank-rag ranker or ``Scorer``; ``None`` keeps the merged order)
    and the best ``top_n`` are returned as new ``NodeWithScore`` objects. ``top_n``
    defaults to the reranker's (10 without one); values set on both must agree.
    ``top_k`` is a deprecated alias of ``top_n``. See
    :class:`rerank_rag.DecomposeRetrieveRerank`.
    """

    def __init__(
        self,
        retriever: BaseRetriever,
        llm: Any = None,
        reranker: Any = None,
        *,
        k: int = 10,
        top_n: int | None = None,
        merge: str = "union",
        max_subquestions: int = 5,
        strict: bool = False,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        top_k: Any = _UNSET,
    ) -> None:
        from rerank_rag import Decomposer

        if top_k is not _UNSET:
            warnings.warn("DecomposeRetriever(top_k=...) is deprecated: use top_n",
                          DeprecationWarning, stacklevel=2)
            _agree(top_n, top_k, "top_n / deprecated top_k")
            top_n = top_k
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self._retriever = retriever
        if isinstance(reranker, RerankRagPostprocessor):
            theirs = reranker.top_n if "top_n" in reranker.model_fields_set else None
            _agree(top_n, theirs, "top_n (the retriever's and its reranker's)")
            self._ranker, self._mode = reranker.ranker, reranker.metadata_mode
            self._top_n = top_n if top_n is not None else reranker.top_n
        else:
            self._ranker = None if reranker is None else as_ranker(reranker)
            self._mode, self._top_n = MetadataMode.NONE, 10 if top_n is None else top_n
        llm = llm if llm is not None else Settings.llm
        self._decomposer = Decomposer(llm, max_subquestions=max_subquestions, strict=strict)
        self._settings = {"k": k, "merge": merge, "strict": strict}
        self._pipeline(lambda q, k: [], None)  # validate k / top_n / merge now

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagDecomposeRetriever"

    def _pipeline(self, sync_fn: Any, async_fn: Any) -> Any:
        from rerank_rag import DecomposeRetrieveRerank
        from rerank_rag.retrievers import Retriever

        return DecomposeRetrieveRerank(
            Retriever(sync_fn, async_fn), self._ranker, decomposer=self._decomposer,
            **self._settings, top_n=self._top_n,
        )

    def _candidates(self, nodes: list[NodeWithScore]) -> list[Candidate]:
        # The source NodeWithScore travels with its candidate: results map back to it
        # exactly (never by text), also after merging and de-duplication.
        return [
            Candidate(text=node_text(n, self._mode), id=n.node.node_id, score=n.score,
                      metadata={"_source": n})
            for n in nodes
        ]

    @staticmethod
    def _nodes(result: Any) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=c.metadata["_source"].node, score=s)
            for c, s in zip(result.candidates, result.scores, strict=True)
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # The sub-queries run in worker threads: each runs in a copy of this context, so
        # their spans and callback events nest under this retrieval.
        caller = contextvars.copy_context()

        def retrieve(q: str, _: int) -> list[Candidate]:
            return self._candidates(caller.copy().run(self._retriever.retrieve, q))

        return self._nodes(self._pipeline(retrieve, None).run(query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        async def aretrieve(q: str, _: int) -> list[Candidate]:
            return self._candidates(await self._retriever.aretrieve(q))

        return self._nodes(await self._pipeline(None, aretrieve).arun(query_bundle.query_str))


def _agree(ours: Any, theirs: Any, what: str) -> None:
    if ours is not None and theirs is not None and ours != theirs:
        raise ValueError(
            f"conflicting {what}: {ours!r} vs {theirs!r}; set it in one place (the retriever "
            "takes the reranker's when unset)"
        )
