"""LangChain document compressors backed by rerank-rag rankers.

:class:`RerankRagCompressor` wraps **any** core ranker (anything with ``rank`` /
``arank`` returning a :class:`rerank_rag.Ranking`, or a pointwise ``Scorer``); the named
classes are presets that build their ranker from plain pydantic fields. Documents are
mapped to candidates and back **by position**; the returned documents are copies
(``id`` kept, the caller's documents never mutated) with the rerank score in
``metadata["relevance_score"]``.

LLM calls nest under the caller's run: while a ranker runs, the compressor's
``callbacks`` are LangChain's child-run configuration (``set_config_context``), which
every LangChain model call inherits, including wrapped models (``with_retry()``,
``bind()``, ``with_config()``) and calls made from the rankers' worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables.config import set_config_context
from pydantic import ConfigDict, Field

from rerank_rag import Candidate, Ranking
from rerank_rag.adapters import (
    arank,
    as_ranker,
    checked_ranking,
    pointwise_ranker,
    wrap_or_build,
)

from .prompts import as_window_prompt

__all__ = [
    "RerankRagCompressor",
    "ListwiseRerank",
    "JointRankRerank",
    "PointwiseRerank",
    "as_ranker",
    "rank_in_context",
    "arank_in_context",
]

logger = logging.getLogger(__name__)


def rank_in_context(ranker: Any, query: str, cands: list[Candidate], top_n: int | None,
                    callbacks: Callbacks) -> Ranking:
    """``ranker.rank`` with ``callbacks`` as the child-run config of every LLM call."""
    if callbacks is None:
        return checked_ranking(ranker.rank(query, cands, top_n=top_n), len(cands))
    with set_config_context({"callbacks": callbacks}) as ctx:
        return checked_ranking(ctx.run(ranker.rank, query, cands, top_n=top_n), len(cands))


async def arank_in_context(ranker: Any, query: str, cands: list[Candidate], top_n: int | None,
                           callbacks: Callbacks) -> Ranking:
    """Async twin of :func:`rank_in_context` (``arank``, or ``rank`` in a thread)."""
    coro = arank(ranker, query, cands, top_n)
    if callbacks is None:
        return checked_ranking(await coro, len(cands))
    with set_config_context({"callbacks": callbacks}) as ctx:
        return checked_ranking(await asyncio.create_task(coro, context=ctx), len(cands))


def to_candidates(documents: Sequence[Document]) -> list[Candidate]:
    """One candidate per document, same positions (the text is ``page_content``)."""
    return [Candidate(text=d.page_content, id=d.id) for d in documents]


def with_score(doc: Document, score: float, key: str) -> Document:
    """A copy of ``doc`` (same ``id``) whose new metadata dict has ``key: score``."""
    return doc.model_copy(update={"metadata": {**doc.metadata, key: score}})


def unranked(documents: list[Document], top_n: int | None, who: str) -> list[Document]:
    """LangChain retrievers answer any string: a blank query keeps the input order."""
    logger.warning("%s got an empty query: returning the documents unranked", who)
    return documents[:top_n]


class RerankRagCompressor(BaseDocumentCompressor):
    """Reranks documents with any rerank-rag ranker.

    ``RerankRagCompressor(ranker=PairwiseRanker(llm), top_n=3)`` works for every core
    ranker, present and future (``rank`` / ``arank``) and for pointwise ``Scorer``
    objects. ``compress_documents`` / ``acompress_documents`` return at most ``top_n``
    documents (``None``: all), best first, score in ``metadata[score_key]``. A blank
    query returns the first ``top_n`` documents unranked, with a warning.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    ranker: Any = Field(default=None, exclude=True, description="core ranker or Scorer")
    top_n: int | None = Field(default=3, gt=0, description="Documents to keep (None: all).")
    score_key: str = Field(default="relevance_score", description="Metadata key of the score.")

    #: presets: the core ranker class (a ``rerank_rag`` attribute) built from the fields
    _core: ClassVar[str | None] = None

    def model_post_init(self, context: Any, /) -> None:
        build = None if self._core is None else self._build
        self.ranker = wrap_or_build(self.ranker, build, generic="RerankRagCompressor",
                                    name=type(self).__name__)

    def _build(self) -> Any:
        import rerank_rag

        base = set(RerankRagCompressor.model_fields) | {"llm"}
        cfg = {n: getattr(self, n) for n in type(self).model_fields if n not in base}
        if "prompt" in cfg:
            cfg["prompt"] = as_window_prompt(cfg["prompt"])
        return getattr(rerank_rag, self._core)(self.llm, **cfg)  # type: ignore[arg-type, attr-defined]

    @classmethod
    def from_llm(cls, llm: Any, **kwargs: Any) -> Any:
        """A preset for ``llm`` (like ``LLMListwiseRerank.from_llm``): a LangChain chat
        model or a rerank-rag backend; ``prompt`` may be a ``ChatPromptTemplate``."""
        if "llm" not in cls.model_fields:
            raise TypeError(f"{cls.__name__} has no llm; use {cls.__name__}(...)")
        return cls(llm=llm, **kwargs)

    def compress(self, documents: Sequence[Document], query: str, callbacks: Callbacks = None,
                 *, top_n: int | None = None) -> list[Document]:
        """:meth:`compress_documents` with a per-call ``top_n`` (``None``: the field)."""
        docs, n = list(documents), self.top_n if top_n is None else top_n
        if not docs or not query.strip():
            return unranked(docs, n, type(self).__name__) if docs else []
        ranking = rank_in_context(self.ranker, query, to_candidates(docs), n, callbacks)
        return [with_score(docs[i], s, self.score_key) for i, s in ranking]

    async def acompress(self, documents: Sequence[Document], query: str,
                        callbacks: Callbacks = None, *, top_n: int | None = None) -> list[Document]:
        """Async twin of :meth:`compress` (native ``arank``, no thread executor)."""
        docs, n = list(documents), self.top_n if top_n is None else top_n
        if not docs or not query.strip():
            return unranked(docs, n, type(self).__name__) if docs else []
        ranking = await arank_in_context(self.ranker, query, to_candidates(docs), n, callbacks)
        return [with_score(docs[i], s, self.score_key) for i, s in ranking]

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return self.compress(documents, query, callbacks)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return await self.acompress(documents, query, callbacks)


