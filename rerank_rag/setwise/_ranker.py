"""SetwiseRanker: heapsort or bubble sort where one call picks the best of a group."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._errors import LLMError
from .._family import (
    CallBook,
    FamilyRanker,
    bind_prompt,
    check_choice,
    check_int,
    positional,
    read_answer,
    resolve_prompt,
    scored,
)
from .._plan import Plan
from .._ranker import Result
from .._protocols import WindowParse, WindowPrompt
from .._subplans import SubPlan
from .._types import Candidate, Usage
from ..listwise._prompts import DEFAULT_MAX_QUERY_TOKENS
from ..llm._adapt import as_backend
from ..llm._base import Completion, LLMRequest
from ._prompt import SCORINGS, PickBestPrompt
from ._sorts import bubble_top, heap_top

__all__ = ["SetwiseRanker", "read_pick"]

log = logging.getLogger("rerank_rag.setwise")

METHODS = ("heapsort", "bubblesort")


def read_pick(
    prompt: WindowPrompt, outcome: Completion | LLMError, m: int, book: CallBook, usage: Usage
) -> WindowParse | None:
    """The parse of one pick-best answer over ``m`` passages, or ``None`` when the call
    failed, named no valid passage (counted by ``book``; raises when strict) or named
    nothing (a relevant-only answer: no preference either)."""
    parsed = read_answer(prompt, outcome, m, book, usage)
    return parsed if parsed is not None and parsed.listed else None


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
        id_style: ``"alpha"`` or ``"numeric"`` labels (``None``: the prompt's default,
            letters).
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        max_query_tokens: truncation budget of the query (``None``: no truncation;
            default 256, as in the listwise rankers). ``id_style`` and both budgets
            configure the default prompt; a prompt object carries its own settings.
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

    kind = "setwise"

    def __init__(
        self,
        llm: Any,
        *,
        method: str = "heapsort",
        block_size: int = 4,
        sort_depth: int = 10,
        scoring: str = "generation",
        prompt: WindowPrompt | None = None,
        id_style: str | None = None,
        max_passage_tokens: int | None = 300,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
        strict: bool = False,
    ) -> None:
        self.method = check_choice("method", method, METHODS)
        self.block_size = check_int("block_size", block_size, 3 if method == "heapsort" else 2)
        self.sort_depth = check_int("sort_depth", sort_depth, 1)
        self.scoring = check_choice("scoring", scoring, SCORINGS)
        kw = self._settings(strict, id_style, max_passage_tokens, max_query_tokens)
        self.prompt: WindowPrompt = resolve_prompt(
            prompt, lambda: PickBestPrompt(scoring=self.scoring, **kw)
        )
        self.llm = as_backend(llm)

    def _own(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "block_size": self.block_size,
            "sort_depth": self.sort_depth,
            "scoring": self.scoring,
        }

    def _judge(
        self, request: Callable[..., LLMRequest], book: CallBook, usage: Usage
    ) -> Callable[[list[int]], SubPlan[int]]:
        prompt = self.prompt
        clean = prompt.clean_answers if isinstance(prompt, PickBestPrompt) else None

        def judge(group: list[int]) -> SubPlan[int]:
            (outcome,) = yield [request(group)]
            if clean is not None and outcome.__class__ is Completion:
                i = clean(len(group)).get(outcome.text)  # a clean label: no parser
                if i is not None:
                    return i
            parsed = read_pick(prompt, outcome, len(group), book, usage)
            if parsed is None:  # fallback: the candidate retrieved first wins
                return min(range(len(group)), key=group.__getitem__)
            return parsed.listed[0]

        return judge

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Result]:
        n = len(cands)
        request = bind_prompt(self.prompt, query, [c.text for c in cands])
        book = CallBook(usage, strict=self.strict, log=log, what=f"setwise {self.method}")
        judge = self._judge(request, book, usage)
        if self.method == "heapsort":
            head = yield from heap_top(list(range(n)), self.block_size - 1, self.sort_depth, judge)
        else:
            head = yield from bubble_top(list(range(n)), self.block_size, self.sort_depth, judge)
        book.report("those comparisons were decided by first-stage order")
        seen = set(head)
        order = head + [i for i in range(n) if i not in seen]
        return scored(order, positional(n), positional(n))
