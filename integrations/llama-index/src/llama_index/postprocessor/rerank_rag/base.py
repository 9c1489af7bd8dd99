"""LlamaIndex node postprocessors and a decomposition retriever backed by rerank-rag.

Each postprocessor is plain configuration (pydantic fields) around a core ranker built
once at construction (a private attribute). Nodes are mapped to candidates and back
**by position**; results are new ``NodeWithScore`` objects carrying the rerank score
(the caller's nodes, shared with the docstore, are never mutated).
"""

from __future__ import annotations

from typing import Any, Literal

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rerank_rag import Candidate, Ranking

__all__ = [
    "RerankRagPostprocessor",
    "ListwiseRerank",
    "JointRankRerank",
    "PointwiseRerank",
    "DecomposeRetriever",
]

dispatcher = get_dispatcher(__name__)
RETRIEVAL_SCORE_KEY = "retrieval_score"


def _text(n: NodeWithScore, mode: MetadataMode) -> str:
    return n.node.get_content(metadata_mode=mode) or ""


def _rescored(n: NodeWithScore, score: float, keep_retrieval_score: bool) -> NodeWithScore:
    """A new ``NodeWithScore``; with ``keep_retrieval_score`` the node is a copy whose
    metadata holds the old score, excluded from the LLM and embedding text."""
    node = n.node
    if keep_retrieval_score:
        node = node.model_copy()
        node.metadata = {**node.metadata, RETRIEVAL_SCORE_KEY: n.score}
        for attr in ("excluded_llm_metadata_keys", "excluded_embed_metadata_keys"):
            keys = list(getattr(node, attr))
            setattr(node, attr, keys if RETRIEVAL_SCORE_KEY in keys else [*keys, RETRIEVAL_SCORE_KEY])
    return NodeWithScore(node=node, score=score)


