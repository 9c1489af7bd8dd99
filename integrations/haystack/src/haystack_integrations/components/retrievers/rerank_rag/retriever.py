"""A Haystack component for question decomposition + retrieval + merge + rerank."""

# No `from __future__ import annotations` here: Haystack 2.x takes the socket types
# from the run() annotations and cannot resolve strings.

import dataclasses
import inspect
import logging
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.serialization import component_to_dict
from haystack.utils import deserialize_chatgenerator_inplace as _deserialize_component

from haystack_integrations.components.rankers.rerank_rag._llm import (
    Lifecycle,
    llm_from_dict,
    llm_to_dict,
    parent_span,
    traced,
)
from haystack_integrations.components.rankers.rerank_rag.ranker import (
    DEFAULT_TOP_K,
    _Ranker,
    check_top_k,
)
from rerank_rag import Candidate

__all__ = ["RerankRagDecomposeRetriever"]

logger = logging.getLogger(__name__)


@component
class RerankRagDecomposeRetriever(Lifecycle):
    """Question decomposition + retrieval per sub-question + merge + rerank.

    The LLM (``chat_generator`` or ``llm``, as in the rankers) splits the query into at
    most ``max_subquestions`` sub-questions; the query and each sub-question are sent to
    ``retriever`` (any Haystack retriever component taking ``query`` and ``top_k``, e.g.
    ``InMemoryBM25Retriever``), ``k`` documents each, concurrently; the de-duplicated
    pool (``merge``: "union", "interleave" or "rrf") is reranked against the *original*
    query by ``ranker`` (a ``RerankRag*Ranker`` component, whose ``score_threshold`` and
    ``meta_fields_to_embed`` apply too, or a core ranker; ``None`` keeps the merged order)
    and the best ``top_k`` are returned with the rerank score in ``Document.score``.
    ``top_k=None`` takes the ranker component's ``top_k`` (10 without one); a ``top_k``
    given here must agree with a ranker ``top_k`` other than the default 10. An empty
    query returns the retriever's documents unranked, with a warning.
    See :class:`rerank_rag.DecomposeRetrieveRerank`.
    """

    def __init__(
        self, retriever: Any, llm: Any = None, ranker: Any = None, *, chat_generator: Any = None,
        k: int = 10, top_k: int | None = None, merge: str = "union", max_subquestions: int = 5,
        strict: bool = False,
    ) -> None:
        from rerank_rag import Decomposer

        check_top_k(top_k)
        if not callable(getattr(retriever, "run", None)):
            raise TypeError("retriever must be a Haystack retriever component with run(query=...)")
        is_component = isinstance(ranker, _Ranker)
        theirs = ranker.top_k if is_component and ranker.top_k != DEFAULT_TOP_K else None
        if top_k is not None and theirs is not None and top_k != theirs:
            raise ValueError(f"conflicting top_k: {top_k} here, {theirs} on the ranker; set it in "
                             "one place (top_k=None takes the ranker's)")
        self.retriever, self.ranker = retriever, ranker
        self.llm, self.chat_generator = llm, chat_generator
        self.k, self.top_k, self.merge = k, top_k, merge
        self.max_subquestions, self.strict = max_subquestions, strict
        default = ranker.top_k if is_component else DEFAULT_TOP_K
        self._top_k = top_k if top_k is not None else default
        self._text = ranker.text if is_component else (lambda d: d.content or "")
        self._warm = False
        self._takes_k = "top_k" in inspect.signature(retriever.run).parameters
        model = _Ranker._model(llm, chat_generator)
        self._decomposer = Decomposer(traced(model), max_subquestions=max_subquestions,
                                      strict=strict)
        self._core = getattr(ranker, "ranker", ranker)
        self._pipeline(self._top_k)  # validate k / merge now

    def _candidates(self, documents: list[Document]) -> list[Candidate]:
        # The source document travels with its candidate: results map back to it exactly
        # (never by text), also after merging and de-duplication.
        return [Candidate(text=self._text(d), id=d.id, score=d.score, metadata={"_source": d})
                for d in documents]

    def _retrieve(self, q: str, k: int) -> list[Candidate]:
        out = self.retriever.run(query=q, **({"top_k": k} if self._takes_k else {}))
        return self._candidates(out["documents"])

    async def _aretrieve(self, q: str, k: int) -> list[Candidate]:
        out = await self.retriever.run_async(query=q, **({"top_k": k} if self._takes_k else {}))
        return self._candidates(out["documents"])

    def _pipeline(self, top_k: int | None) -> Any:
        from rerank_rag import DecomposeRetrieveRerank
        from rerank_rag.retrievers import Retriever

        aretrieve = self._aretrieve if hasattr(self.retriever, "run_async") else None
        return DecomposeRetrieveRerank(
            Retriever(self._retrieve, aretrieve), self._core, decomposer=self._decomposer,
            k=self.k, merge=self.merge, strict=self.strict, top_n=top_k,
        )

    def _parts(self) -> tuple[Any, ...]:
        return (self.retriever, self.ranker, self.chat_generator if self.chat_generator is not None
                else self.llm)

    def _top(self, top_k: int | None) -> int | None:
        check_top_k(top_k)
        return self._top_k if top_k is None else top_k

    def _output(self, result: Any, top_k: int | None) -> dict[str, list[Document]]:
        docs = [c.metadata["_source"] for c in result.candidates]
        if isinstance(self.ranker, _Ranker) and result.ranking.order:  # threshold, copies
            ranking = dataclasses.replace(result.ranking, order=tuple(range(len(docs))),
                                          scores=tuple(result.scores),
                                          relevance=_cut(result.ranking, len(docs)))
            return {"documents": self.ranker.select(docs, ranking, top_k)}
        return {"documents": [dataclasses.replace(d, score=s, meta=dict(d.meta))
                              for d, s in zip(docs, result.scores, strict=True)][:top_k]}

    def _unranked(self, docs: list[Document], top_k: int | None) -> dict[str, list[Document]]:
        logger.warning("RerankRagDecomposeRetriever got an empty query: returning the "
                       "retriever's documents unranked")
        return {"documents": docs[:top_k]}

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        """Decompose, retrieve, merge and rerank; returns at most ``top_k`` documents."""
        k = self._top(top_k)
        if not query.strip():
            return self._unranked([c.metadata["_source"] for c in self._retrieve(query, self.k)], k)
        with parent_span():
            return self._output(self._pipeline(k).run(query), k)

    @component.output_types(documents=list[Document])
    async def run_async(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        """Async twin of :meth:`run`."""
        k = self._top(top_k)
        if not query.strip():
            cands = await self._aretrieve(query, self.k) if hasattr(self.retriever, "run_async") \
                else self._retrieve(query, self.k)
            return self._unranked([c.metadata["_source"] for c in cands], k)
        with parent_span():
            return self._output(await self._pipeline(k).arun(query), k)

    def to_dict(self) -> dict[str, Any]:
        """Configuration only: nested components by ``component_to_dict``, the LLM by
        its config (never an API key)."""
        return default_to_dict(
            self, retriever=component_to_dict(obj=self.retriever, name="retriever"),
            llm=llm_to_dict(self.llm),
            chat_generator=llm_to_dict(self.chat_generator, "chat_generator"),
            ranker=None if self.ranker is None else component_to_dict(obj=self.ranker,
                                                                      name="ranker"),
            k=self.k, top_k=self.top_k, merge=self.merge,
            max_subquestions=self.max_subquestions, strict=self.strict,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RerankRagDecomposeRetriever":
        params = dict(data.get("init_parameters", {}))  # the caller's dict is not mutated
        data = {**data, "init_parameters": params}
        for key in ("retriever", "ranker"):
            if isinstance(params.get(key), dict):
                _deserialize_component(params, key=key)
        for key in ("llm", "chat_generator"):
            llm_from_dict(params, key)
        return default_from_dict(cls, data)


def _cut(ranking: Any, n: int) -> tuple[float, ...] | None:
    relevance = getattr(ranking, "relevance", None)
    return None if relevance is None else tuple(relevance[:n])
