"""The framework-free half of a framework adapter (LangChain, LlamaIndex, Haystack, ...).

An adapter turns its framework's documents into :class:`~rerank_rag.Candidate` objects,
asks a core ranker for a :class:`~rerank_rag.Ranking` and maps the result back **by
position**. What does not depend on the framework lives here, once:

* :func:`as_ranker`: the ranker an adapter wraps (a ranker as is, a ``Scorer`` in a
  :class:`~rerank_rag.PointwiseRanker`); :func:`wrap_or_build`: the rule of an adapter
  with one generic class (wraps a given ranker) and presets (build their own);
* :func:`pointwise_ranker` / :func:`make_scorer`: the pointwise presets (a scorer name,
  a ``Scorer`` object, or an LLM for yes/no scoring);
* :func:`arank`: a ranking on the async path (``arank``, or ``rank`` in a worker thread);
* :func:`checked_ranking`: the ranker's answer checked before anything is mapped back
  (a :class:`~rerank_rag.Ranking` of distinct positions into the inputs).

Importing this module is cheap: rankers and scorers load only when used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._types import Candidate, Ranking

__all__ = [
    "as_ranker",
    "wrap_or_build",
    "make_scorer",
    "pointwise_ranker",
    "arank",
    "checked_ranking",
]

#: Scorer names the pointwise presets accept (case-insensitive) -> ``rerank_rag`` class.
SCORERS = {"minilm": "MiniLMScorer", "bm25": "BM25Scorer"}


def as_ranker(obj: Any) -> Any:
    """A core ranker: an object with ``rank`` is used as is, a ``Scorer`` (``score``)
    is wrapped in :class:`rerank_rag.PointwiseRanker`; anything else raises TypeError."""
    if callable(getattr(obj, "rank", None)):
        return obj
    if callable(getattr(obj, "score", None)):
        from .pointwise import PointwiseRanker

        return PointwiseRanker(obj)
    raise TypeError(
        f"ranker must have rank(query, candidates, top_n) (any rerank-rag ranker) or "
        f"score(query, passages) (a Scorer), got {type(obj).__name__}"
    )


def wrap_or_build(
    ranker: Any, build: Callable[[], Any] | None, *, generic: str, name: str
) -> Any:
    """The core ranker of an adapter object named ``name``.

    The generic class (``generic``, ``build=None``) needs ``ranker`` and wraps it with
    :func:`as_ranker`; a preset builds its own with ``build()`` and refuses a ``ranker``
    (ValueError pointing at the generic class).
    """
    if build is None:
        if ranker is None:
            raise TypeError(f"{generic} needs ranker=<a rerank-rag ranker or Scorer>")
        return as_ranker(ranker)
    if ranker is not None:
        raise ValueError(f"{name} builds its own ranker; to wrap a ranker object use "
                         f"{generic}(ranker=...)")
    return build()


def make_scorer(scorer: Any) -> Any:
    """A ``Scorer`` from a name (``"minilm"``, the default for ``None``; ``"bm25"``) or
    an object with ``score(query, passages)``, returned as is."""
    if scorer is None or isinstance(scorer, str):
        key = (scorer or "minilm").lower()
        if key not in SCORERS:
            raise ValueError(f"unknown scorer {scorer!r}: use one of {sorted(SCORERS)} or a Scorer")
        import rerank_rag

        return getattr(rerank_rag, SCORERS[key])()
    if not callable(getattr(scorer, "score", None)):
        raise TypeError(f"scorer must have score(query, passages), got {type(scorer).__name__}")
    return scorer


def pointwise_ranker(
    scorer: Any = None,
    llm: Any = None,
    *,
    batch_size: int = 32,
    max_passage_tokens: int = 300,
    strict: bool = False,
) -> Any:
    """The pointwise presets' ranker: with ``llm``, yes/no first-token log-probabilities
    (:class:`rerank_rag.LLMPointwiseRanker`); otherwise a
    :class:`rerank_rag.PointwiseRanker` over :func:`make_scorer` ``(scorer)``. Giving both
    raises ValueError."""
    if llm is not None:
        if scorer is not None:
            raise ValueError("give either scorer or llm, not both")
        from .pointwise import LLMPointwiseRanker

        return LLMPointwiseRanker(llm, max_passage_tokens=max_passage_tokens, strict=strict)
    from .pointwise import PointwiseRanker

    return PointwiseRanker(make_scorer(scorer), batch_size=batch_size)


async def arank(ranker: Any, query: str, candidates: Sequence[Candidate], top_n: int | None) -> Any:
    """``ranker.arank(...)``, or ``ranker.rank(...)`` in a worker thread (in a copy of
    the caller's context) for a ranker without ``arank``. The answer is returned as is:
    check it with :func:`checked_ranking`."""
    method = getattr(ranker, "arank", None)
    if callable(method):
        return await method(query, candidates, top_n=top_n)
    import asyncio

    return await asyncio.to_thread(ranker.rank, query, candidates, top_n=top_n)


def checked_ranking(ranking: Any, n: int, what: str = "documents") -> Ranking:
    """``ranking`` if it is a :class:`~rerank_rag.Ranking` of distinct positions into
    the ``n`` inputs (``what`` names them in the error); TypeError / ValueError otherwise."""
    if not isinstance(ranking, Ranking):
        raise TypeError(f"the ranker returned {type(ranking).__name__}, expected a Ranking")
    order = ranking.order
    if len(set(order)) != len(order) or not all(0 <= i < n for i in order):
        raise ValueError(f"the ranker returned an invalid order over {n} {what}: {order!r}")
    return ranking
