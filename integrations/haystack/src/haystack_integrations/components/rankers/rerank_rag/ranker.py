"""Haystack rankers backed by rerank-rag: listwise LLM reranking, JointRank, pointwise.

Each component is configuration (its init parameters) around a core ranker built once
in ``__init__``. Documents are mapped to candidates and back **by position**; results
are ``dataclasses.replace`` copies with the rerank score in ``Document.score``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import SerializationError
from haystack.core.serialization import component_to_dict
from haystack.utils import deserialize_chatgenerator_inplace

from rerank_rag import Candidate, Ranking

__all__ = [
    "RerankRagListwiseRanker",
    "RerankRagJointRanker",
    "RerankRagPointwiseRanker",
    "llm_to_dict",
    "llm_from_dict",
]

_OPENAI = "openai-compatible"


def llm_to_dict(llm: Any) -> dict[str, Any] | None:
    """Serialize an LLM init parameter: our ``OpenAICompatibleLLM`` by its ``to_config()``
    (never the API key: it is read from the environment again), a Haystack ChatGenerator
    with ``component_to_dict``. Anything else raises ``SerializationError``."""
    if llm is None:
        return None
    if hasattr(llm, "__haystack_input__"):
        return component_to_dict(obj=llm, name="llm")
    to_config = getattr(llm, "to_config", None)
    config = to_config() if callable(to_config) else None
    if isinstance(config, dict) and config.get("type") == _OPENAI:
        return config
    raise SerializationError(
        f"cannot serialize an LLM of type {type(llm).__name__}: to_dict supports "
        "rerank_rag.llm.OpenAICompatibleLLM and Haystack ChatGenerators"
    )


def llm_from_dict(init_params: dict[str, Any], key: str = "llm") -> None:
    """Inverse of :func:`llm_to_dict`, in place on ``init_params[key]``."""
    data = init_params.get(key)
    if not isinstance(data, dict):
        return
    if data.get("type") == _OPENAI:
        from rerank_rag.llm import OpenAICompatibleLLM

        init_params[key] = OpenAICompatibleLLM.from_config(data)
    else:
        deserialize_chatgenerator_inplace(init_params, key=key)


def check_top_k(top_k: int | None) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")


def _score(doc: Document) -> float:
    return float("-inf") if doc.score is None else doc.score


def dedupe(documents: list[Document]) -> list[Document]:
    """Drop repeated ids (as Haystack rankers do), keeping the highest-scored copy at
    the position where the id first appeared."""
    out: list[Document] = []
    where: dict[str, int] = {}
    for d in documents:
        i = where.get(d.id)
        if i is None:
            where[d.id] = len(out)
            out.append(d)
        elif _score(d) > _score(out[i]):
            out[i] = d
    return out


def to_candidates(documents: list[Document]) -> list[Candidate]:
    """One candidate per document, same positions; ``content=None`` ranks as ""."""
    return [Candidate(text=d.content or "", id=d.id) for d in documents]


def select(documents: list[Document], ranking: Ranking) -> list[Document]:
    return [dataclasses.replace(documents[i], score=s, meta=dict(documents[i].meta)) for i, s in ranking]


class _Ranker:
    """Shared run/run_async/warm_up/to_dict; subclasses set ``_build`` and ``_params``."""

    def __init__(self, top_k: int | None, params: dict[str, Any]) -> None:
        check_top_k(top_k)
        self.top_k = top_k
        self._params = params
        self._ranker = self._build()
        self._warm = False

    def _build(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def ranker(self) -> Any:
        """The core rerank-rag ranker (``rank`` / ``arank``)."""
        return self._ranker

    def warm_up(self) -> None:
        """Load local models (pointwise scorers) and warm up a ChatGenerator. Idempotent."""
        if not self._warm:
            for part in (self._ranker, self._params.get("llm")):
                fn = getattr(part, "warm_up", None)
                if callable(fn):
                    fn()
            self._warm = True

    def _prepare(self, documents: list[Document], top_k: int | None) -> tuple[list[Document], int | None]:
        top_k = self.top_k if top_k is None else top_k
        check_top_k(top_k)
        return dedupe(list(documents)), top_k

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, list[Document]]:
        """Rerank ``documents`` for ``query``; returns at most ``top_k``, best first."""
        docs, k = self._prepare(documents, top_k)
        if not docs:
            return {"documents": []}
        return {"documents": select(docs, self._ranker.rank(query, to_candidates(docs), top_n=k))}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Async twin of :meth:`run` (LLM calls run concurrently on the event loop)."""
        docs, k = self._prepare(documents, top_k)
        if not docs:
            return {"documents": []}
        ranking = await self._ranker.arank(query, to_candidates(docs), top_n=k)
        return {"documents": select(docs, ranking)}

    def to_dict(self) -> dict[str, Any]:
        """Configuration only: the LLM by its config (never an API key), scorers by name."""
        params = dict(self._params, llm=llm_to_dict(self._params.get("llm")))
        if not isinstance(params.get("scorer") or "", str):
            raise SerializationError("only scorer names ('minilm', 'bm25') can be serialized")
        return default_to_dict(self, top_k=self.top_k, **params)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}  # no mutation
        llm_from_dict(data["init_parameters"])
        return default_from_dict(cls, data)