class ListwiseRerank(RerankRagCompressor):
    """Listwise LLM reranking (RankGPT-style sliding windows), see
    :class:`rerank_rag.ListwiseRanker`.

    **Score**: positional, ``1 - rank / n`` (1.0 for the best document); the order is what
    the LLM decided. ``llm``: a rerank-rag backend or a LangChain chat model (also
    wrapped: ``with_retry()``, ``bind()``). ``prompt``: a name, a ``WindowPrompt`` object
    or a ``ChatPromptTemplate`` with ``{query}`` and ``{passages}``.
    """

    _core: ClassVar[str | None] = "ListwiseRanker"
    llm: Any = Field(exclude=True, description="rerank-rag backend or LangChain chat model")
    prompt: Any = "rankgpt"
    mode: Literal["sliding", "single"] = "sliding"
    window_size: int = 20
    step: int = 10
    passes: int = 1
    max_passage_tokens: int | None = 300
    strict: bool = False


class JointRankRerank(RerankRagCompressor):
    """JointRank: overlapping blocks ranked in one parallel round, aggregated, see
    :class:`rerank_rag.JointRanker`.

    **Score**: the aggregator's value (Borda by default) over the block comparisons.
    ``llm``: a rerank-rag backend, a LangChain chat model or a pointwise ``Scorer``.
    """

    _core: ClassVar[str | None] = "JointRanker"
    llm: Any = Field(exclude=True, description="LLM or Scorer ranking each block")
    prompt: Any = "relevant-only"
    block_size: int = 20
    replicas: int = 4
    design: str = "auto"
    aggregator: str = "borda"
    seed: int = 0
    max_block_retries: int = 2
    max_passage_tokens: int | None = 300
    strict: bool = False


class PointwiseRerank(RerankRagCompressor):
    """Pointwise reranking: each document scored on its own, see
    :class:`rerank_rag.PointwiseRanker`.

    Give ``scorer`` (a ``Scorer`` object, or ``"minilm"`` / ``"bm25"``) or ``llm`` (yes/no
    first-token log-probabilities, :class:`rerank_rag.LLMPointwiseRanker`).
    **Score**: the scorer's raw score (cosine similarity for MiniLM, BM25, ...) or the
    LLM's yes/no log-odds.
    """

    _core: ClassVar[str | None] = "PointwiseRanker"
    scorer: Any = Field(default=None, exclude=True, description="Scorer, 'minilm' or 'bm25'")
    llm: Any = Field(default=None, exclude=True, description="LLM for yes/no scoring")
    batch_size: int = 32
    max_passage_tokens: int = 300
    strict: bool = False

    def _build(self) -> Any:
        return pointwise_ranker(self.scorer, self.llm, batch_size=self.batch_size,
                                max_passage_tokens=self.max_passage_tokens, strict=self.strict)
