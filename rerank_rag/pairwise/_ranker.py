"""PairwiseRanker: PRP (Qin et al. 2023), every comparison asked in both orders."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from .._errors import LLMError
from .._family import (
    CallBook,
    FamilyRanker,
    bind_prompt,
    check_choice,
    check_int,
    monotone,
    positional,
    read_answer,
    resolve_prompt,
    scored,
)
from .._plan import Plan
from .._relevance import sigmoid
from .._ranker import Result
from .._protocols import WindowPrompt
from .._subplans import SubPlan
from .._types import Candidate, Usage
from ..jointrank._aggregators import Aggregator, aggregator_name, get_aggregator, order_from_scores
from ..jointrank._comparisons import Comparisons
from ..listwise._prompts import DEFAULT_MAX_QUERY_TOKENS
from ..llm._adapt import as_backend
from ..llm._base import Completion, LLMRequest
from ..setwise._prompt import SCORINGS, PickBestPrompt
from ..setwise._sorts import bubble_top, heap_top

__all__ = ["PairwiseRanker"]

log = logging.getLogger("rerank_rag.pairwise")

METHODS = ("allpair", "heapsort", "bubblesort")


class PairwiseRanker(FamilyRanker):
    """Pairwise ranking prompting (PRP, Qin et al. 2023): "which of these two is better?"

    Every comparison of ``x`` and ``y`` is asked twice, ``(x, y)`` and ``(y, x)``, to
    cancel the model's preference for a position.

    * ``method="allpair"``: all ``n (n - 1)`` ordered pairs in **one round**, each answer
      a comparison; the comparisons are aggregated like JointRank's (``aggregator``,
      default ``"win_rate"``, which on complete answers orders exactly like PRP's points:
      +1 for a consistent win, +0.5 each for an inconsistent pair). 100 candidates cost
      9,900 calls (380 for 20): the most robust and the most expensive.
    * ``method="heapsort"``: a partial binary heapsort; a node and its two children are
      compared by a knockout (left child vs parent, then right child vs the winner),
      one round of two calls per comparison. About 2 * 115 calls for the top-10 of 100.
    * ``method="bubblesort"``: ``sort_depth`` bubble passes of adjacent comparisons
      from the bottom (PRP's sliding-K); the passes are pipelined, so 100 candidates
      and ``sort_depth=10`` take about 1,900 calls in about 120 rounds instead of 945.

    A candidate beats another in a sorting step when both orders agree (generation) or
    when the mean probability of preferring it over both orders exceeds 0.5
    (``scoring="logprobs"``, from the first-token log-probabilities of ``A`` and ``B``);
    otherwise the one ahead in the current order stays ahead.

    Args:
        llm: an LLM backend or framework model.
        method: ``"allpair"``, ``"heapsort"`` (default) or ``"bubblesort"``.
        sort_depth: how many leading results the sorting methods sort (the others follow
            in first-stage order); ``allpair`` orders everything.
        scoring: ``"generation"`` or ``"logprobs"``.
        aggregator: (allpair) a JointRank aggregator name or callable.
        prompt: ``None`` (a two-passage :class:`~rerank_rag.setwise.PickBestPrompt`) or
            a :class:`~rerank_rag.WindowPrompt` object read like it.
        id_style: ``"alpha"`` (A/B) or ``"numeric"`` (1/2) labels (``None``: the
            prompt's default, letters).
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        max_query_tokens: truncation budget of the query (``None``: no truncation;
            default 256, as in the listwise rankers). ``id_style`` and both budgets
            configure the default prompt; a prompt object carries its own settings.
        strict: raise instead of degrading on a failed call or unusable answer.

    Failures: a failed call (transient) or an answer naming neither passage gives no
    verdict (counted in ``usage.fallbacks``, logged once per ranking). In ``allpair`` the
    pair then contributes only its other answer; in the sorting methods a comparison
    with no verdict left is decided by first-stage order. If every call fails the result
    is the first-stage order. Non-transient errors are raised.

    Scores: ``allpair`` gives the aggregator's scores; the sorting methods positional
    ``1 - rank / n``. Relevance: ``allpair`` the share of its comparisons a candidate won
    (made non-increasing along the order), the sorting methods positional. PRP compares,
    it does not judge relevance (``judges_relevance`` is False).
    """

    judges_relevance = False

    kind = "pairwise"

    def __init__(
        self,
        llm: Any,
        *,
        method: str = "heapsort",
        sort_depth: int = 10,
        scoring: str = "generation",
        aggregator: str | Aggregator = "win_rate",
        prompt: WindowPrompt | None = None,
        id_style: str | None = None,
        max_passage_tokens: int | None = 300,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
        strict: bool = False,
    ) -> None:
        self.method = check_choice("method", method, METHODS)
        self.sort_depth = check_int("sort_depth", sort_depth, 1)
        self.scoring = check_choice("scoring", scoring, SCORINGS)
        self.aggregator = get_aggregator(aggregator)
        self.aggregator_name = aggregator_name(aggregator)
        kw = self._settings(strict, id_style, max_passage_tokens, max_query_tokens)
        self.prompt: WindowPrompt = resolve_prompt(
            prompt, lambda: PickBestPrompt(scoring=self.scoring, **kw)
        )
        self.llm = as_backend(llm)

    def _own(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "sort_depth": self.sort_depth,
            "scoring": self.scoring,
            "aggregator": self.aggregator_name,
        }

    @staticmethod
    def expected_calls(n: int, method: str = "allpair") -> int | None:
        """Calls of ``allpair`` for ``n`` candidates (``None``: adaptive methods)."""
        return n * (n - 1) if method == "allpair" else None

    # ------------------------------------------------------------------ one answer

    def _first_wins(self, outcome: Completion | LLMError, book: CallBook, usage: Usage) -> float | None:
        """Probability that the passage shown first ([A]) is the better one; ``None``
        when the call failed or named neither passage. Generation: 1.0 or 0.0."""
        parsed = read_answer(self.prompt, outcome, 2, book, usage)
        if parsed is None or not parsed.listed:
            return None
        scores = parsed.scores
        if self.scoring == "logprobs" and scores is not None:
            lp = dict(zip(parsed.listed, scores))
            a, b = lp.get(0, -math.inf), lp.get(1, -math.inf)
            if a == b:  # both -inf too (their difference would be NaN)
                return 0.5
            return sigmoid(a - b)  # overflow-safe; -inf on one side gives 0.0 or 1.0
        return 1.0 if parsed.listed[0] == 0 else 0.0

    def _reader(self, book: CallBook, usage: Usage) -> Callable[[Any], float | None]:
        """:meth:`_first_wins` for one ranking; a clean one-label answer ("A", "B") of
        the pick-best prompt is read without the parser (same result)."""
        slow = self._first_wins
        clean = self.prompt.clean_answers(2) if isinstance(self.prompt, PickBestPrompt) else {}

        def first_wins(outcome: Any) -> float | None:
            if outcome.__class__ is Completion:
                i = clean.get(outcome.text)
                if i is not None:
                    return 1.0 if i == 0 else 0.0
            return slow(outcome, book, usage)

        return first_wins

    # ------------------------------------------------------------------ all pairs

    def _allpair(
        self, request: Callable[..., LLMRequest], n: int, usage: Usage, book: CallBook
    ) -> Plan[Result]:
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        outcomes = yield [request(pair) for pair in pairs]
        verdicts: list[tuple[int, int]] = []
        first_wins = self._reader(book, usage)
        for (i, j), outcome in zip(pairs, outcomes):
            p = first_wins(outcome)
            if p is None or p == 0.5:
                continue
            verdicts.append((i, j) if p > 0.5 else (j, i))
        book.report("those answers were left out of the aggregation")
        if not verdicts:
            return scored(list(range(n)), positional(n), positional(n))
        comparisons = Comparisons.from_pairs(n, verdicts)
        scores = self.aggregator(comparisons)
        if len(scores) != n:
            raise ValueError(f"aggregator returned {len(scores)} scores for {n} candidates")
        order, ordered = order_from_scores(scores)
        wins, losses = comparisons.wins, comparisons.losses
        share = [wins[i] / (wins[i] + losses[i]) if wins[i] + losses[i] else 0.0 for i in order]
        return scored(order, ordered, monotone(share))

    # ------------------------------------------------------------------ sorting

    def _judge(
        self, request: Callable[..., LLMRequest], book: CallBook, usage: Usage
    ) -> Callable[[list[int]], SubPlan[int]]:
        first_wins = self._reader(book, usage)
        both_agree = self.scoring == "generation"

        # bubble passes compare again the pairs that did not swap: build each prompt once
        built: dict[tuple[int, int], LLMRequest] = {}

        def build(pair: tuple[int, int]) -> LLMRequest:
            req = built[pair] = request(pair)
            return req

        def verdict(x: int, y: int, o1: Any, o2: Any) -> bool:
            """Whether ``x`` beats ``y`` from the answers to ``(x, y)`` and ``(y, x)``."""
            p1 = first_wins(o1)
            p2 = first_wins(o2)
            if p1 is not None and p2 is not None:
                if both_agree:  # both orders must agree
                    return p1 == 1.0 and p2 == 0.0
                return (p1 + (1.0 - p2)) / 2 > 0.5
            if p1 is not None:
                return p1 > 0.5
            if p2 is not None:
                return 1.0 - p2 > 0.5
            return x < y  # no verdict: first-stage order decides

        def judge(group: list[int]) -> SubPlan[int]:
            """The best of ``group`` by a knockout; each comparison asks both orders at
            once (ties keep the one ahead)."""
            best = group[0]
            for x in group[1:]:
                k1, k2 = (x, best), (best, x)
                o1, o2 = yield [built.get(k1) or build(k1), built.get(k2) or build(k2)]
                if verdict(x, best, o1, o2):
                    best = x
            return group.index(best)

        return judge

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Result]:
        n = len(cands)
        request = bind_prompt(self.prompt, query, [c.text for c in cands])
        book = CallBook(usage, strict=self.strict, log=log, what=f"pairwise {self.method}")
        if self.method == "allpair":
            return (yield from self._allpair(request, n, usage, book))
        judge = self._judge(request, book, usage)
        if self.method == "heapsort":
            head = yield from heap_top(list(range(n)), 2, self.sort_depth, judge)
        else:
            head = yield from bubble_top(list(range(n)), 2, self.sort_depth, judge)
        book.report("those comparisons were decided by the answers left, or first-stage order")
        seen = set(head)
        order = head + [i for i in range(n) if i not in seen]
        return scored(order, positional(n), positional(n))
