"""A Haystack component for question decomposition + retrieval + merge + rerank."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.serialization import component_to_dict
from haystack.utils import deserialize_chatgenerator_inplace as _deserialize_component

from haystack_integrations.components.rankers.rerank_rag.ranker import (
    check_top_k,
    llm_from_dict,
    llm_to_dict,
)
from rerank_rag import Candidate

__all__ = ["RerankRagDecomposeRetriever"]


def _candidates(documents: list[Document]) -> list[Candidate]:
    # The source document travels with its candidate: results map back to it exactly
    # (never by text), also after merging and de-duplication.
    return [
        Candidate(text=d.content or "", id=d.id, score=d.score, metadata={"_source": d})
        for d in documents
    ]


def _rescored(doc: Document, score: float) -> Document:
    return dataclasses.replace(doc, score=score, meta=dict(doc.meta))


@component
class RerankRagDecomposeRetriever:
    """Question decomposition + retrieval per sub-question + merge + rerank.

    ``llm`` splits the query into at most ``max_subquestions`` sub-questions; the query
    and each sub-question are sent to ``retriever`` (any Haystack retriever component
    taking ``query`` and ``top_k``, e.g. ``InMemoryBM25Retriever``), ``k`` documents
    each, concurrently; the de-duplicated pool (``merge``: "union", "interleave" or
    "rrf") is reranked against the *original* query by ``ranker`` (one of the
    ``RerankRag*Ranker`` components; ``None`` keeps the merged order) and the best
    ``top_k`` are returned with the rerank score in ``Document.score``.
    See :class:`rerank_rag.DecomposeRetrieveRerank`.
    """

    def __init__(
        self, retriever: Any, llm: Any, ranker: Any = None, *, k: int = 10,
        top_k: int | None = 10, merge: str = "union", max_subquestions: int = 5,
        strict: bool = False,
    ) -> None:
        from rerank_rag import DecomposeRetrieveRerank, Decomposer
        from rerank_rag.retrievers import Retriever

        check_top_k(top_k)
        if not callable(getattr(retriever, "run", None)):
            raise TypeError("retriever must be a Haystack retriever component with run(query=...)")
        self.retriever, self.llm, self.ranker = retriever, llm, ranker
        self.k, self.top_k, self.merge = k, top_k, merge
        self.max_subquestions, self.strict = max_subquestions, strict
        self._warm = False
        takes_k = "top_k" in inspect.signature(retriever.run).parameters

        def retrieve(q: str, k: int) -> list[Candidate]:
            out = retriever.run(query=q, **({"top_k": k} if takes_k else {}))
            return _candidates(out["documents"])

        async def aretrieve(q: str, k: int) -> list[Candidate]:
            out = await retriever.run_async(query=q, **({"top_k": k} if takes_k else {}))
            return _candidates(out["documents"])

        self._pipeline = DecomposeRetrieveRerank(
            Retriever(retrieve, aretrieve if hasattr(retriever, "run_async") else None),
            getattr(ranker, "ranker", ranker),
            decomposer=Decomposer(llm, max_subquestions=max_subquestions, strict=strict),
            k=k, top_n=None, merge=merge, strict=strict,
        )

    def warm_up(self) -> None:
        """Warm up the wrapped retriever and ranker. Idempotent."""
        if not self._warm:
            for part in (self.retriever, self.ranker):
                fn = getattr(part, "warm_up", None)
                if callable(fn):
                    fn()
            self._warm = True

    def _output(self, result: Any, top_k: int | None) -> dict[str, list[Document]]:
        top_k = self.top_k if top_k is None else top_k
        check_top_k(top_k)
        pairs = list(zip(result.candidates, result.scores))[:top_k]
        return {"documents": [_rescored(c.metadata["_source"], s) for c, s in pairs]}

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        """Decompose, retrieve, merge and rerank; returns at most ``top_k`` documents."""
        check_top_k(top_k)
        return self._output(self._pipeline.run(query), top_k)

    @component.output_types(documents=list[Document])
    async def run_async(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        """Async twin of :meth:`run`."""
        check_top_k(top_k)
        return self._output(await self._pipeline.arun(query), top_k)

    def to_dict(self) -> dict[str, Any]:
        """Configuration only: nested components by ``component_to_dict``, the LLM by
        its config (never an API key)."""
        return default_to_dict(
            self, retriever=component_to_dict(obj=self.retriever, name="retriever"),
            llm=llm_to_dict(self.llm),
            ranker=None if self.ranker is None else component_to_dict(obj=self.ranker, name="ranker"),
            k=self.k, top_k=self.top_k, merge=self.merge,
            max_subquestions=self.max_subquestions, strict=self.strict,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RerankRagDecomposeRetriever:
        params = dict(data.get("init_parameters", {}))  # the caller's dict is not mutated
        data = {**data, "init_parameters": params}
        for key in ("retriever", "ranker"):
            if isinstance(params.get(key), dict):
                _deserialize_component(params, key=key)
        llm_from_dict(params)
        return default_from_dict(cls, data)
