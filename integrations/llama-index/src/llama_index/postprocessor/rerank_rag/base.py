"""LlamaIndex node postprocessors backed by rerank-rag.

:class:`RerankRagPostprocessor` wraps **any** core ranker (anything with ``rank`` /
``arank`` returning a :class:`rerank_rag.Ranking`, or a pointwise ``Scorer``); the named
classes are presets that build their ranker from plain pydantic fields. Nodes are mapped
to candidates and back **by position**; results are new ``NodeWithScore`` objects
carrying the rerank score (the caller's nodes, shared with the docstore, are never
mutated). Without ``llm`` the LLM presets use ``Settings.llm``, as ``LLMRerank`` does.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from llama_index.core import Settings
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rerank_rag import Candidate
from rerank_rag.adapters import (
    arank,
    as_ranker,
    checked_ranking,
    pointwise_ranker,
    wrap_or_build,
)

from ._serialize import llm_from_dict, llm_to_dict

__all__ = [
    "RerankRagPostprocessor",
    "ListwiseRerank",
    "JointRankRerank",
    "PointwiseRerank",
    "as_ranker",
    "node_text",
]

dispatcher = get_dispatcher(__name__)
RETRIEVAL_SCORE_KEY = "retrieval_score"


def node_text(n: NodeWithScore, mode: MetadataMode) -> str:
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
            if RETRIEVAL_SCORE_KEY not in keys:
                setattr(node, attr, [*keys, RETRIEVAL_SCORE_KEY])
    return NodeWithScore(node=node, score=score)


class RerankRagPostprocessor(BaseNodePostprocessor):
    """Reranks nodes with any rerank-rag ranker.

    ``RerankRagPostprocessor(ranker=PairwiseRanker(llm), top_n=5)`` works for every core
    ranker, present and future, and for pointwise ``Scorer`` objects. Returns at most
    ``top_n`` new ``NodeWithScore`` objects, best first. Emits ``ReRankStartEvent`` /
    ``ReRankEndEvent`` and a ``RERANKING`` callback event. Like LlamaIndex's rerankers
    it raises ``ValueError`` without a query (a blank query string counts as none),
    before any event.
    """

    ranker: Any = Field(default=None, exclude=True, description="core ranker or Scorer")
    top_n: int | None = Field(default=5, gt=0, description="Nodes to keep (None: all).")
    keep_retrieval_score: bool = Field(
        default=False, description="Keep the retrieval score in node metadata."
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.NONE, description="Which node metadata the ranker sees."
    )

    #: presets: the core ranker class (a ``rerank_rag`` attribute) built from the fields
    _core: ClassVar[str | None] = None

    def model_post_init(self, context: Any, /) -> None:
        build = None if self._core is None else self._build
        self.ranker = wrap_or_build(self.ranker, build, generic="RerankRagPostprocessor",
                                    name=type(self).__name__)

    def _build(self) -> Any:
        import rerank_rag

        base = set(RerankRagPostprocessor.model_fields) | {"llm"}
        cfg = {n: getattr(self, n) for n in type(self).model_fields if n not in base}
        llm = self.llm if self.llm is not None else Settings.llm  # type: ignore[attr-defined]
        return getattr(rerank_rag, self._core)(llm, **cfg)  # type: ignore[arg-type]

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagPostprocessor"

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """Configuration, with the LLM described without credentials (presets)."""
        data = super().to_dict(**kwargs)
        if "llm" in type(self).model_fields:
            data["llm"] = llm_to_dict(self.llm)  # type: ignore[attr-defined]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Any:  # type: ignore[override]
        """Inverse of :meth:`to_dict`; ``llm=`` / ``ranker=`` objects may be passed."""
        data = {**data, **kwargs}
        if "llm" in data:
            data["llm"] = llm_from_dict(data["llm"])
        return super().from_dict(data)

    def _query(self, query_bundle: QueryBundle | None) -> str:
        if query_bundle is None or not query_bundle.query_str.strip():
            raise ValueError(f"{self.class_name()} needs a query: pass query_bundle or query_str")
        return query_bundle.query_str

    def _start(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[str, list[Candidate], dict[str, Any]] | None:
        """The query (checked first), the candidates and the callback payload; the start
        event is emitted. ``None`` for no nodes (no event)."""
        query = self._query(query_bundle)
        if not nodes:
            return None
        dispatcher.event(ReRankStartEvent(
            query=query_bundle, nodes=nodes, top_n=self.top_n or len(nodes),
            model_name=self.class_name(),
        ))
        cands = [Candidate(text=node_text(n, self.metadata_mode), id=n.node.node_id) for n in nodes]
        payload = {
            EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.class_name(),
            EventPayload.QUERY_STR: query, EventPayload.TOP_K: self.top_n,
        }
        return query, cands, payload

    def _finish(self, nodes: list[NodeWithScore], ranking: Any, event: Any) -> list[NodeWithScore]:
        out = [_rescored(nodes[i], s, self.keep_retrieval_score)
               for i, s in checked_ranking(ranking, len(nodes), "nodes")]
        event.on_end(payload={EventPayload.NODES: out})
        dispatcher.event(ReRankEndEvent(nodes=out))
        return out

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        nodes = list(nodes)
        if (started := self._start(nodes, query_bundle)) is None:
            return []
        query, cands, payload = started
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as ev:
            return self._finish(nodes, self.ranker.rank(query, cands, top_n=self.top_n), ev)

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        nodes = list(nodes)
        if (started := self._start(nodes, query_bundle)) is None:
            return []
        query, cands, payload = started
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as ev:
            return self._finish(nodes, await arank(self.ranker, query, cands, self.top_n), ev)


class ListwiseRerank(RerankRagPostprocessor):
    """Listwise LLM reranking (RankGPT-style sliding windows), see
    :class:`rerank_rag.ListwiseRanker`.

    **Score**: positional, ``1 - rank / n`` (1.0 for the best node); the order is what
    the LLM decided. ``llm``: a rerank-rag backend or a LlamaIndex LLM (default:
    ``Settings.llm``). ``prompt``: a name or a ``WindowPrompt`` object.
    """

    _core: ClassVar[str | None] = "ListwiseRanker"
    llm: Any = Field(default=None, exclude=True, description="rerank-rag backend or LlamaIndex LLM")
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


class JointRankRerank(RerankRagPostprocessor):
    """JointRank: overlapping blocks ranked in one parallel round, aggregated, see
    :class:`rerank_rag.JointRanker`.

    **Score**: the aggregator's value (Borda by default) over the block comparisons.
    ``llm``: a rerank-rag backend, a LlamaIndex LLM (default: ``Settings.llm``) or a
    pointwise ``Scorer``.
    """

    _core: ClassVar[str | None] = "JointRanker"
    llm: Any = Field(default=None, exclude=True, description="LLM or Scorer ranking each block")
    prompt: Any = "relevant-only"
    block_size: int = 20
    replicas: int = 4
    design: str = "auto"
    aggregator: str = "borda"
    seed: int = 0
    max_block_retries: int = 2
    max_passage_tokens: int | None = 300
    strict: bool = False

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagJointRankRerank"


class PointwiseRerank(RerankRagPostprocessor):
    """Pointwise reranking: each node scored on its own, see :class:`rerank_rag.PointwiseRanker`.

    Give ``scorer`` (a ``Scorer`` object, or ``"minilm"`` (default) / ``"bm25"``) or
    ``llm`` (yes/no first-token log-probabilities, :class:`rerank_rag.LLMPointwiseRanker`).
    **Score**: the scorer's raw score, or the LLM's yes/no log-odds.
    """

    _core: ClassVar[str | None] = "PointwiseRanker"
    scorer: Any = Field(default=None, exclude=True, description="Scorer, 'minilm' or 'bm25'")
    llm: Any = Field(default=None, exclude=True, description="LLM for yes/no scoring")
    batch_size: int = 32
    max_passage_tokens: int = 300
    strict: bool = False

    @classmethod
    def class_name(cls) -> str:
        return "RerankRagPointwiseRerank"

    def _build(self) -> Any:
        return pointwise_ranker(self.scorer, self.llm, batch_size=self.batch_size,
                                max_passage_tokens=self.max_passage_tokens, strict=self.strict)
