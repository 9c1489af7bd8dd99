"""Haystack rankers backed by rerank-rag.

:class:`RerankRagRanker` wraps **any** core ranker: an object with ``rank`` / ``arank``
returning a :class:`rerank_rag.Ranking` (used as is), or a ranker class from
``rerank_rag`` (object or import path, e.g. ``"rerank_rag.ListwiseRanker"``) built with
``chat_generator`` / ``llm`` and ``ranker_params``: that form is serializable and its LLM
calls are traced. The named components are presets with the ranker's parameters as
their own init parameters. All share ``LLMRanker``'s sockets (``run(query, documents,
top_k)`` and ``run_async``) and lifecycle (``warm_up`` / ``warm_up_async`` / ``close`` /
``close_async``). Documents are mapped to candidates and back **by position**; results
are ``dataclasses.replace`` copies with the rerank score in ``Document.score``.
"""

# No `from __future__ import annotations` here: Haystack 2.x takes the socket types
# from the run() annotations and cannot resolve strings.

import dataclasses
import importlib
import logging
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import DeserializationError, SerializationError

from rerank_rag import Candidate, Ranking
from rerank_rag.adapters import arank, checked_ranking, pointwise_ranker

from ._llm import Lifecycle, llm_from_dict, llm_to_dict, parent_span, traced

__all__ = [
    "RerankRagRanker",
    "RerankRagListwiseRanker",
    "RerankRagJointRanker",
    "RerankRagPointwiseRanker",
    "check_top_k",
    "dedupe",
]

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 10


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


def _ranker_class(ranker: str | type) -> type:
    """A ranker class from ``rerank_rag`` (import paths outside it are refused)."""
    if isinstance(ranker, type):
        return ranker
    module, _, name = ranker.rpartition(".")
    if not (module == "rerank_rag" or module.startswith("rerank_rag.")):
        raise DeserializationError(f"ranker {ranker!r}: only rerank_rag classes are imported")
    cls = getattr(importlib.import_module(module), name, None)
    if not isinstance(cls, type) or not callable(getattr(cls, "rank", None)):
        raise DeserializationError(f"ranker {ranker!r} is not a rerank-rag ranker class")
    return cls


def _ranker_path(cls: type) -> str:
    """The import path written to YAML: the public ``rerank_rag.<Name>`` when it is one."""
    import rerank_rag

    if getattr(rerank_rag, cls.__name__, None) is cls:
        return f"rerank_rag.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def make_ranker(ranker: Any, params: dict[str, Any], model: Any) -> Any:
    """The core ranker for :class:`RerankRagRanker` (see its docs)."""
    if isinstance(ranker, (str, type)):
        cls = _ranker_class(ranker)
        return cls(traced(model), **params) if model is not None else cls(**params)
    if model is not None or params:
        raise ValueError("chat_generator / llm / ranker_params go with a ranker class; "
                         "this ranker object is already built")
    if callable(getattr(ranker, "rank", None)):
        return ranker
    raise TypeError(f"ranker must be a rerank-rag ranker (rank/arank), a ranker class or its "
                    f"import path, got {type(ranker).__name__}")


