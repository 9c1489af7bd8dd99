"""The tournament prompt: "select the m most relevant of these n passages"."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._errors import ParseError
from .._group_prompt import GroupPrompt, labels
from .._protocols import WindowParse
from .._types import check_int
from ..listwise._prompts import _label
from ..llm._base import Completion

__all__ = ["SelectPrompt"]


class SelectPrompt(GroupPrompt):
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
        max_query_tokens: truncation budget of the query (``None``: no truncation;
            default 256, as in the listwise prompts).
    """

    name = "select"
    default_id_style = "numeric"

    def __repr__(self) -> str:
        return (
            f"SelectPrompt(id_style={self.id_style!r}, "
            f"max_passage_tokens={self.max_passage_tokens!r}, "
            f"max_query_tokens={self.max_query_tokens!r})"
        )

    def _frame(
        self, query: str, n: int, picks: int | None
    ) -> tuple[str, tuple[str, ...], str, Mapping[str, Any]]:
        m = (n + 1) // 2 if picks is None else check_int("picks", picks)
        if not 1 <= m < n:
            raise ValueError(f"picks must be in [1, {n - 1}] for {n} passages, got {m}")
        alpha = self._alpha(n)
        plural = "s" if m > 1 else ""
        example = " > ".join(f"[{_label(i, alpha)}]" for i in (2, 0, 1)[: min(m, 3)] if i < n)
        before = (
            f"Select the {m} passage{plural} most relevant to the search query from the {n} "
            f"passages below.\n\nQUERY: {query}\n\nPASSAGES:\n"
        )
        after = (
            f"\n\nOutput only the ids of the {m} most relevant passage{plural}, most relevant "
            f"first, in the format {example}{' > ...' if m > 3 else ''}, and nothing else."
        )
        params = MappingProxyType({"max_tokens": self.answer_budget(m), "temperature": 0})
        return before, labels(n, alpha), after, params

    def parse(self, completion: Completion, n: int, *, strict: bool = False) -> WindowParse:
        """The ids named, best first (never raises unless ``strict``)."""
        parsed = super().parse(completion, n, strict=strict)
        if strict and not parsed.listed:
            raise ParseError(f"the answer names none of the {n} passages")
        return parsed
