"""PairwiseRanker: PRP (Qin et al. 2023), every comparison asked in both orders."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from .._errors import LLMError
from .._family import CallBook, FamilyRanker, Scored, check_choice, check_int, monotone, positional
from .._plan import Plan
from .._protocols import WindowPrompt
from .._subplans import SubPlan
from .._types import Candidate, Usage
from ..jointrank._aggregators import Aggregator, get_aggregator, order_from_scores
from ..jointrank._comparisons import Comparisons
from ..llm._adapt import as_backend
from ..llm._base import Completion
from ..setwise._prompt import SCORINGS, PickBestPrompt
from ..setwise._ranker import read_pick
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
        id_style: ``"alpha"`` (A/B, default) or ``"numeric"`` (1/2) labels.
        max_passage_tokens: truncation budget per passage.
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

    def __init__(
        self,
        llm: Any,
        *,
        method: str = "heapsort",
        sort_depth: int = 10,
        scoring: str = "generation",
        aggregator: str | Aggregator = "win_rate",
        prompt: WindowPrompt | None = None,
        id_style: str = "alpha",
        max_passage_tokens: int | None = 300,
        strict: bool = False,
    ) -> None:
        self.method = check_choice("method", method, METHODS)
        self.sort_depth = check_int("sort_depth", sort_depth, 1)
        self.scoring = check_choice("scoring", scoring, SCORINGS)
        self.aggregator = get_aggregator(aggregator)
        self.aggregator_name = (
            aggregator if isinstance(aggregator, str) else getattr(aggregator, "__name__", "custom")
        )
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
            f"PairwiseRanker(method={self.method!r}, sort_depth={self.sort_depth}, "
            f"scoring={self.scoring!r}, aggregator={self.aggregator_name!r})"
        )

    def to_config(self) -> dict[str, Any]:
        """JSON-able settings (the LLM by its own ``to_config``, if any)."""
        return {
            "type": "pairwise",
            "method": self.method,
            "sort_depth": self.sort_depth,
            "scoring": self.scoring,
            "aggregator": self.aggregator_name,
            "prompt": getattr(self.prompt, "name", type(self.prompt).__name__),
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "strict": self.strict,
            "llm": self._llm_config(),
        }

    @staticmethod
    def expected_calls(n: int, method: str = "allpair") -> int | None:
        """Calls of ``allpair`` for ``n`` candidates (``None``: adaptive methods)."""
        return n * (n - 1) if method == "allpair" else None

    # ------------------------------------------------------------------ one answer

    def _first_wins(self, outcome: Completion | LLMError, book: CallBook, usage: Usage) -> float | None:
        """Probability that the passage shown first ([A]) is the better one; ``None``
        when the call failed or named neither passage. Generation: 1.0 or 0.0."""
        parsed = read_pick(self.prompt, outcome, 2, book, usage)
        if parsed is None:
            return None
        scores = parsed.scores
        if self.scoring == "logprobs" and scores is not None:
            lp = dict(zip(parsed.listed, scores))
            a, b = lp.get(0, -math.inf), lp.get(1, -math.inf)
            if a == b:
                return 0.5
            if a == -math.inf or b == -math.inf:
                return 1.0 if b == -math.inf else 0.0
            return 1.0 / (1.0 + math.exp(b - a))
        return 1.0 if parsed.listed[0] == 0 else 0.0

    # ------------------------------------------------------------------ all pairs

    def _allpair(self, query: str, texts: Sequence[str], usage: Usage, book: CallBook) -> Plan[Scored]:
        n = len(texts)
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        build = self.prompt.build
        outcomes = yield [build(query, [texts[i], texts[j]]) for i, j in pairs]
        verdicts: list[tuple[int, int]] = []
        for (i, j), outcome in zip(pairs, outcomes):
            p = self._first_wins(outcome, book, usage)
            if p is None or p == 0.5:
                continue
            verdicts.append((i, j) if p > 0.5 else (j, i))
        book.report("those answers were left out of the aggregation")
        if not verdicts:
            return Scored(list(range(n)), positional(n), positional(n))
        comparisons = Comparisons.from_pairs(n, verdicts)
        scores = self.aggregator(comparisons)
        if len(scores) != n:
            raise ValueError(f"aggregator returned {len(scores)} scores for {n} candidates")
        order, ordered = order_from_scores(scores)
        wins, losses = comparisons.wins, comparisons.losses
        share = [wins[i] / (wins[i] + losses[i]) if wins[i] + losses[i] else 0.0 for i in order]
        return Scored(order, ordered, monotone(share))

    # ------------------------------------------------------------------ sorting

    def _prefers(self, query: str, texts: Sequence[str], x: int, y: int, book: CallBook, usage: Usage) -> SubPlan[bool]:
        """Whether ``x`` beats ``y`` (both orders asked at once; ties keep ``y``)."""
        o1, o2 = yield [
            self.prompt.build(query, [texts[x], texts[y]]),
            self.prompt.build(query, [texts[y], texts[x]]),
        ]
        p1 = self._first_wins(o1, book, usage)
        p2 = self._first_wins(o2, book, usage)
        votes = [p for p in (p1, None if p2 is None else 1.0 - p2) if p is not None]
        if not votes:  # no verdict: first-stage order decides
            return x < y
        if self.scoring == "generation" and len(votes) == 2:
            return votes[0] == 1.0 and votes[1] == 1.0  # both orders must agree
        return sum(votes) / len(votes) > 0.5

    def _judge(self, query: str, texts: Sequence[str], book: CallBook, usage: Usage):  # type: ignore[no-untyped-def]
        def judge(group: list[int]) -> SubPlan[int]:
            best = 0
            for j in range(1, len(group)):
                if (yield from self._prefers(query, texts, group[j], group[best], book, usage)):
                    best = j
            return best

        return judge

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Scored]:
        n = len(cands)
        texts = [c.text for c in cands]
        book = CallBook(usage, strict=self.strict, log=log, what=f"pairwise {self.method}")
        if self.method == "allpair":
            return (yield from self._allpair(query, texts, usage, book))
        judge = self._judge(query, texts, book, usage)
        if self.method == "heapsort":
            head = yield from heap_top(list(range(n)), 2, self.sort_depth, judge)
        else:
            head = yield from bubble_top(list(range(n)), 2, self.sort_depth, judge)
        book.report("those comparisons were decided by the answers left, or first-stage order")
        seen = set(head)
        order = head + [i for i in range(n) if i not in seen]
        return Scored(order, positional(n), positional(n))