class _Ranker(Lifecycle):
    """What every ranker component shares; subclasses call :meth:`_setup` in ``__init__``
    (``@component`` re-creates the classes: no ``super()``)."""

    def _setup(self, core: Any, config: dict[str, Any], *, llm: Any, chat_generator: Any,
               top_k: int | None, score_threshold: float | None,
               meta_fields_to_embed: list[str] | None, embedding_separator: str) -> None:
        check_top_k(top_k)
        if score_threshold is not None and not isinstance(score_threshold, (int, float)):
            raise TypeError(f"score_threshold must be a number or None, got {score_threshold!r}")
        self.ranker = core  # the core rerank-rag ranker (rank / arank)
        self.top_k, self.score_threshold = top_k, score_threshold
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator
        self.llm, self.chat_generator = llm, chat_generator
        self._config = config  # the other init parameters, for to_dict
        self._warm = False

    @staticmethod
    def _model(llm: Any, chat_generator: Any) -> Any:
        if llm is not None and chat_generator is not None:
            raise ValueError("give either llm or chat_generator, not both")
        return chat_generator if chat_generator is not None else llm

    def _parts(self) -> tuple[Any, ...]:
        return (self.ranker, self.chat_generator if self.chat_generator is not None else self.llm)

    def text(self, doc: Document) -> str:
        """The text the ranker sees: ``meta_fields_to_embed`` values, then the content."""
        meta = [str(doc.meta[f]) for f in self.meta_fields_to_embed if doc.meta.get(f)]
        return self.embedding_separator.join([*meta, doc.content or ""])

    def select(self, documents: list[Document], ranking: Ranking, k: int | None) -> list[Document]:
        """Copies with the rerank score, best first; ``score_threshold`` is compared with
        the ranking's calibrated relevance when it has one, else with the score."""
        ranking = checked_ranking(ranking, len(documents))
        values = getattr(ranking, "relevance", None) or ranking.scores
        out = [
            dataclasses.replace(documents[i], score=s, meta=dict(documents[i].meta))
            for (i, s), v in zip(ranking, values, strict=True)
            if self.score_threshold is None or v >= self.score_threshold
        ]
        return out[:k]

    def _prepare(self, query: str, documents: list[Document], top_k: int | None) -> tuple[Any, ...]:
        check_top_k(top_k)
        k = self.top_k if top_k is None else top_k
        docs = dedupe(list(documents))
        if docs and not query.strip():  # LLMRanker's convention
            logger.warning("%s got an empty query: returning the documents unranked",
                           type(self).__name__)
            return docs[:k], k, None
        return docs, k, [Candidate(text=self.text(d), id=d.id) for d in docs]

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Rerank ``documents`` for ``query``; returns at most ``top_k``, best first."""
        docs, k, cands = self._prepare(query, documents, top_k)
        if not cands:
            return {"documents": docs}
        with parent_span():
            ranking = self.ranker.rank(query, cands, top_n=k)
        return {"documents": self.select(docs, ranking, k)}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Async twin of :meth:`run` (LLM calls run concurrently on the event loop)."""
        docs, k, cands = self._prepare(query, documents, top_k)
        if not cands:
            return {"documents": docs}
        with parent_span():
            ranking = await arank(self.ranker, query, cands, k)
        return {"documents": self.select(docs, ranking, k)}

    def to_dict(self) -> dict[str, Any]:
        """Configuration only: the LLM by its config (never an API key), scorers by name."""
        params = dict(self._config)
        if "ranker" in params:
            ranker = params["ranker"]
            if not isinstance(ranker, (str, type)):
                raise SerializationError("a ranker object cannot be serialized: pass its class "
                                         "(or import path) with ranker_params and chat_generator")
            if isinstance(ranker, type):
                params["ranker"] = _ranker_path(ranker)
            _ranker_class(params["ranker"])
        if not isinstance(params.get("scorer") or "", str):
            raise SerializationError("only scorer names ('minilm', 'bm25') can be serialized")
        return default_to_dict(
            self, **params, llm=llm_to_dict(self.llm),
            chat_generator=llm_to_dict(self.chat_generator, "chat_generator"),
            top_k=self.top_k, score_threshold=self.score_threshold,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}  # no mutation
        for key in ("llm", "chat_generator"):
            llm_from_dict(data["init_parameters"], key)
        return default_from_dict(cls, data)


