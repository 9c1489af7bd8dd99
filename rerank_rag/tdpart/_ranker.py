"""TDPartRanker: top-down partitioning (Parry et al., 2024) around a pivot."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .._errors import LLMError, ParseError
from .._family import CallBook, FamilyRanker, Scored, check_int, positional
from .._plan import Plan
from .._protocols import WindowPrompt
from .._types import Candidate, Usage
from ..llm._adapt import as_backend
from ..llm._base import Completion

__all__ = ["TDPartRanker"]

log = logging.getLogger("rerank_rag.tdpart")


class TDPartRanker(FamilyRanker):
    """Top-down partitioning: rank the head first, around a pivot, and stop early.

    1. Rank the first ``block_size`` candidates in one call. The candidate at rank
       ``sort_depth`` (0-based) becomes the *pivot*; the ones above it are the
       candidates for the head, the ones below it are settled behind it.
    2. Split the other candidates into blocks of ``block_size - 1`` and show each with the
       pivot (first); **all these blocks go out in one parallel round**. Whatever a block
       ranks above the pivot joins the head candidates, the rest is settled behind it.
    3. If nothing beat the pivot, the head and the pivot are final. Otherwise every head
       candidate starts again at 1; each repetition settles the pivot and the
       ``block_size - sort_depth - 1`` candidates ranked below it, so it ends.

    100 candidates, ``block_size=20``, ``sort_depth=10``, first-stage order good enough
    that the head fits one block after the first partition: 1 + 5 + 1 = 7 calls in 3
    rounds (a sliding window needs 9 calls in 9 rounds); each further repetition adds 2
    rounds. Only the head is sorted precisely; deeper candidates are partitioned.

    Compared with the paper's code: the blocks of step 2 run in parallel (as in the
    JointRank reproduction), so every remaining candidate is compared with the pivot
    and all that beat it go on (the sequential original stops collecting at a
    ``buffer`` of 20 and settles the unseen rest behind the pivot, whatever it holds);
    settled groups are ordered correctly across rounds (a later group is better, so it
    goes first; the original appends it after the earlier ones); within a settled
    group, the candidates the model listed come before those it left out (only
    relevant-only prompts leave any out).

    Args:
        llm: an LLM backend or framework model.
        prompt: a listwise prompt name (``"rankgpt"``, default; ``"relevant-only"``;
            ``"first-token"``) or a :class:`~rerank_rag.WindowPrompt` object.
        block_size: candidates per call (>= 3).
        sort_depth: the pivot's rank in the first block; the head that is sorted
            precisely (1 <= sort_depth < block_size).
        max_passage_tokens: truncation budget per passage (prompt names only).
        id_style: ``"numeric"`` or ``"alpha"`` ids (prompt names only).
        strict: raise instead of degrading on a failed call or unusable answer.

    Failures: a block whose call fails (transient) or whose answer names no valid id
    keeps the order it was shown in (the pivot first: nothing beats it), counted in
    ``usage.fallbacks`` and logged once; if every call fails the result is the
    first-stage order. Non-transient errors raise.

    Scores: positional. Relevance: with a prompt that may leave out irrelevant
    passages (``"relevant-only"``, ``judges_relevance`` True) 1.0 for a candidate listed
    in the last block it was shown in and 0.0 otherwise, made non-increasing along the
    final order (pool-adjacent-violators); with other prompts positional.
    """

    def __init__(
        self,
        llm: Any,
        *,
        prompt: str | WindowPrompt = "rankgpt",
        block_size: int = 20,
        sort_depth: int = 10,
        max_passage_tokens: int | None = 300,
        id_style: str | None = None,
        strict: bool = False,
    ) -> None:
        self.block_size = check_int("block_size", block_size, 3)
        self.sort_depth = check_int("sort_depth", sort_depth, 1)
        if sort_depth >= block_size:
            raise ValueError(f"sort_depth ({sort_depth}) must be < block_size ({block_size})")
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
        self.strict = strict
        if isinstance(prompt, str):
            from ..listwise import get_prompt

            kw: dict[str, Any] = {"max_passage_tokens": max_passage_tokens}
            if id_style is not None:
                kw["id_style"] = id_style
            self.prompt: WindowPrompt = get_prompt(prompt, **kw)
        elif callable(getattr(prompt, "build", None)) and callable(getattr(prompt, "parse", None)):
            self.prompt = prompt
        else:
            raise TypeError(f"prompt must be a prompt name or a WindowPrompt, got {type(prompt).__name__}")
        self.max_passage_tokens = max_passage_tokens
        self.id_style = id_style
        self.llm = as_backend(llm)

    @property
    def judges_relevance(self) -> bool:  # type: ignore[override]
        """True when the prompt lets the model leave irrelevant passages out."""
        return getattr(self.prompt, "expect_all", True) is False

    def __repr__(self) -> str:
        return (
            f"TDPartRanker(prompt={getattr(self.prompt, 'name', type(self.prompt).__name__)!r}, "
            f"block_size={self.block_size}, sort_depth={self.sort_depth})"
        )

    def to_config(self) -> dict[str, Any]:
        """JSON-able settings (the LLM by its own ``to_config``, if any)."""
        return {
            "type": "tdpart",
            "prompt": getattr(self.prompt, "name", type(self.prompt).__name__),
            "block_size": self.block_size,
            "sort_depth": self.sort_depth,
            "max_passage_tokens": self.max_passage_tokens,
            "id_style": self.id_style,
            "strict": self.strict,
            "llm": self._llm_config(),
        }

    def _read(
        self, outcome: Completion | LLMError, block: list[int], book: CallBook, usage: Usage
    ) -> tuple[list[int], set[int]]:
        """The block's new order and the members the answer listed (shown order on failure)."""
        m = len(block)
        if isinstance(outcome, LLMError):
            book.error(outcome, f"a block of {m}")
            return list(block), set()
        try:
            parsed = self.prompt.parse(outcome, m, strict=self.strict)
        except ParseError:
            if self.strict:
                raise
            book.unusable_answer("unparsable answer")
            return list(block), set()
        except Exception as exc:  # noqa: BLE001 - a custom prompt's bug must not lose documents
            book.unusable_answer(f"prompt parse failed: {type(exc).__name__}: {exc}")
            return list(block), set()
        listed: list[int] = []
        for p in parsed.listed:
            if isinstance(p, int) and not isinstance(p, bool) and 0 <= p < m and p not in listed:
                listed.append(p)
        repaired = parsed.repaired or len(listed) != len(parsed.listed)
        if not listed and repaired:
            book.unusable_answer(f"the answer names none of the {m} passages: {outcome.text[:80]!r}")
            return list(block), set()
        if repaired:
            usage.parse_repairs += 1
        seen = set(listed)
        order = [block[p] for p in listed] + [x for p, x in enumerate(block) if p not in seen]
        return order, {block[p] for p in listed}

    def _blocks(
        self, query: str, texts: Sequence[str], blocks: list[list[int]], book: CallBook, usage: Usage
    ) -> Any:
        outcomes = yield [self.prompt.build(query, [texts[i] for i in b]) for b in blocks]
        return [self._read(o, b, book, usage) for o, b in zip(outcomes, blocks)]

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Scored]:
        n = len(cands)
        texts = [c.text for c in cands]
        w, d = self.block_size, self.sort_depth
        book = CallBook(usage, strict=self.strict, log=log, what="tdpart")
        listed_last = [False] * n
        cur = list(range(n))
        settled: list[list[int]] = []  # groups behind the head, best group first
        while True:
            ((window, listed),) = yield from self._blocks(query, texts, [cur[:w]], book, usage)
            for i in window:
                listed_last[i] = i in listed
            if len(cur) <= w:
                cur = window
                break
            pivot = window[d]
            head, behind = window[:d], window[d + 1 :]
            rest = cur[w:]
            blocks = [[pivot, *rest[a : a + w - 1]] for a in range(0, len(rest), w - 1)]
            pivot_listed = False
            for order, got in (yield from self._blocks(query, texts, blocks, book, usage)):
                p = order.index(pivot)
                head += order[:p]
                behind += order[p + 1 :]
                for i in order:
                    if i != pivot:
                        listed_last[i] = i in got
                pivot_listed = pivot_listed or pivot in got
            listed_last[pivot] = listed_last[pivot] or pivot_listed
            # behind the pivot, what the model listed goes before what it left out
            behind = [i for i in behind if listed_last[i]] + [i for i in behind if not listed_last[i]]
            if len(head) == d:  # nothing beat the pivot: the head is final
                settled.insert(0, behind)
                cur = head + [pivot]
                break
            settled.insert(0, [pivot] + behind)
            cur = head
        book.report("those blocks kept the order they were shown in")
        order = cur + [i for group in settled for i in group]
        if self.judges_relevance:
            relevance = [1.0 if listed_last[i] else 0.0 for i in order]
        else:
            relevance = positional(n)
        return Scored(order, positional(n), relevance)