@component
class RerankRagListwiseRanker(_Ranker):
    """Listwise LLM reranking (RankGPT-style sliding windows), see
    :class:`rerank_rag.ListwiseRanker`.

    **Score**: positional, ``1 - rank / n`` (1.0 for the best document); the order is
    what the LLM decided. ``llm``: an ``OpenAICompatibleLLM`` (serializable), a Haystack
    ChatGenerator (serializable) or any rerank-rag backend.
    """

    def __init__(
        self, llm: Any, *, top_k: int | None = 10, prompt: str = "rankgpt", mode: str = "sliding",
        window_size: int = 20, step: int = 10, passes: int = 1,
        max_passage_tokens: int | None = 300, strict: bool = False,
    ) -> None:
        _Ranker.__init__(self, top_k, dict(  # (@component re-creates the class: no super())
            llm=llm, prompt=prompt, mode=mode, window_size=window_size, step=step, passes=passes,
            max_passage_tokens=max_passage_tokens, strict=strict))

    def _build(self) -> Any:
        from rerank_rag import ListwiseRanker

        p = dict(self._params)
        return ListwiseRanker(p.pop("llm"), **p)


@component
class RerankRagJointRanker(_Ranker):
    """JointRank: overlapping blocks ranked in one parallel round, aggregated, see
    :class:`rerank_rag.JointRanker`.

    **Score**: the aggregator's value (PageRank by default) over the block comparisons.
    """

    def __init__(
        self, llm: Any, *, top_k: int | None = 10, prompt: str = "relevant-only",
        block_size: int = 20, replicas: int = 4, design: str = "auto", aggregator: str = "pagerank",
        seed: int = 0, max_block_retries: int = 2, max_passage_tokens: int | None = 300,
        strict: bool = False,
    ) -> None:
        _Ranker.__init__(self, top_k, dict(  # (@component re-creates the class: no super())
            llm=llm, prompt=prompt, block_size=block_size, replicas=replicas, design=design,
            aggregator=aggregator, seed=seed, max_block_retries=max_block_retries,
            max_passage_tokens=max_passage_tokens, strict=strict))

    def _build(self) -> Any:
        from rerank_rag import JointRanker

        p = dict(self._params)
        return JointRanker(p.pop("llm"), **p)


@component
class RerankRagPointwiseRanker(_Ranker):
    """Pointwise reranking: each document scored on its own, see
    :class:`rerank_rag.PointwiseRanker`.

    ``scorer``: ``"minilm"`` (default, offline int8 ONNX; loads in ``warm_up``), ``"bm25"``
    or a ``Scorer`` object (not serializable); or give ``llm`` for yes/no first-token
    log-probabilities (:class:`rerank_rag.LLMPointwiseRanker`).
    **Score**: the scorer's raw score, or the LLM's yes/no log-odds (logprob(yes) - logprob(no)).
    """

    def __init__(
        self, scorer: Any = None, *, llm: Any = None, top_k: int | None = 10, batch_size: int = 32,
        max_passage_tokens: int = 300, strict: bool = False,
    ) -> None:
        _Ranker.__init__(self, top_k, dict(  # (@component re-creates the class: no super())
            scorer=scorer, llm=llm, batch_size=batch_size,
            max_passage_tokens=max_passage_tokens, strict=strict))

    def _build(self) -> Any:
        from rerank_rag import BM25Scorer, LLMPointwiseRanker, MiniLMScorer, PointwiseRanker

        p = self._params
        if p["llm"] is not None:
            if p["scorer"] is not None:
                raise ValueError("give either scorer or llm, not both")
            return LLMPointwiseRanker(
                p["llm"], max_passage_tokens=p["max_passage_tokens"], strict=p["strict"])
        scorer = p["scorer"]
        if scorer is None or isinstance(scorer, str):
            names = {"minilm": MiniLMScorer, "bm25": BM25Scorer}
            if (scorer or "minilm") not in names:
                raise ValueError(f"unknown scorer {scorer!r}: use one of {sorted(names)} or a Scorer")
            scorer = names[scorer or "minilm"]()
        return PointwiseRanker(scorer, batch_size=p["batch_size"])
