"""FirstStageEvidence: show each passage's first-stage rank or score in the prompt."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._evidence import EvidenceText
from .._ranker import check_query
from .._types import Candidate, CandidateLike, Ranking, as_candidates

__all__ = ["FirstStageEvidence", "annotate"]

_SHOW = ("rank", "score", "both")


def _fmt(score: float) -> str:
    return f"{score:.4g}"


def annotate(cands: Sequence[Candidate], show: str = "rank", label: str = "first-stage") -> list[Candidate]:
    """Copies of ``cands`` whose text carries the first-stage note (see
    :mod:`rerank_rag._evidence`); ids, metadata and scores are kept.

    ``show="rank"``: ``"first-stage rank: 3 of 100"`` (the input position);
    ``"score"``: ``"first-stage score: 12.41"`` (the candidate's ``score``, required);
    ``"both"``: ``"first-stage rank: 3 of 100, score: 12.41"``.
    """
    if show not in _SHOW:
        raise ValueError(f"show must be one of {', '.join(_SHOW)}, got {show!r}")
    n = len(cands)
    out = []
    for i, c in enumerate(cands):
        parts = []
        if show in ("rank", "both"):
            parts.append(f"rank: {i + 1} of {n}")
        if show in ("score", "both"):
            s = c.score
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
                raise ValueError(
                    f"show={show!r} needs a finite first-stage score on every candidate; "
                    f"candidate {i} has {s!r} (pass scores, or use show='rank')"
                )
            parts.append(f"score: {_fmt(float(s))}")
        note = f"{label} " + ", ".join(parts)
        out.append(Candidate(text=EvidenceText(c.text, note), id=c.id, metadata=c.metadata, score=c.score))
    return out


def _prompt_of(ranker: Any) -> Any:
    return getattr(ranker, "prompt", None)


class FirstStageEvidence:
    """Wrap an LLM ranker; its prompts show each passage's first-stage rank or score.

    InsertRank (Seetharaman et al., 2025) puts each document's BM25 score next to it in
    a listwise prompt and reports gains on reasoning-heavy benchmarks (BRIGHT, R2MED)
    and TREC DL. Here the note follows the (truncated) passage::

        [3] The Eiffel Tower is in Paris ... (first-stage rank: 3 of 100)

    It works with every rerank-rag prompt (listwise, JointRank, pairwise, setwise,
    tournament, TDPart); the wrapped ranker is otherwise unchanged (same calls, same
    result contract; prompts grow by about 10 tokens per passage).

    Args:
        ranker: a ranker with a ``prompt`` that renders the note (every prompt of
            rerank-rag; a custom prompt must set ``renders_evidence = True`` and render
            :func:`rerank_rag._evidence.with_evidence`). Anything else raises
            ``TypeError``: the evidence would silently not be shown.
        show: ``"rank"`` (default), ``"score"`` (InsertRank's choice; needs every
            candidate's ``score``) or ``"both"``.
        label: what the note calls the first stage (e.g. ``"BM25"``).

    Whether it helps depends on the model reading the numbers; see the measurement in
    the docs (a simulator cannot tell).
    """

    def __init__(self, ranker: Any, *, show: str = "rank", label: str = "first-stage") -> None:
        if not (callable(getattr(ranker, "rank", None)) and callable(getattr(ranker, "arank", None))):
            raise TypeError(f"ranker must have rank() and arank(), got {type(ranker).__name__}")
        prompt = _prompt_of(ranker)
        if not getattr(prompt, "renders_evidence", False):
            raise TypeError(
                f"{ranker!r} has no prompt that shows first-stage evidence "
                f"(prompt: {type(prompt).__name__}); FirstStageEvidence needs an LLM ranker "
                "with a rerank-rag prompt (or a custom prompt with renders_evidence = True)"
            )
        if show not in _SHOW:
            raise ValueError(f"show must be one of {', '.join(_SHOW)}, got {show!r}")
        if not isinstance(label, str) or not label.strip():
            raise ValueError("label must be a non-empty string")
        self.ranker = ranker
        self.show = show
        self.label = " ".join(label.split())

    @property
    def judges_relevance(self) -> Any:
        return getattr(self.ranker, "judges_relevance", None)

    @property
    def prompt(self) -> Any:
        return _prompt_of(self.ranker)

    def __repr__(self) -> str:
        return f"FirstStageEvidence({self.ranker!r}, show={self.show!r})"

    def to_config(self) -> dict[str, Any]:
        inner = getattr(self.ranker, "to_config", None)
        return {
            "type": "first-stage-evidence",
            "show": self.show,
            "label": self.label,
            "ranker": inner() if callable(inner) else repr(self.ranker),
        }

    def _annotated(self, query: str, candidates: Sequence[CandidateLike]) -> list[Candidate]:
        check_query(query)
        return annotate(as_candidates(candidates), self.show, self.label)

    def rank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Rank with the wrapped ranker, each passage shown with its first-stage note."""
        return self.ranker.rank(query, self._annotated(query, candidates), top_n=top_n)  # type: ignore[no-any-return]

    async def arank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking:
        """Async twin of :meth:`rank`."""
        return await self.ranker.arank(query, self._annotated(query, candidates), top_n=top_n)  # type: ignore[no-any-return]
