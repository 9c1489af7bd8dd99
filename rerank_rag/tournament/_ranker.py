"""TourRanker: TourRank (Chen et al., WWW 2025), tournaments of group selections."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from typing import Any

from .._family import CallBook, FamilyRanker, Scored, check_int
from .._plan import Plan
from .._protocols import WindowPrompt
from .._subplans import SubPlan, gather
from .._types import Candidate, Usage
from ..llm._adapt import as_backend
from ..setwise._ranker import read_pick
from ._prompt import SelectPrompt

__all__ = ["TourRanker", "halving_stages", "split_picks"]

log = logging.getLogger("rerank_rag.tournament")


def halving_stages(n: int) -> list[int]:
    """The default schedule: the pool is halved (rounded up) at every stage down to 1.

    100 candidates: 50, 25, 13, 7, 4, 2, 1 (7 stages, 14 calls with groups of 20).
    """
    out: list[int] = []
    s = n
    while s > 1:
        s = (s + 1) // 2
        out.append(s)
    return out


def split_picks(sizes: Sequence[int], total: int) -> list[int]:
    """How many of each group advance: proportional to the group sizes, summing to
    ``total`` (largest remainders first, earlier groups on ties)."""
    pool = sum(sizes)
    exact = [total * s / pool for s in sizes]
    picks = [math.floor(e) for e in exact]
    rest = total - sum(picks)
    for g in sorted(range(len(sizes)), key=lambda g: (-(exact[g] - picks[g]), g))[:rest]:
        picks[g] += 1
    return [min(p, s) for p, s in zip(picks, sizes)]


class TourRanker(FamilyRanker):
    """TourRank: candidates play tournaments; each stage, every group's best advance.

    One tournament: at each stage the pool (the candidates with the most points so far,
    ties in first-stage order) is dealt into groups of at most ``block_size`` (the
    candidate at pool rank ``j`` goes to group ``j mod G``, so every group gets strong and
    weak ones), members are shuffled (seeded), and one call per group asks for its best
    ``m``, ``m`` proportional to the group's share of the next pool. Every candidate that
    advances scores a point. ``tournaments`` independent tournaments (different shuffles)
    run side by side, stage by stage, and their points are summed: the number of
    tournaments is the quality-cost knob (the paper: TourRank-2 69.54, TourRank-10 71.63
    nDCG@10 on DL19 with gpt-3.5-turbo).

    Cost: one round per stage whatever the number of tournaments; calls = tournaments x
    groups per tournament. With the default halving schedule, 100 candidates and
    ``block_size=20``: 7 rounds and 14 calls per tournament. ``stages=(50, 20, 10, 5, 2)``
    is the paper's schedule for 100 candidates: 5 rounds and 11 calls per tournament
    with groups of at most 20 (the paper deals its second stage into groups of 10: 13).

    Args:
        llm: an LLM backend or framework model.
        tournaments: how many tournaments (>= 1).
        block_size: largest group shown in one call (>= 2).
        stages: pool sizes after each stage, strictly decreasing (``None``: halve down to
            1, :func:`halving_stages`). Sizes not below the current pool are skipped.
        seed: seed of the in-group shuffles (``None``: fresh shuffles every ranking).
        prompt: ``None`` (a :class:`SelectPrompt`, asked for exactly ``m`` ids) or a
            :class:`~rerank_rag.WindowPrompt` object (its first ``m`` listed ids advance).
        id_style: ``"numeric"`` (default) or ``"alpha"`` ids.
        max_passage_tokens: truncation budget per passage.
        strict: raise instead of degrading on a failed call or unusable answer.

    Failures: a group whose call fails (transient) or whose answer names no valid id
    advances its ``m`` candidates retrieved first (``usage.fallbacks``, logged once per
    ranking); an answer naming fewer than ``m`` advances only those (``parse_repairs``).
    If every call fails the result is the first-stage order. Non-transient errors raise.

    Scores: total points; relevance: points / (tournaments x stages), the share of all
    stages a candidate advanced through. Tournaments select, they do not judge
    relevance (``judges_relevance`` is False).
    """

    judges_relevance = False

    def __init__(
        self,
        llm: Any,
        *,
        tournaments: int = 2,
        block_size: int = 20,
        stages: Sequence[int] | None = None,
        seed: int | None = 0,
        prompt: WindowPrompt | None = None,
        id_style: str = "numeric",
        max_passage_tokens: int | None = 300,
        strict: bool = False,
    ) -> None:
        self.tournaments = check_int("tournaments", tournaments, 1)
        self.block_size = check_int("block_size", block_size, 2)
        if stages is not None:
            if isinstance(stages, (str, bytes)) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in stages
            ):
                raise TypeError("stages must be a sequence of ints")
            stages = list(stages)
            if not stages or any(s < 1 for s in stages) or any(a <= b for a, b in zip(stages, stages[1:])):
                raise ValueError(f"stages must be strictly decreasing positive ints, got {stages}")
        self.stages = stages
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
        self.strict = strict
        if prompt is None:
            self.prompt: Any = SelectPrompt(id_style=id_style, max_passage_tokens=max_passage_tokens)
        elif callable(getattr(prompt, "build", None)) and callable(getattr(prompt, "parse", None)):
            self.prompt = prompt
        else:
            raise TypeError(f"prompt must be None or a WindowPrompt, got {type(prompt).__name__}")
        self._select = isinstance(self.prompt, SelectPrompt)
        self.id_style = id_style
        self.max_passage_tokens = max_passage_tokens
        self.llm = as_backend(llm)

    def __repr__(self) -> str:
        return (
            f"TourRanker(tournaments={self.tournaments}, block_size={self.block_size}, "
            f"stages={self.stages!r}, seed={self.seed})"
        )

    def to_config(self) -> dict[str, Any]:
        """JSON-able settings (the LLM by its own ``to_config``, if any)."""
        return {
            "type": "tournament",
            "tournaments": self.tournaments,
            "block_size": self.block_size,
            "stages": self.stages,
            "seed": self.seed,
            "prompt": getattr(self.prompt, "name", type(self.prompt).__name__),
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "strict": self.strict,
            "llm": self._llm_config(),
        }

    def schedule(self, n: int) -> list[int]:
        """The pool sizes after each stage for ``n`` candidates."""
        sizes = halving_stages(n) if self.stages is None else self.stages
        out: list[int] = []
        pool = n
        for s in sizes:
            if s < pool:
                out.append(s)
                pool = s
        return out

    # ------------------------------------------------------------------ one tournament

    def _tournament(
        self, t: int, query: str, texts: Sequence[str], book: CallBook, usage: Usage, base: int
    ) -> SubPlan[list[int]]:
        n = len(texts)
        points = [0] * n
        pool = list(range(n))
        for stage, nxt in enumerate(self.schedule(n)):
            g_count = -(-len(pool) // self.block_size)
            groups = [pool[g::g_count] for g in range(g_count)]
            picks = split_picks([len(g) for g in groups], nxt)
            rng = random.Random(f"tourrank:{base}:{t}:{stage}")
            shown: list[tuple[list[int], int]] = []
            for group, m in zip(groups, picks):
                if m >= len(group):
                    for i in group:
                        points[i] += 1
                elif m > 0:
                    members = list(group)
                    rng.shuffle(members)
                    shown.append((members, m))
            requests = [self._build(query, [texts[i] for i in members], m) for members, m in shown]
            outcomes = (yield requests) if requests else []
            for (members, m), outcome in zip(shown, outcomes):
                for i in self._winners(outcome, members, m, book, usage):
                    points[i] += 1
            # the next pool: most points first, ties in first-stage order. Only the pool
            # can hold it: outsiders have at most the pool's lowest points, and lost the
            # tie to it by first-stage order; pool members only gained.
            pool = sorted(pool, key=lambda i: (-points[i], i))[:nxt]
        return points

    def _build(self, query: str, passages: list[str], m: int) -> Any:
        if self._select:
            return self.prompt.build(query, passages, picks=m)
        return self.prompt.build(query, passages)

    def _winners(self, outcome: Any, members: list[int], m: int, book: CallBook, usage: Usage) -> list[int]:
        parsed = read_pick(self.prompt, outcome, len(members), book, usage)
        if parsed is None:  # fallback: the candidates retrieved first advance
            return sorted(members)[:m]
        listed = list(parsed.listed[:m])
        if len(listed) < m and not parsed.repaired:
            usage.parse_repairs += 1  # fewer than asked: only those advance
        return [members[p] for p in listed]

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Scored]:
        n = len(cands)
        texts = [c.text for c in cands]
        book = CallBook(usage, strict=self.strict, log=log, what="tournament")
        base = self.seed if self.seed is not None else random.randrange(2**62)
        per = yield from gather(
            [self._tournament(t, query, texts, book, usage, base) for t in range(self.tournaments)]
        )
        book.report("those groups advanced their candidates retrieved first")
        total = [sum(p[i] for p in per) for i in range(n)]
        order = sorted(range(n), key=lambda i: (-total[i], i))
        stages = max(1, len(self.schedule(n)))
        top = self.tournaments * stages
        return Scored(order, [float(total[i]) for i in order], [total[i] / top for i in order])
