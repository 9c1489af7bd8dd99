"""LangChain document compressors backed by rerank-rag rankers.

Each compressor is plain configuration (pydantic fields) around a core ranker that is
built once at construction and kept in a private attribute. Documents are mapped to
candidates and back **by position**; the returned documents are copies (``id`` kept,
caller's documents never mutated) with the rerank score in ``metadata["relevance_score"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, Literal

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.language_models import BaseLanguageModel
from pydantic import ConfigDict, Field, PrivateAttr

from rerank_rag import Candidate, Ranking
from rerank_rag.llm import as_backend

__all__ = ["RerankRagCompressor", "ListwiseRerank", "JointRankRerank", "PointwiseRerank"]

#: LangChain callbacks of the run in progress; read by :class:`_CallbacksBackend`.
_CALLBACKS: ContextVar[Callbacks] = ContextVar("langchain_rerank_rag_callbacks", default=None)


class _CallbacksBackend:
    """Wraps a LangChain model's backend so each call carries the current run's
    callbacks: the chat-model runs nest under the retriever / compressor run."""

    def __init__(self, llm: BaseLanguageModel) -> None:
        self._inner = as_backend(llm)

    def __getattr__(self, name: str) -> Any:  # max_concurrency, cache_identity, ...
        if name.startswith("__") or name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        callbacks = _CALLBACKS.get()
        return params if callbacks is None else {**params, "callbacks": callbacks}

    def complete(self, messages: Any, **params: Any) -> Any:
        return self._inner.complete(messages, **self._params(params))

    async def acomplete(self, messages: Any, **params: Any) -> Any:
        return await self._inner.acomplete(messages, **self._params(params))


def backend_for(llm: Any) -> Any:
    """Our backend for ``llm``: LangChain models get callback forwarding; anything else
    is checked by :func:`rerank_rag.llm.as_backend` and passed through."""
    if isinstance(llm, BaseLanguageModel):
        return _CallbacksBackend(llm)
    return as_backend(llm)


def to_candidates(documents: Sequence[Document]) -> list[Candidate]:
    """One candidate per document, same positions (the text is ``page_content``)."""
    return [Candidate(text=d.page_content, id=d.id) for d in documents]


def with_score(doc: Document, score: float, key: str) -> Document:
    """A copy of ``doc`` (same ``id``) whose new metadata dict has ``key: score``."""
    return doc.model_copy(update={"metadata": {**doc.metadata, key: score}})


def select(documents: Sequence[Document], ranking: Ranking, key: str) -> list[Document]:
    return [with_score(documents[i], s, key) for i, s in ranking]


class RerankRagCompressor(BaseDocumentCompressor):
    """Base class: reranks documents with a core ranker built once from the fields.

    ``compress_documents`` / ``acompress_documents`` return at most ``top_n``
    documents, best first. The LLM calls of a LangChain chat model receive the
    ``callbacks`` given here, so they nest under the calling retriever run.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    top_n: int | None = Field(default=5, gt=0, description="Documents to keep (None: all).")
    score_key: str = Field(default="relevance_score", description="Metadata key of the score.")
    _ranker: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        self._ranker = self._build()

    def _build(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def ranker(self) -> Any:
        """The core rerank-rag ranker (``rank`` / ``arank``)."""
        return self._ranker

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        docs = list(documents)
        token = _CALLBACKS.set(callbacks)
        try:
            ranking = self._ranker.rank(query, to_candidates(docs), top_n=self.top_n)
        finally:
            _CALLBACKS.reset(token)
        return select(docs, ranking, self.score_key)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        docs = list(documents)
        token = _CALLBACKS.set(callbacks)
        try:
            ranking = await self._ranker.arank(query, to_candidates(docs), top_n=self.top_n)
        finally:
            _CALLBACKS.reset(token)
        return select(docs, ranking, self.score_key)


class ListwiseRerank(RerankRagCompressor):
    """Listwise LLM reranking (RankGPT-style sliding windows), see
    :class:`rerank_rag.ListwiseRanker`.

    **Score**: positional, ``1 - rank / n`` (1.0 for the best document); the order is
    what the LLM decided. ``llm``: a rerank-rag backend or a LangChain chat model.
    """

    llm: Any = Field(exclude=True, description="rerank-rag backend or LangChain chat model")
    prompt: Any = "rankgpt"
    mode: Literal["sliding", "single"] = "sliding"
    window_size: int = 20
    step: int = 10
    passes: int = 1
    max_passage_tokens: int | None = 300
    strict: bool = False

    def _build(self) -> Any:
        from rerank_rag import ListwiseRanker

        cfg = self.model_dump(exclude={"llm", "top_n", "score_key"})
        return ListwiseRanker(backend_for(self.llm), **cfg)


class JointRankRerank(RerankRagCompressor):
    """JointRank: overlapping blocks ranked in one parallel round, aggregated, see
    :class:`rerank_rag.JointRanker`.

    **Score**: the aggregator's value (PageRank by default) over the block comparisons.
    ``llm``: a rerank-rag backend, a LangChain chat model or a pointwise ``Scorer``.
    """

    llm: Any = Field(exclude=True, description="LLM or Scorer ranking each block")
    prompt: Any = "relevant-only"
    block_size: int = 20
    replicas: int = 4
    design: str = "auto"
    aggregator: str = "pagerank"
    seed: int = 0
    max_block_retries: int = 2
    max_passage_tokens: int | None = 300
    strict: bool = False

    def _build(self) -> Any:
        from rerank_rag import JointRanker

        cfg = self.model_dump(exclude={"llm", "top_n", "score_key"})
        block = self.llm if callable(getattr(self.llm, "score", None)) else backend_for(self.llm)
        return JointRanker(block, **cfg)


class PointwiseRerank(RerankRagCompressor):
    """Pointwise reranking: each document scored on its own, see
    :class:`rerank_rag.PointwiseRanker`.

    Give ``scorer`` (a ``Scorer`` object, or ``"minilm"`` / ``"bm25"``) or ``llm`` (yes/no
    first-token log-probabilities, :class:`rerank_rag.LLMPointwiseRanker`).
    **Score**: the scorer's raw score (cosine similarity for MiniLM, BM25, ...) or the
    LLM's probability of "yes".
    """

    scorer: Any = Field(default=None, exclude=True, description="Scorer, 'minilm' or 'bm25'")
    llm: Any = Field(default=None, exclude=True, description="LLM for yes/no scoring")
    batch_size: int = 32
    max_passage_tokens: int = 300
    strict: bool = False

    def _build(self) -> Any:
        from rerank_rag import LLMPointwiseRanker, PointwiseRanker

        if self.llm is not None:
            if self.scorer is not None:
                raise ValueError("give either scorer or llm, not both")
            return LLMPointwiseRanker(
                backend_for(self.llm), max_passage_tokens=self.max_passage_tokens, strict=self.strict
            )
        return PointwiseRanker(make_scorer(self.scorer), batch_size=self.batch_size)


def make_scorer(scorer: Any) -> Any:
    """A ``Scorer`` from a name (``"minilm"``, the default; ``"bm25"``) or an object."""
    from rerank_rag import BM25Scorer, MiniLMScorer

    names = {"minilm": MiniLMScorer, "bm25": BM25Scorer}
    if scorer is None or isinstance(scorer, str):
        key = (scorer or "minilm").lower()
        if key not in names:
            raise ValueError(f"unknown scorer {scorer!r}: use one of {sorted(names)} or a Scorer")
        return names[key]()
    if not callable(getattr(scorer, "score", None)):
        raise TypeError(f"scorer must have score(query, passages), got {type(scorer).__name__}")
    return scorer
