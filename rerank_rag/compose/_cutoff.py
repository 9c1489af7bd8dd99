"""DynamicCutoff: keep only what the ranker judged relevant, within a floor and a ceiling."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .._ranker import check_query
from .._types import CandidateLike, Ranking, as_candidates, check_top_n

__all__ = ["DynamicCutoff"]

log = logging.getLogger("rerank_rag.compose")


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


class DynamicCutoff:
    """Wrap any ranker; return only the candidates it judged relevant.

    A candidate is kept when its ``Ranking.relevance`` is at least ``threshold`` (0.5:
    "judged relevant" in the rerank-rag relevance contract). Relevance is non-increasing
    along the order, so the kept candidates are a prefix of the ranking. The count is
    then clamped: at least ``floor`` (so a RAG prompt is never left empty when the
    model is too strict), at most ``ceiling`` and at most the ``top_n`` asked for.
    ``usage.kept`` reports how many were kept.

    Which rankers judge relevance: the listwise / JointRank relevant-only prompt (the
    model leaves irrelevant snippets out), LLM yes/no pointwise (its probability of
    "yes"), :class:`~rerank_rag.tdpart.TDPartRanker` with a relevant-only prompt. A
    ranker whose ``judges_relevance`` attribute is False (pairwise, setwise, tournaments,
    and TDPart with a full-permutation prompt) only maps ranks or points to
    ``relevance``; cutting it at 0.5 would keep a fixed share, not what was judged
    relevant, so wrapping one raises ``ValueError`` unless ``allow_positional=True``.

    When a ranking carries no relevance at all (``relevance is None``) with more than
    one candidate, ``rank`` raises ``ValueError`` naming the ranker: there is nothing to
    cut on, and silently keeping a fixed number would hide that. When every LLM call of
    the ranking failed (a transient outage: the ranker fell back to first-stage order),
    no judgement was made: the cut-off keeps ``min(ceiling, top_n)`` candidates, logs a
    warning and adds 1 to ``usage.fallbacks``.

    Args:
        ranker: any ranker (``rank`` / ``arank`` returning a :class:`~rerank_rag.Ranking`).
        threshold: relevance needed to be kept, in (0, 1].
        floor: keep at least this many (>= 0; default 1).
        ceiling: keep at most this many (``None``: no limit besides ``top_n``).
        allow_positional: accept a ranker that does not judge relevance (its relevance
            is positional or points: the cut then keeps a share of the list).
    """

    def __init__(
        self,
        ranker: Any,
        *,
        threshold: float = 0.5,
        floor: int = 1,
        ceiling: int | None = None,
        allow_positional: bool = False,
    ) -> None:
        if not (callable(getattr(ranker, "rank", None)) and callable(getattr(ranker, "arank", None))):
            raise TypeError(f"ranker must have rank() and arank(), got {type(ranker).__name__}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
        self.floor = _check_count("floor", floor, 0)
        if ceiling is not None:
            _check_count("ceiling", ceiling, 1)
            if ceiling < floor:
                raise ValueError(f"ceiling ({ceiling}) must be >= floor ({floor})")
        if getattr(ranker, "judges_relevance", None) is False and not allow_positional:
            raise ValueError(
                f"{ranker!r} does not judge relevance (its Ranking.relevance only encodes "
                "ranks or points), so a dynamic cut-off would keep a fixed share of the list. "
                "Use a ranker that judges relevance (listwise or JointRank with "
                "prompt='relevant-only', LLMPointwiseRanker, TDPartRanker with "
                "prompt='relevant-only'), or pass allow_positional=True."
            )
        self.ranker = ranker
        self.threshold = float(threshold)
        self.ceiling = ceiling
        self.allow_positional = bool(allow_positional)

    @property
    def judges_relevance(self) -> Any:
        return getattr(self.ranker, "judges_relevance", None)

    def __repr__(self) -> str:
        return (
            f"DynamicCutoff({self.ranker!r}, threshold={self.threshold}, floor={self.floor}, "
            f"ceiling={self.ceiling})"
        )

    def to_config(self) -> dict[str, Any]:
        inner = getattr(self.ranker, "to_config", None)
        return {
            "type": "dynamic-cutoff",
            "threshold": self.threshold,
            "floor": self.floor,
            "ceiling": self.ceiling,
            "allow_positional": self.allow_positional,
            "ranker": inner() if callable(inner) else repr(self.ranker),
        }

    def _prepare(self, query: str, candidates: Sequence[CandidateLike], top_n: int | None) -> tuple[list[Any], int]:
        check_query(query)
        cands = as_candidates(candidates)
        cap = check_top_n(top_n, len(cands))
        if self.ceiling is not None:
            cap = min(cap, self.ceiling)
        return cands, cap

    def _cut(self, ranking: Ranking, cap: int) -> Ranking:
        usage = ranking.usage
        order, scores, rel = ranking.order, ranking.scores, ranking.relevance
        if usage.llm_calls > 0 and usage.failed_calls >= usage.llm_calls:
            log.warning(
                "dynamic cut-off: every LLM call of %r failed, so nothing was judged; "
                "keeping %d candidates in the fallback order",
                self.ranker,
                min(cap, len(order)),
            )
            usage.fallbacks += 1
            keep = min(cap, len(order))
        elif rel is None:
            if len(order) > 1:
                raise ValueError(
                    f"{self.ranker!r} returned a ranking without relevance values; "
                    "DynamicCutoff needs a ranker that fills Ranking.relevance"
                )
            keep = len(order)
        else:
            judged = sum(1 for v in rel if v >= self.threshold)
            keep = max(min(judged, cap), min(self.floor, cap, len(order)))
        keep = min(keep, len(order))
        usage.kept = keep
        return Ranking(
            order=order[:keep],
            scores=scores[:keep],
            usage=usage,
            relevance=None if rel is None else rel[:keep],
        )

    def rank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Rank with the wrapped ranker and keep what it judged relevant."""
        cands, cap = self._prepare(query, candidates, top_n)
        if not cands:
            return self.ranker.rank(query, cands)  # type: ignore[no-any-return]
        return self._cut(self.ranker.rank(query, cands, top_n=cap), cap)

    async def arank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Async twin of :meth:`rank`."""
        cands, cap = self._prepare(query, candidates, top_n)
        if not cands:
            return await self.ranker.arank(query, cands)  # type: ignore[no-any-return]
        return self._cut(await self.ranker.arank(query, cands, top_n=cap), cap)
