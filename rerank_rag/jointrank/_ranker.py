"""JointRanker: overlapping blocks ranked in one parallel round, then aggregated."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
from collections.abc import Generator
from typing import Any

from .._errors import LLMError, ParseError, RankingFailedError
from .._plan import Plan
from .._protocols import Scorer, WindowParse, WindowPrompt
from .._ranker import PlanRanker, Result, raise_if_permanent
from .._relevance import judged, judges_relevance as prompt_judges_relevance, positional
from .._types import Candidate, Usage, check_int
from ..llm._base import Completion, LLMRequest
from ..listwise._prompts import DEFAULT_MAX_QUERY_TOKENS
from ._aggregators import Aggregator, aggregator_name, get_aggregator, order_from_scores
from ._comparisons import Comparisons
from ._designs import BlockDesign, Coverage, connected_components, coverage_stats, get_design

__all__ = ["JointRanker"]

log = logging.getLogger("rerank_rag.jointrank")

_Block = list[int]
_BlockResult = tuple[list[int], int]


class _Failed(str):
    """Why a block failed; ``resend`` tells whether re-sending it can help.

    An unusable answer (unparsable, no valid id) is worth re-sending reshuffled; an
    error the backend already retried (429, 5xx, timeouts, resets) is not: re-sending
    it would multiply the backend's own retries.
    """

    resend: bool = True

    @classmethod
    def final(cls, reason: str) -> _Failed:
        out = cls(reason)
        out.resend = False
        return out


def _is_scorer(obj: Any) -> bool:
    return callable(getattr(obj, "score", None)) and callable(getattr(obj, "ascore", None))


class JointRanker(PlanRanker):
    """JointRank (Dedov, ICTIR 2025): rank many candidates in one parallel round.

    The candidates are split into overlapping blocks by a block design (each candidate
    in ``replicas`` blocks of ``block_size``), every block is ranked by the block ranker
    (all blocks of a query at once, under the client's concurrency limit), each block
    ranking is turned into pairwise comparisons, and an aggregator (Borda by default)
    turns the comparisons into one score per candidate. 100 candidates with
    ``block_size=20, replicas=4`` cost 20 calls and a single round (``usage.depth == 1``)
    instead of 9 sequential calls for a RankGPT sliding window.

    Args:
        block_ranker: an LLM (anything :func:`~rerank_rag.llm._adapt.as_backend` accepts:
            :class:`~rerank_rag.llm.OpenAICompatibleLLM`, :class:`~rerank_rag.FakeLLM`,
            a LangChain / LlamaIndex / Haystack model) or a pointwise
            :class:`~rerank_rag.Scorer` (an object with ``score`` and ``ascore``), which
            then scores each block and orders it.
        prompt: (LLM block rankers only) how the LLM sees a block: ``"relevant-only"``
            (JointRank style: the model may leave irrelevant snippets out),
            ``"rankgpt"``, ``"first-token"`` (FIRST style, first-token logprobs), or a
            :class:`~rerank_rag.WindowPrompt` object.
        block_size: candidates per block (``k`` >= 2).
        replicas: blocks per candidate (``r`` >= 1; r = 1 is a partition, which the
            connectivity repair then bridges).
        design: ``"auto"`` (see :func:`~rerank_rag.jointrank.auto_design`),
            ``"equi-replicate"``, ``"replicate"``, ``"latin"``, ``"triangular"``,
            ``"random"`` or a :class:`~rerank_rag.jointrank.BlockDesign`.
        aggregator: ``"borda"`` (default), ``"pagerank"`` (the JointRank paper's
            choice), ``"win_rate"``, ``"copeland"``, ``"bradley_terry"``, ``"elo"`` or a
            callable ``f(Comparisons) -> scores``. Borda is the default because it
            was best or within 1.5 points nDCG@10 of the best in every setting of a
            simulated DL19 sweep (noise, position bias, both prompts, k20/r4 and the
            Latin k10 design), where PageRank trailed the others by about 5 points
            (``benchmarks/bench_aggregators.py``, docs/benchmarks.md), and it costs
            ``O(r·n)``.
        seed: seed of the design and of the in-block shuffles (same seed, same blocks);
            ``None`` draws fresh blocks for every query.
        max_block_retries: how many more rounds may re-send a block whose answer was
            unusable (unparsable, naming no valid id; a scorer exception). Each retry
            round re-shuffles those blocks (a new prompt, so a response cache cannot
            replay the bad answer) and adds 1 to ``usage.depth``. A failed LLM call is
            never re-sent: the backend has already retried it (429, 5xx, timeouts) or it
            cannot succeed. Per query at most as many blocks are re-sent as there are
            blocks (``usage.resends``), so a query makes at most twice its planned
            calls, each with at most the backend's ``1 + max_retries`` attempts.
        strict: raise :class:`~rerank_rag.RankingFailedError` when a block fails (a
            failed call, or an unusable answer after the retries), and let the prompt
            raise :class:`~rerank_rag.ParseError` on malformed answers (re-sent like
            unusable ones). Otherwise a failed block is left out of the aggregation
            (``usage.fallbacks`` counts it; one WARNING per ranking); its candidates
            keep the comparisons of their other blocks, and candidates left with none
            sort last in first-stage order. If every block fails, the result is the
            first-stage order. A non-transient error
            (:class:`~rerank_rag.LLMConfigurationError`) is always raised.
        max_passage_tokens: truncation budget per passage in the prompt.
        repair: add bridging blocks when the design's comparison graph is not connected.
        id_style: ``"numeric"`` or ``"alpha"`` ids for a prompt given by name (as in
            :class:`~rerank_rag.listwise.ListwiseRanker`; default: the prompt's own).
        max_query_tokens: truncation budget of the query in a prompt given by name
            (``None``: no truncation; default 256).

    Scores: ``Ranking.scores`` are the aggregator's scores (see
    :mod:`rerank_rag.jointrank._aggregators`): with Borda, a candidate's mean
    normalised position over the blocks that showed it, in [0, 1] (1 = first in every
    block, 0 = last or left out of every block); with PageRank, the stationary
    probability of the loser-to-winner walk (the scores of all candidates sum to 1).
    Ties break by first-stage (input) order.

    Comparisons: a listed candidate beats every candidate listed after it and every
    candidate the block ranker omitted; omitted candidates are not compared among
    themselves (see :mod:`rerank_rag.jointrank._comparisons`).

    ``Ranking.relevance`` (see :mod:`rerank_rag._relevance`): with the relevant-only
    prompt, >= 0.5 for candidates listed in more than half of the answered blocks that
    held them, < 0.5 for the others (in no answered block: < 0.5); with other prompts
    and with a Scorer block ranker it is positional (a threshold is a rank cut).
    """

    def __init__(
        self,
        block_ranker: Any,
        *,
        prompt: str | WindowPrompt = "relevant-only",
        block_size: int = 20,
        replicas: int = 4,
        design: str | BlockDesign = "auto",
        aggregator: str | Aggregator = "borda",
        seed: int | None = 0,
        max_block_retries: int = 2,
        strict: bool = False,
        max_passage_tokens: int | None = 300,
        repair: bool = True,
        id_style: str | None = None,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> None:
        block_size = check_int("block_size", block_size, 2)
        replicas = check_int("replicas", replicas, 1)
        max_block_retries = check_int("max_block_retries", max_block_retries, 0)
        if seed is not None:
            seed = check_int("seed", seed)
        self.block_size = block_size
        self.replicas = replicas
        self.design = get_design(design, replicas)
        self.aggregator = get_aggregator(aggregator)
        self.aggregator_name = aggregator_name(aggregator)
        self.seed = seed
        self.max_block_retries = max_block_retries
        self.strict = bool(strict)
        self.repair = bool(repair)
        self.max_passage_tokens = max_passage_tokens
        self._blocks_cache: dict[int, list[list[int]]] = {}
        self.scorer: Scorer | None = None
        self.prompt: WindowPrompt | None = None
        if block_ranker is None:
            raise TypeError("block_ranker is required: an LLM backend or a Scorer")
        if _is_scorer(block_ranker) and not callable(getattr(block_ranker, "acomplete", None)):
            self.scorer = block_ranker
        else:
            from ..llm._adapt import as_backend

            self.llm = as_backend(block_ranker)
            self.prompt = self._resolve_prompt(
                prompt, max_passage_tokens, id_style=id_style, max_query_tokens=max_query_tokens
            )
        self.id_style = id_style
        self.max_query_tokens = max_query_tokens

    @staticmethod
    def _resolve_prompt(
        prompt: str | WindowPrompt,
        max_passage_tokens: int | None,
        *,
        id_style: str | None = None,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> WindowPrompt:
        if isinstance(prompt, str):
            from ..listwise import get_prompt

            kw: dict[str, Any] = {"max_query_tokens": max_query_tokens}
            if id_style is not None:
                kw["id_style"] = id_style
            return get_prompt(prompt, max_passage_tokens=max_passage_tokens, **kw)
        if callable(getattr(prompt, "build", None)) and callable(getattr(prompt, "parse", None)):
            return prompt
        raise TypeError(
            "prompt must be a prompt name or a WindowPrompt (build + parse), "
            f"got {type(prompt).__name__}"
        )

    def __repr__(self) -> str:
        what = type(self.scorer).__name__ if self.scorer is not None else type(self.llm).__name__
        return (
            f"JointRanker({what}, block_size={self.block_size}, replicas={self.replicas}, "
            f"design={self.design!r}, aggregator={self.aggregator_name!r}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ planning

    def blocks(self, n: int) -> list[list[int]]:
        """The blocks this ranker sends for ``n`` candidates (indices, in prompt order).

        With a fixed seed the blocks depend on ``n`` only, so they are built once per
        ``n`` and cached (a few sizes); ``seed=None`` builds fresh blocks every time.
        """
        if self.seed is None:
            return self.design.build(n, self.block_size, None, repair=self.repair)
        cached = self._blocks_cache.get(n)
        if cached is None:
            cached = self.design.build(n, self.block_size, self.seed, repair=self.repair)
            if len(self._blocks_cache) >= 16:
                self._blocks_cache.pop(next(iter(self._blocks_cache)))
            self._blocks_cache[n] = cached
        return [list(b) for b in cached]

    def coverage(self, n: int) -> Coverage:
        """Coverage statistics of :meth:`blocks` for ``n`` candidates."""
        return coverage_stats(self.blocks(n), n)

    def _reshuffled(self, block: _Block, b: int, attempt: int) -> _Block:
        rng = random.Random(f"jointrank-retry:{self.seed}:{b}:{attempt}")
        out = list(block)
        rng.shuffle(out)
        return out

    # ------------------------------------------------------------------ results

    def _read_llm(
        self, outcome: Completion | LLMError, block: _Block, usage: Usage
    ) -> _BlockResult | _Failed:
        """A block result, or why the block failed (non-transient errors raise)."""
        if isinstance(outcome, LLMError):
            raise_if_permanent(outcome)
            return _Failed.final(f"LLM call failed: {outcome}")
        assert self.prompt is not None
        try:
            parsed: WindowParse = self.prompt.parse(outcome, len(block), strict=self.strict)
        except ParseError as exc:
            return _Failed(f"unparsable answer: {exc}")
        listed: list[int] = []
        listed_set: set[int] = set()
        for p in parsed.listed:  # defensive: a custom prompt might repeat or overflow
            if isinstance(p, int) and 0 <= p < len(block) and p not in listed_set:
                listed.append(p)
                listed_set.add(p)
        if not listed and parsed.repaired:
            return _Failed(f"the answer names no valid id: {outcome.text[:80]!r}")
        if parsed.repaired:
            usage.parse_repairs += 1
        order = [block[p] for p in listed] + [x for p, x in enumerate(block) if p not in listed_set]
        return order, len(listed)

    @staticmethod
    def _read_scores(scores: Any, block: _Block) -> _BlockResult | _Failed:
        try:
            vals = [float(s) for s in scores]
        except (TypeError, ValueError) as exc:
            return _Failed(f"scorer returned non-numeric scores: {exc}")
        if len(vals) != len(block):
            return _Failed(f"scorer returned {len(vals)} scores for {len(block)} passages")
        if any(math.isnan(v) for v in vals):
            return _Failed("scorer returned NaN")
        # ties break by first-stage order, the same in every block (no spurious cycles)
        pos = sorted(range(len(block)), key=lambda p: (-vals[p], block[p]))
        return [block[p] for p in pos], len(block)

    def _finish(
        self,
        n: int,
        blocks: list[_Block],
        results: dict[int, _BlockResult],
        failed: dict[int, str],
        usage: Usage,
    ) -> Result:
        if failed:
            usage.fallbacks += len(failed)
            first = failed[min(failed)]
            msg = (
                f"JointRanker: {len(failed)} of {len(blocks)} blocks failed "
                f"(first: {first}; {usage.resends} block(s) re-sent)"
            )
            if self.strict:
                raise RankingFailedError(msg)
            # a block with at least one listed item links all of its items
            kept = [order for order, n_listed in results.values() if n_listed > 0]
            comps = len(connected_components(kept, n))
            log.warning(
                "%s; left out of the aggregation; the remaining comparison graph has %d "
                "component(s)%s",
                msg,
                comps,
                "" if results else " (no block left: first-stage order)",
            )
        comparisons = Comparisons(n, [results[b] for b in sorted(results)], validate=False)
        scores = self.aggregator(comparisons)
        if len(scores) != n:
            raise ValueError(f"aggregator returned {len(scores)} scores for {n} candidates")
        order, ordered = order_from_scores(scores)
        return order, ordered, self._relevance(n, order, results)

    @property
    def judges_relevance(self) -> bool:
        """True for an LLM block ranker with the relevant-only prompt (the default)."""
        return self.prompt is not None and prompt_judges_relevance(self.prompt)

    def _relevance(self, n: int, order: list[int], results: dict[int, _BlockResult]) -> list[float]:
        """Listed in more than half of its answered blocks -> >= 0.5 (relevant-only
        prompt); otherwise positional (see :mod:`rerank_rag._relevance`)."""
        if not self.judges_relevance:
            return positional(n)
        listed, seen = [0] * n, [0] * n
        for block_order, n_listed in results.values():
            for r, i in enumerate(block_order):
                seen[i] += 1
                listed[i] += r < n_listed
        return judged(order, {i for i in range(n) if 2 * listed[i] > seen[i]})

    # ------------------------------------------------------------------ retry schedule

    def _block_rounds(
        self, n: int, usage: Usage
    ) -> Generator[tuple[list[int], dict[int, _Block]], dict[int, _BlockResult | _Failed], Result]:
        """The per-block retry schedule shared by the LLM and the scorer paths.

        Yields the blocks still to rank and the order each is shown in; receives, per
        block, its result or why it failed. A block whose answer was unusable is re-sent
        on its own, reshuffled, at most ``max_block_retries`` times, and at most as many
        blocks as there are are re-sent per query (``usage.resends``); a failed call is
        final. Returns the final ranking.
        """
        blocks = self.blocks(n)
        shown = dict(enumerate(blocks))
        results: dict[int, _BlockResult] = {}
        failed: dict[int, str] = {}
        pending = list(range(len(blocks)))
        budget = len(blocks)  # re-sends left for this query
        attempt = 0
        while True:
            retry: list[int] = []
            final = False
            for b, res in (yield pending, shown).items():
                if isinstance(res, _Failed):
                    failed[b] = str(res)
                    if res.resend:
                        retry.append(b)
                    else:
                        final = True
                else:
                    results[b] = res
            if self.strict and final:
                retry = []  # strict: a failed call ends the ranking (raised in _finish)
            if not retry or attempt >= self.max_block_retries or budget <= 0:
                return self._finish(n, blocks, results, failed, usage)
            attempt += 1
            pending = sorted(retry)[:budget]
            budget -= len(pending)
            usage.resends += len(pending)
            for b in pending:
                del failed[b]
                shown[b] = self._reshuffled(blocks[b], b, attempt)

    # ------------------------------------------------------------------ LLM plan

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Result]:
        assert self.prompt is not None
        texts = [c.text for c in cands]
        rounds = self._block_rounds(len(cands), usage)
        pending, shown = next(rounds)
        while True:
            requests: list[LLMRequest] = [
                self.prompt.build(query, [texts[i] for i in shown[b]]) for b in pending
            ]
            outcomes = (yield requests) if requests else []
            out = {b: self._read_llm(o, shown[b], usage) for b, o in zip(pending, outcomes)}
            try:
                pending, shown = rounds.send(out)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ scorer path

    @staticmethod
    def _scorer_failed(exc: Exception) -> _Failed:
        raise_if_permanent(exc)
        reason = f"scorer failed: {type(exc).__name__}: {exc}"
        # an LLM-backed scorer's call was already retried by its backend
        return _Failed.final(reason) if isinstance(exc, LLMError) else _Failed(reason)

    def _score_round_sync(
        self, query: str, texts: list[str], shown: dict[int, _Block], pending: list[int]
    ) -> dict[int, _BlockResult | _Failed]:
        assert self.scorer is not None
        out: dict[int, _BlockResult | _Failed] = {}
        for b in pending:
            try:
                scores = self.scorer.score(query, [texts[i] for i in shown[b]])
            except Exception as exc:  # noqa: BLE001 - a failed block, handled below
                out[b] = self._scorer_failed(exc)
                continue
            out[b] = self._read_scores(scores, shown[b])
        return out

    async def _score_round_async(
        self, query: str, texts: list[str], shown: dict[int, _Block], pending: list[int]
    ) -> dict[int, _BlockResult | _Failed]:
        assert self.scorer is not None
        scorer = self.scorer

        async def one(b: int) -> _BlockResult | _Failed:
            try:
                res = scorer.ascore(query, [texts[i] for i in shown[b]])
                scores = await res if inspect.isawaitable(res) else res
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                return self._scorer_failed(exc)
            return self._read_scores(scores, shown[b])

        done = await asyncio.gather(*(one(b) for b in pending))
        return dict(zip(pending, done))

    def _rank_sync(self, query: str, cands: list[Candidate], usage: Usage) -> Result:
        if self.scorer is None:
            return super()._rank_sync(query, cands, usage)
        texts = [c.text for c in cands]
        rounds = self._block_rounds(len(cands), usage)
        pending, shown = next(rounds)
        while True:
            try:
                pending, shown = rounds.send(self._score_round_sync(query, texts, shown, pending))
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    async def _rank_async(self, query: str, cands: list[Candidate], usage: Usage) -> Result:
        if self.scorer is None:
            return await super()._rank_async(query, cands, usage)
        texts = [c.text for c in cands]
        rounds = self._block_rounds(len(cands), usage)
        pending, shown = next(rounds)
        while True:
            out = await self._score_round_async(query, texts, shown, pending)
            try:
                pending, shown = rounds.send(out)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