class RerankRagPostprocessor(BaseNodePostprocessor):
    """Base class: reranks nodes with a core ranker built once from the fields.

    Returns at most ``top_n`` new ``NodeWithScore`` objects, best first. Emits
    ``ReRankStartEvent`` / ``ReRankEndEvent`` and a ``RERANKING`` callback event.
    A query bundle is required (``ValueError`` otherwise).
    """

    top_n: int | None = Field(default=5, gt=0, description="Nodes to keep (None: all).")
    keep_retrieval_score: bool = Field(
        default=False, description="Keep the retrieval score in node metadata."
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.NONE, description="Which node metadata the ranker sees."
    )
    _ranker: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        self._ranker = self._build()

    def _build(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagPostprocessor"

    @property
    def ranker(self) -> Any:
        """The core rerank-rag ranker (``rank`` / ``arank``)."""
        return self._ranker

    def _start(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[str, list[Candidate]]:
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle, nodes=nodes, top_n=self.top_n or len(nodes),
                model_name=self.class_name(),
            )
        )
        if query_bundle is None:
            raise ValueError(f"{self.class_name()} needs a query: pass query_bundle or query_str")
        cands = [Candidate(text=_text(n, self.metadata_mode), id=n.node.node_id) for n in nodes]
        return query_bundle.query_str, cands

    def _finish(self, nodes: list[NodeWithScore], ranking: Ranking) -> list[NodeWithScore]:
        out = [_rescored(nodes[i], s, self.keep_retrieval_score) for i, s in ranking]
        dispatcher.event(ReRankEndEvent(nodes=out))
        return out

    def _payload(self, nodes: list[NodeWithScore], query: str) -> dict[str, Any]:
        return {
            EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.class_name(),
            EventPayload.QUERY_STR: query, EventPayload.TOP_K: self.top_n,
        }

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        nodes = list(nodes)
        query, cands = self._start(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            ranking = self._ranker.rank(query, cands, top_n=self.top_n)
            out = self._finish(nodes, ranking)
            event.on_end(payload={EventPayload.NODES: out})
        return out

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        nodes = list(nodes)
        query, cands = self._start(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            ranking = await self._ranker.arank(query, cands, top_n=self.top_n)
            out = self._finish(nodes, ranking)
            event.on_end(payload={EventPayload.NODES: out})
        return out


class ListwiseRerank(RerankRagPostprocessor):
    """Listwise LLM reranking (RankGPT-style sliding windows), see
    :class:`rerank_rag.ListwiseRanker`.

    **Score**: positional, ``1 - rank / n`` (1.0 for the best node); the order is what
    the LLM decided. ``llm``: a rerank-rag backend or a LlamaIndex LLM (required: there
    is no fallback to ``Settings.llm``).
    """

    llm: Any = Field(exclude=True, description="rerank-rag backend or LlamaIndex LLM")
    prompt: Any = "rankgpt"
    mode: Literal["sliding", "single"] = "sliding"
    window_size: int = 20
    step: int = 10
    passes: int = 1
    max_passage_tokens: int | None = 300
    strict: bool = False

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagListwiseRerank"

    def _build(self) -> Any:
        from rerank_rag import ListwiseRanker

        return ListwiseRanker(self.llm, **_config(self, "prompt", "mode", "window_size", "step",
                                                  "passes", "max_passage_tokens", "strict"))


class JointRankRerank(RerankRagPostprocessor):
    """JointRank: overlapping blocks ranked in one parallel round, aggregated, see
    :class:`rerank_rag.JointRanker`.

    **Score**: the aggregator's value (PageRank by default) over the block comparisons.
    ``llm``: a rerank-rag backend, a LlamaIndex LLM or a pointwise ``Scorer``.
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

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagJointRankRerank"

    def _build(self) -> Any:
        from rerank_rag import JointRanker

        return JointRanker(self.llm, **_config(
            self, "prompt", "block_size", "replicas", "design", "aggregator", "seed",
            "max_block_retries", "max_passage_tokens", "strict"))


class PointwiseRerank(RerankRagPostprocessor):
    """Pointwise reranking: each node scored on its own, see :class:`rerank_rag.PointwiseRanker`.

    Give ``scorer`` (a ``Scorer`` object, or ``"minilm"`` (default) / ``"bm25"``) or
    ``llm`` (yes/no first-token log-probabilities, :class:`rerank_rag.LLMPointwiseRanker`).
    **Score**: the scorer's raw score, or the LLM's probability of "yes".
    """

    scorer: Any = Field(default=None, exclude=True, description="Scorer, 'minilm' or 'bm25'")
    llm: Any = Field(default=None, exclude=True, description="LLM for yes/no scoring")
    batch_size: int = 32
    max_passage_tokens: int = 300
    strict: bool = False

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagPointwiseRerank"

    def _build(self) -> Any:
        from rerank_rag import BM25Scorer, LLMPointwiseRanker, MiniLMScorer, PointwiseRanker

        if self.llm is not None:
            if self.scorer is not None:
                raise ValueError("give either scorer or llm, not both")
            return LLMPointwiseRanker(self.llm, **_config(self, "max_passage_tokens", "strict"))
        scorer = self.scorer
        if scorer is None or isinstance(scorer, str):
            names = {"minilm": MiniLMScorer, "bm25": BM25Scorer}
            if (scorer or "minilm") not in names:
                raise ValueError(f"unknown scorer {scorer!r}: use one of {sorted(names)} or a Scorer")
            scorer = names[scorer or "minilm"]()
        return PointwiseRanker(scorer, batch_size=self.batch_size)


def _config(obj: Any, *names: str) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names}


class DecomposeRetriever(BaseRetriever):
    """Question decomposition + retrieval per sub-question + merge + rerank.

    ``llm`` splits the question into at most ``max_subquestions`` sub-questions; the
    question and each sub-question retrieve from ``retriever`` (concurrently; the first
    ``k`` nodes of each are kept, so set the retriever's own top-k at least as high); the de-duplicated pool (``merge``: "union", "interleave" or
    "rrf") is reranked against the *original* question by ``reranker`` (one of this
    package's postprocessors or any rerank-rag ranker; ``None`` keeps the merged order)
    and the best ``top_k`` are returned as new ``NodeWithScore`` objects.
    See :class:`rerank_rag.DecomposeRetrieveRerank`.
    """

    def __init__(
        self,
        retriever: BaseRetriever,
        llm: Any,
        reranker: Any = None,
        *,
        k: int = 10,
        top_k: int | None = 10,
        merge: str = "union",
        max_subquestions: int = 5,
        strict: bool = False,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        from rerank_rag import DecomposeRetrieveRerank, Decomposer
        from rerank_rag.retrievers import Retriever

        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self._retriever = retriever
        ranker = reranker.ranker if isinstance(reranker, RerankRagPostprocessor) else reranker
        self._mode = getattr(reranker, "metadata_mode", MetadataMode.NONE)

        def retrieve(q: str, k: int) -> list[Candidate]:
            return self._candidates(self._retriever.retrieve(q))

        async def aretrieve(q: str, k: int) -> list[Candidate]:
            return self._candidates(await self._retriever.aretrieve(q))

        self._pipeline = DecomposeRetrieveRerank(
            Retriever(retrieve, aretrieve), ranker,
            decomposer=Decomposer(llm, max_subquestions=max_subquestions, strict=strict),
            k=k, top_n=top_k, merge=merge, strict=strict,
        )

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagDecomposeRetriever"

    def _candidates(self, nodes: list[NodeWithScore]) -> list[Candidate]:
        # The source NodeWithScore travels with its candidate: results map back to it
        # exactly (never by text), also after merging and de-duplication.
        return [
            Candidate(text=_text(n, self._mode), id=n.node.node_id, score=n.score,
                      metadata={"_source": n})
            for n in nodes
        ]

    @staticmethod
    def _nodes(result: Any) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=c.metadata["_source"].node, score=s)
            for c, s in zip(result.candidates, result.scores)
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._nodes(self._pipeline.run(query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._nodes(await self._pipeline.arun(query_bundle.query_str))
