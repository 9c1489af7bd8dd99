"""Protocols shared by the rankers (kept tiny and dependency-free).

* :class:`WindowPrompt`: how one window (a sliding-window step, a JointRank block) of
  passages is shown to an LLM and how its answer is read back. The listwise ranker and
  JointRank both use it, so every prompt style works in both.
* :class:`Scorer`: a pointwise relevance scorer (cross-encoder, bi-encoder, BM25, ...),
  usable by the pointwise ranker and as a JointRank block ranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .llm._base import Completion, LLMRequest

__all__ = ["WindowParse", "WindowPrompt", "Scorer"]


@dataclass(frozen=True, slots=True)
class WindowParse:
    """What a window's LLM answer said.

    Attributes:
        listed: 0-based positions (into the window) the model ranked, best first;
            unique and in range. May be partial: positions not listed were omitted
            (judged irrelevant, forgotten or cut off).
        repaired: True when the raw answer needed repair (duplicates, out-of-range or
            invalid ids dropped, or ids missing).
        scores: optional per-listed-position scores (e.g. first-token logprobs in the
            FIRST mode), aligned with ``listed``.
    """

    listed: tuple[int, ...]
    repaired: bool = False
    scores: tuple[float, ...] | None = None

    def full_order(self, n: int) -> list[int]:
        """``listed`` followed by the omitted positions in their window order."""
        seen = set(self.listed)
        return list(self.listed) + [i for i in range(n) if i not in seen]


@runtime_checkable
class WindowPrompt(Protocol):
    """Builds the request for one window and parses the answer.

    ``parse`` must never raise on malformed output unless ``strict`` is true (then it
    raises :class:`~rerank_rag.ParseError`); with nothing usable it returns an empty
    ``listed``.
    """

    name: str

    def build(self, query: str, passages: Sequence[str]) -> LLMRequest: ...

    def parse(self, completion: Completion, n: int, *, strict: bool = False) -> WindowParse: ...


@runtime_checkable
class Scorer(Protocol):
    """A pointwise relevance scorer: one float per passage, higher is more relevant."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]: ...
