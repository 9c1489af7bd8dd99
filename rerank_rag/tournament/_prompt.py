"""The tournament prompt: "select the m most relevant of these n passages"."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from .._errors import ParseError
from .._evidence import with_evidence
from .._protocols import WindowParse
from .._text import collapse_whitespace, prepare_passage
from ..listwise._parse import parse_permutation
from ..llm._base import Completion, LLMRequest

__all__ = ["SelectPrompt"]

_ALPHA_MAX = 26


def _label(i: int, alpha: bool) -> str:
    return chr(65 + i) if alpha else str(i + 1)


@lru_cache(maxsize=256)
def _frame(query: str, n: int, m: int, alpha: bool) -> tuple[str, str, tuple[str, ...]]:
    """Text before and after the passages, and the labels (cached per query and shape)."""
    plural = "s" if m > 1 else ""
    labels = tuple(f"[{_label(i, alpha)}] " for i in range(n))
    example = " > ".join(f"[{_label(i, alpha)}]" for i in (2, 0, 1)[: min(m, 3)] if i < n)
    before = (
        f"Select the {m} passage{plural} most relevant to the search query from the {n} "
        f"passages below.\n\nQUERY: {collapse_whitespace(query)}\n\nPASSAGES:\n"
    )
    after = (
        f"\n\nOutput only the ids of the {m} most relevant passage{plural}, most relevant "
        f"first, in the format {example}{' > ...' if m > 3 else ''}, and nothing else."
    )
    return before, after, labels


class SelectPrompt:
    """Ask for the ``picks`` most relevant passages of a group, best first (TourRank).

    The passages are shown as ``[1] text`` lines (letters with ``id_style="alpha"`` for
    groups of up to 26); the answer is read with the listwise parser
    (:func:`~rerank_rag.listwise.parse_permutation`: ``[3] > [1]``, ``3, 1``,
    ``Passage 3`` ...). Listing fewer ids than asked is allowed (only those advance);
    the parse is then marked repaired. Listing more is not a repair (the ranker keeps
    the first ``picks``).

    Args:
        id_style: ``"numeric"`` (default) or ``"alpha"``.
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        max_tokens: answer budget; default ``4 * picks + 16``.
    """

    name = "select"
    expect_all = False
    renders_evidence = True

    def __init__(
        self,
        *,
        id_style: str = "numeric",
        max_passage_tokens: int | None = 300,
        max_tokens: int | None = None,
    ) -> None:
        if id_style not in ("alpha", "numeric"):
            raise ValueError(f"id_style must be 'numeric' or 'alpha', got {id_style!r}")
        if max_passage_tokens is not None and (
            isinstance(max_passage_tokens, bool)
            or not isinstance(max_passage_tokens, int)
            or max_passage_tokens < 1
        ):
            raise ValueError(f"max_passage_tokens must be a positive int or None, got {max_passage_tokens!r}")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ValueError(f"max_tokens must be a positive int or None, got {max_tokens!r}")
        self.id_style = id_style
        self.max_passage_tokens = max_passage_tokens
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"SelectPrompt(id_style={self.id_style!r}, max_passage_tokens={self.max_passage_tokens!r})"

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "max_tokens": self.max_tokens,
        }

    def _alpha(self, n: int) -> bool:
        return self.id_style == "alpha" and n <= _ALPHA_MAX

    def build(self, query: str, passages: Sequence[str], *, picks: int | None = None) -> LLMRequest:
        """The request for one group; ``picks`` defaults to half the group (rounded up)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if isinstance(passages, str) or len(passages) < 2:
            raise ValueError("a selection needs a sequence of at least 2 passages")
        n = len(passages)
        m = (n + 1) // 2 if picks is None else picks
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m < n:
            raise ValueError(f"picks must be an int in [1, {n - 1}] for {n} passages, got {picks!r}")
        before, after, labels = _frame(query, n, m, self._alpha(n))
        budget = self.max_passage_tokens
        lines = []
        for i, p in enumerate(passages):
            if not isinstance(p, str):
                raise TypeError(f"passage {i} must be a string, got {type(p).__name__}")
            lines.append(labels[i] + with_evidence(prepare_passage(p, budget), p))
        tokens = self.max_tokens if self.max_tokens is not None else 4 * m + 16
        params = MappingProxyType({"max_tokens": tokens, "temperature": 0})
        # the message is valid by construction: skip LLMRequest.chat's checks
        return LLMRequest(
            messages=({"role": "user", "content": before + "\n".join(lines) + after},), params=params
        )

    def parse(self, completion: Completion, n: int, *, strict: bool = False) -> WindowParse:
        """The ids named, best first (never raises unless ``strict``)."""
        parsed = parse_permutation(
            completion.text,
            n,
            id_style="alpha" if self._alpha(n) else "numeric",
            strict=strict,
            expect_all=False,
        )
        if strict and not parsed.listed:
            raise ParseError(f"the answer names none of the {n} passages")
        return parsed
