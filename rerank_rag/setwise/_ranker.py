"""SetwiseRanker: heapsort or bubble sort where one call picks the best of a group."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .._errors import LLMError, ParseError
from .._family import CallBook, FamilyRanker, Scored, check_choice, check_int, positional
from .._plan import Plan
from .._protocols import WindowParse, WindowPrompt
from .._subplans import SubPlan
from .._types import Candidate, Usage
from ..llm._adapt import as_backend
from ..llm._base import Completion
from ._prompt import SCORINGS, PickBestPrompt
from ._sorts import bubble_top, heap_top

__all__ = ["SetwiseRanker", "read_pick"]

log = logging.getLogger("rerank_rag.setwise")

METHODS = ("heapsort", "bubblesort")


def read_pick(
    prompt: WindowPrompt, outcome: Completion | LLMError, m: int, book: CallBook, usage: Usage
) -> WindowParse | None:
    """The parse of one pick-best answer over ``m`` passages, or ``None`` when the call
    failed or named no valid passage (counted by ``book``; raises when strict)."""
    if isinstance(outcome, LLMError):
        book.error(outcome, f"a group of {m}")
        return None
    try:
        parsed = prompt.parse(outcome, m, strict=book.strict)
    except ParseError:
        if book.strict:
            raise
        book.unusable_answer("unparsable answer")
        return None
    except Exception as exc:  # noqa: BLE001 - a custom prompt's bug must not lose documents
        book.unusable_answer(f"prompt parse failed: {type(exc).__name__}: {exc}")
        return None
    listed: list[int] = []
    for p in getattr(parsed, "listed", ()):
        if isinstance(p, int) and not isinstance(p, bool) and 0 <= p < m and p not in listed:
            listed.append(p)
    repaired = bool(getattr(parsed, "repaired", False)) or len(listed) != len(parsed.listed)
    if not listed:
        if repaired:
            book.unusable_answer(f"the answer names none of the {m} passages: {outcome.text[:80]!r}")
        return None  # "nothing relevant" (relevant-only prompts): no preference either
    if repaired:
        usage.parse_repairs += 1
    scores = getattr(parsed, "scores", None)
    if scores is not None and len(scores) != len(parsed.listed):
        scores = None
    if scores is not None and len(listed) != len(parsed.listed):
        scores = None
    return WindowParse(listed=tuple(listed), repaired=repaired, scores=scores)


class SetwiseRanker(FamilyRanker):
    """Setwise ranking (Zhuang et al., SIGIR 2024): sort by "which is the most relevant?".

    Each call shows a group of up to ``block_size`` passages and asks which one is the
    most relevant. ``method="heapsort"`` runs a partial heapsort on a heap with
    ``block_size - 1`` children per node (a parent and its children are one call);
    ``"bubblesort"`` runs ``sort_depth`` bubble passes with groups of ``block_size``.
    Both stop once the best ``sort_depth`` are sorted; the other candidates follow in
    first-stage order.

    Calls and rounds for 100 candidates, ``block_size=4`` (the paper's c=3),
    ``sort_depth=10``: heapsort about 125 calls in about 45 rounds (the heap build sifts
    one level at a time in parallel); bubble sort about 320 calls in about 50 rounds (the
    passes are pipelined, each trailing the previous one by two groups).

    Args:
        llm: an LLM backend or framework model (see :func:`rerank_rag.llm.as_backend`).
        method: ``"heapsort"`` (default) or ``"bubblesort"``.
        block_size: passages per call (>= 3 for heapsort, >= 2 for bubble sort); the
            paper's ``num_child`` is ``block_size - 1``.
        sort_depth: how many leading results are sorted (>= 1).
        scoring: ``"generation"`` (read the answer) or ``"logprobs"`` (first-token
            log-probabilities of the labels; needs a backend that returns them).
        prompt: ``None`` (a :class:`PickBestPrompt`) or any
            :class:`~rerank_rag.WindowPrompt` object whose first listed id is taken as the
            pick (e.g. a :class:`~rerank_rag.FirstTokenPrompt`; a relevant-only answer
            naming nothing is decided by first-stage order, not counted as a failure).
        id_style: ``"alpha"`` (default) or ``"numeric"`` labels.
        max_passage_tokens: truncation budget per passage.
        strict: raise instead of degrading on a failed call or unusable answer.

    Failures: a failed call (transient) or an answer naming no valid label is decided
    by first-stage order (the candidate retrieved first wins), counted in
    ``usage.fallbacks`` and logged once per ranking; if every call fails the result is
    the first-stage order. A non-transient error (:class:`~rerank_rag.LLMConfigurationError`)
    is raised.

    Scores and relevance are positional (``1 - rank / n``): setwise sorting compares,
    it does not judge relevance (``judges_relevance`` is False).
    """

    judges_relevance = False

    def __init__(
        self,
        llm: Any,
        *,
        method: str = "heapsort",
        block_size: int = 4,
        sort_depth: int = 10,
        scoring: str = "generation",
        prompt: WindowPrompt | None = None,
        id_style: str = "alpha",
        max_passage_tokens: int | None = 300,
        strict: bool = False,
    ) -> None:
        self.method = check_choice("method", method, METHODS)
        self.block_size = check_int("block_size", block_size, 3 if method == "heapsort" else 2)
        self.sort_depth = check_int("sort_depth", sort_depth, 1)
        self.scoring = check_choice("scoring", scoring, SCORINGS)
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
        self.strict = strict
        if prompt is None:
            self.prompt: WindowPrompt = PickBestPrompt(
                scoring=scoring, id_style=id_style, max_passage_tokens=max_passage_tokens
            )
        elif callable(getattr(prompt, "build", None)) and callable(getattr(prompt, "parse", None)):
            self.prompt = prompt
        else:
            raise TypeError(f"prompt must be None or a WindowPrompt, got {type(prompt).__name__}")
        self.id_style = id_style
        self.max_passage_tokens = max_passage_tokens
        self.llm = as_backend(llm)

    def __repr__(self) -> str:
        return (
            f"SetwiseRanker(method={self.method!r}, block_size={self.block_size}, "
            f"sort_depth={self.sort_depth}, scoring={self.scoring!r})"
        )

    def to_config(self) -> dict[str, Any]:
        """JSON-able settings (the LLM by its own ``to_config``, if any)."""
        return {
            "type": "setwise",
            "method": self.method,
            "block_size": self.block_size,
            "sort_depth": self.sort_depth,
            "scoring": self.scoring,
            "prompt": getattr(self.prompt, "name", type(self.prompt).__name__),
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "strict": self.strict,
            "llm": self._llm_config(),
        }

    def _judge(self, query: str, texts: Sequence[str], book: CallBook, usage: Usage):  # type: ignore[no-untyped-def]
        def judge(group: list[int]) -> SubPlan[int]:
            (outcome,) = yield [self.prompt.build(query, [texts[i] for i in group])]
            parsed = read_pick(self.prompt, outcome, len(group), book, usage)
            if parsed is None:  # fallback: the candidate retrieved first wins
                return min(range(len(group)), key=group.__getitem__)
            return parsed.listed[0]

        return judge

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Scored]:
        n = len(cands)
        texts = [c.text for c in cands]
        book = CallBook(usage, strict=self.strict, log=log, what=f"setwise {self.method}")
        judge = self._judge(query, texts, book, usage)
        if self.method == "heapsort":
            head = yield from heap_top(list(range(n)), self.block_size - 1, self.sort_depth, judge)
        else:
            head = yield from bubble_top(list(range(n)), self.block_size, self.sort_depth, judge)
        book.report("those comparisons were decided by first-stage order")
        seen = set(head)
        order = head + [i for i in range(n) if i not in seen]
        return Scored(order, positional(n), positional(n))