@component
class RerankRagRanker(_Ranker):
    """Any rerank-rag ranker as a Haystack ranker component.

    ``ranker``: a ranker object (``rank`` / ``arank``; not serializable), or a ranker
    class from ``rerank_rag`` / its import path, built as
    ``ranker(chat_generator or llm, **ranker_params)`` (serializable; LLM calls traced).
    ``top_k``: documents returned (``None``: all). ``score_threshold``: drop documents
    whose calibrated relevance (``Ranking.relevance``, in [0, 1]; the score for rankers
    without one) is below it. ``meta_fields_to_embed``: document meta values put before
    the content (joined by ``embedding_separator``) in the text the ranker sees.
    """

    def __init__(
        self, ranker: Any, *, chat_generator: Any = None, llm: Any = None,
        ranker_params: dict[str, Any] | None = None, top_k: int | None = DEFAULT_TOP_K,
        score_threshold: float | None = None, meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        params = dict(ranker_params or {})
        core = make_ranker(ranker, params, self._model(llm, chat_generator))
        self._setup(core, {"ranker": ranker, "ranker_params": params}, llm=llm,
                    chat_generator=chat_generator, top_k=top_k, score_threshold=score_threshold,
                    meta_fields_to_embed=meta_fields_to_embed,
                    embedding_separator=embedding_separator)


@component
class RerankRagListwiseRanker(_Ranker):
    """Listwise LLM reranking (RankGPT-style sliding windows), see
    :class:`rerank_rag.ListwiseRanker`.

    **Score**: positional, ``1 - rank / n`` (1.0 for the best document); the order is
    what the LLM decided. The LLM: ``chat_generator`` (a Haystack ChatGenerator, as
    ``LLMRanker`` takes it) or ``llm`` (that, an ``OpenAICompatibleLLM`` or any
    rerank-rag backend); both serialize. Other parameters: see :class:`RerankRagRanker`.
    """

    def __init__(
        self, llm: Any = None, *, chat_generator: Any = None, top_k: int | None = DEFAULT_TOP_K,
        prompt: str = "rankgpt", mode: str = "sliding", window_size: int = 20, step: int = 10,
        passes: int = 1, max_passage_tokens: int | None = 300, strict: bool = False,
        score_threshold: float | None = None, meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        from rerank_rag import ListwiseRanker

        cfg = dict(prompt=prompt, mode=mode, window_size=window_size, step=step, passes=passes,
                   max_passage_tokens=max_passage_tokens, strict=strict)
        core = ListwiseRanker(traced(self._model(llm, chat_generator)), **cfg)
        self._setup(core, cfg, llm=llm, chat_generator=chat_generator, top_k=top_k,
                    score_threshold=score_threshold, meta_fields_to_embed=meta_fields_to_embed,
                    embedding_separator=embedding_separator)


@component
class RerankRagJointRanker(_Ranker):
    """JointRank: overlapping blocks ranked in one parallel round, aggregated, see
    :class:`rerank_rag.JointRanker`.

    **Score**: the aggregator's value (Borda by default) over the block comparisons.
    The LLM (or a pointwise ``Scorer`` as ``llm``): as :class:`RerankRagListwiseRanker`.
    """

    def __init__(
        self, llm: Any = None, *, chat_generator: Any = None, top_k: int | None = DEFAULT_TOP_K,
        prompt: str = "relevant-only", block_size: int = 20, replicas: int = 4,
        design: str = "auto", aggregator: str = "borda", seed: int = 0,
        max_block_retries: int = 2, max_passage_tokens: int | None = 300, strict: bool = False,
        score_threshold: float | None = None, meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        from rerank_rag import JointRanker

        cfg = dict(prompt=prompt, block_size=block_size, replicas=replicas, design=design,
                   aggregator=aggregator, seed=seed, max_block_retries=max_block_retries,
                   max_passage_tokens=max_passage_tokens, strict=strict)
        core = JointRanker(traced(self._model(llm, chat_generator)), **cfg)
        self._setup(core, cfg, llm=llm, chat_generator=chat_generator, top_k=top_k,
                    score_threshold=score_threshold, meta_fields_to_embed=meta_fields_to_embed,
                    embedding_separator=embedding_separator)


@component
class RerankRagPointwiseRanker(_Ranker):
    """Pointwise reranking: each document scored on its own, see
    :class:`rerank_rag.PointwiseRanker`.

    ``scorer``: ``"minilm"`` (default, offline int8 ONNX; loads in ``warm_up``), ``"bm25"``
    or a ``Scorer`` object (not serializable); or give ``llm`` / ``chat_generator`` for
    yes/no first-token log-probabilities (:class:`rerank_rag.LLMPointwiseRanker`).
    **Score**: the scorer's raw score, or the LLM's yes/no log-odds.
    """

    def __init__(
        self, scorer: Any = None, *, llm: Any = None, chat_generator: Any = None,
        top_k: int | None = DEFAULT_TOP_K, batch_size: int = 32, max_passage_tokens: int = 300,
        strict: bool = False, score_threshold: float | None = None,
        meta_fields_to_embed: list[str] | None = None, embedding_separator: str = "\n",
    ) -> None:
        model = self._model(llm, chat_generator)
        core = pointwise_ranker(scorer, None if model is None else traced(model),
                                batch_size=batch_size, max_passage_tokens=max_passage_tokens,
                                strict=strict)
        cfg = dict(scorer=scorer, batch_size=batch_size, max_passage_tokens=max_passage_tokens,
                   strict=strict)
        self._setup(core, cfg, llm=llm, chat_generator=chat_generator, top_k=top_k,
                    score_threshold=score_threshold, meta_fields_to_embed=meta_fields_to_embed,
                    embedding_separator=embedding_separator)
