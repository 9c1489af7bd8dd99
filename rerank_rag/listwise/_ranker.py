"""Listwise LLM reranking: RankGPT sliding windows, or one call over all candidates.

Sliding mode (RankGPT): windows of ``window_size`` candidates move from the *back* of
the current order to the front by ``step``; each window is reordered by one LLM call,
and the best candidates bubble up. The windows are sequential (window ``k+1`` sees the
order window ``k`` produced), so one pass over ``n`` candidates costs
``len(window_spans(n, window_size, step))`` calls *and* as many sequential rounds.
One pass guarantees only the top ``window_size - step`` (10 for 20/10) are compared with
everything that could beat them; ``passes > 1`` repeats the whole sweep.

Single mode: one call over all candidates (no window; mind the model's context).

Error policy (see docs/reliability.md): a transient failure (a call that still failed
after the backend's retries, or an answer with no usable id) keeps that window's previous
order (``usage.fallbacks``; one WARNING per ranking); a partial or repaired answer is
completed with the missing candidates in their previous order (``usage.parse_repairs``).
A non-transient error (:class:`~rerank_rag.LLMConfigurationError`: wrong key, wrong URL,
unknown model) is raised, never fallen back from. ``strict=True`` raises on transient
failures too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .._errors import LLMError, ParseError, RankingFailedError
from .._plan import Plan
from .._protocols import WindowParse, WindowPrompt
from .._ranker import PlanRanker, raise_if_permanent, warn_degraded
from .._relevance import judged, judges_relevance as prompt_judges_relevance, positional
from .._types import Candidate, Usage, check_int
from ..llm._adapt import as_backend
from ..llm._base import Completion
from ._prompts import DEFAULT_MAX_QUERY_TOKENS, get_prompt

__all__ = ["ListwiseRanker", "window_spans"]

_MODES = ("sliding", "single")

log = logging.getLogger("rerank_rag.listwise")


def window_spans(n: int, window_size: int, step: int) -> list[tuple[int, int]]:
    """The sliding windows over ``n`` positions, back to front, as ``[start, end)`` pairs.

    The first window ends at ``n``; each next one is moved ``step`` towards the front;
    the last one starts at 0 (its start is clamped, so the head is never skipped and
    there is no redundant window after it). ``n <= window_size`` gives one window
    ``[0, n)``; otherwise there are ``1 + ceil((n - window_size) / step)`` windows, e.g.
    ``(80, 100), (70, 90), ..., (0, 20)``: 9 windows for ``n=100, window_size=20, step=10``.
    ``n == 0`` gives no window.
    """
    check_int("n", n, 0)
    check_int("window_size", window_size, 1)
    check_int("step", step, 1)
    if step > window_size:
        raise ValueError(f"step ({step}) must be <= window_size ({window_size})")
    if n == 0:
        return []
    spans: list[tuple[int, int]] = []
    end = n
    while True:
        start = max(0, end - window_size)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


class ListwiseRanker(PlanRanker):
    """Rerank candidates with an LLM, RankGPT style (listwise, sliding windows).

    Args:
        llm: an LLM backend (``OpenAICompatibleLLM``, ``FakeLLM``, ...) or a framework
            LLM object accepted by :func:`rerank_rag.llm.as_backend`.
        prompt: ``"rankgpt"`` (default), ``"relevant-only"``, ``"first-token"``, or a
            :class:`~rerank_rag.WindowPrompt` object (used as is: its own truncation
            settings apply and ``max_passage_tokens``/``max_query_tokens``/``id_style``
            are ignored).
        mode: ``"sliding"`` (windows back to front) or ``"single"`` (one call over all
            candidates).
        window_size: candidates per window (>= 2).
        step: how far each window moves towards the front (1 <= step <= window_size);
            default ``window_size // 2`` (RankGPT's 20/10), so any window size works
            on its own.
        passes: full sweeps over the list (>= 1); more passes sort deeper than the top
            ``window_size - step``.
        max_passage_tokens: truncation budget per passage in the prompt (``None`` for
            no truncation).
        max_query_tokens: truncation budget of the query in the prompt (``None`` for no
            truncation; default 256).
        strict: raise instead of degrading: :class:`~rerank_rag.RankingFailedError` for a
            failed call, :class:`~rerank_rag.ParseError` for an answer with no usable id.
        id_style: ``"numeric"`` or ``"alpha"`` ids for the text prompts (default numeric).

    The answer budget is about 4 tokens per id plus a margin; for reasoning models
    (``<think>`` blocks are stripped before parsing) give room explicitly, e.g.
    ``prompt=RankGPTPrompt(max_tokens=2048)``.

    Scores are positional: the candidate at rank ``r`` (0-based) of ``n`` gets
    ``1 - r / n``. They encode the position only, not a calibrated relevance: do not
    threshold them or compare them across queries.

    ``Ranking.relevance`` (see :mod:`rerank_rag._relevance`): with the relevant-only
    prompt, >= 0.5 for the candidates the last window that saw them listed, < 0.5 for
    those it left out (never judged: < 0.5); with full-permutation prompts (RankGPT,
    first-token) it is positional, so a threshold there is only a rank cut.
    """

    def __init__(
        self,
        llm: Any,
        *,
        prompt: str | WindowPrompt = "rankgpt",
        mode: str = "sliding",
        window_size: int = 20,
        step: int | None = None,
        passes: int = 1,
        max_passage_tokens: int | None = 300,
        strict: bool = False,
        id_style: str | None = None,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
        self.window_size = check_int("window_size", window_size, 2)
        if step is None:
            step = max(1, self.window_size // 2)
        self.step = check_int("step", step, 1)
        if self.step > self.window_size:
            raise ValueError(f"step ({step}) must be <= window_size ({window_size})")
        self.passes = check_int("passes", passes, 1)
        if max_passage_tokens is not None:
            max_passage_tokens = check_int("max_passage_tokens", max_passage_tokens, 1)
        if max_query_tokens is not None:
            max_query_tokens = check_int("max_query_tokens", max_query_tokens, 1)
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
        kw: dict[str, Any] = {}
        if isinstance(prompt, str):
            kw["max_passage_tokens"] = max_passage_tokens
            kw["max_query_tokens"] = max_query_tokens
            if id_style is not None:
                kw["id_style"] = id_style
        self.prompt: WindowPrompt = get_prompt(prompt, **kw)
        self.mode = mode
        self.max_passage_tokens = max_passage_tokens
        self.max_query_tokens = max_query_tokens
        self.strict = strict
        self.id_style = id_style
        self.llm = as_backend(llm)

    def __repr__(self) -> str:
        return (
            f"ListwiseRanker(prompt={getattr(self.prompt, 'name', type(self.prompt).__name__)!r}, "
            f"mode={self.mode!r}, window_size={self.window_size}, step={self.step}, "
            f"passes={self.passes}, max_passage_tokens={self.max_passage_tokens}, "
            f"strict={self.strict})"
        )

    def to_config(self) -> dict[str, Any]:
        """JSON-able settings (the LLM is described by its own ``to_config`` if any)."""
        llm_config = getattr(self.llm, "to_config", None)
        return {
            "type": "listwise",
            "prompt": getattr(self.prompt, "name", type(self.prompt).__name__),
            "mode": self.mode,
            "window_size": self.window_size,
            "step": self.step,
            "passes": self.passes,
            "max_passage_tokens": self.max_passage_tokens,
            "max_query_tokens": self.max_query_tokens,
            "strict": self.strict,
            "id_style": self.id_style,
            "llm": llm_config() if callable(llm_config) else None,
        }

    @property
    def judges_relevance(self) -> bool:
        """True with a prompt whose omissions are judgments (relevant-only): then
        ``Ranking.relevance`` >= 0.5 means "listed"; otherwise it is positional."""
        return prompt_judges_relevance(self.prompt)

    def spans(self, n: int) -> list[tuple[int, int]]:
        """The windows one pass sends for ``n`` candidates, in call order.

        :func:`window_spans`, without windows of a single candidate (with
        ``step == window_size`` the clamped last window can hold one; nothing to order).
        """
        if self.mode == "single":
            return [(0, n)] if n >= 2 else []
        return [(a, b) for a, b in window_spans(n, self.window_size, self.step) if b - a >= 2]

    def _read(
        self,
        outcome: Completion | LLMError,
        m: int,
        usage: Usage,
        failures: list[str],
    ) -> tuple[list[int], int | None]:
        """The new order of a window of ``m`` positions (previous order on failure) and
        how many of them the answer listed (``None``: no usable answer, no judgment).

        A non-transient error is raised; a transient failure keeps the previous order,
        counts in ``usage.fallbacks`` and adds its reason to ``failures``.
        """
        identity = list(range(m)), None
        if isinstance(outcome, LLMError):
            raise_if_permanent(outcome)
            if self.strict:
                raise RankingFailedError(
                    f"LLM call failed for a window of {m}: {outcome}"
                ) from outcome
            usage.fallbacks += 1
            failures.append(f"LLM call failed: {outcome}")
            return identity
        try:
            parsed = self.prompt.parse(outcome, m, strict=self.strict)
        except ParseError as exc:
            if self.strict:
                raise
            usage.fallbacks += 1
            failures.append(f"unparsable answer: {exc}")
            return identity
        except Exception as exc:  # noqa: BLE001 - a custom prompt's bug must not lose docs
            if self.strict:
                raise ParseError(f"prompt parse failed: {type(exc).__name__}: {exc}") from exc
            usage.fallbacks += 1
            failures.append(f"prompt parse failed: {type(exc).__name__}: {exc}")
            return identity
        if not isinstance(parsed, WindowParse):
            raise TypeError(f"prompt.parse must return a WindowParse, got {type(parsed).__name__}")
        listed: list[int] = []
        seen: set[int] = set()
        for i in parsed.listed:  # defensive: custom prompts may return anything
            if isinstance(i, int) and 0 <= i < m and i not in seen:
                seen.add(i)
                listed.append(i)
        repaired = parsed.repaired or len(listed) != len(parsed.listed)
        if not listed and repaired:  # nothing usable: the window keeps its order
            if self.strict:
                raise ParseError(f"the LLM answer for a window of {m} had no usable id")
            usage.fallbacks += 1
            failures.append(f"the answer names no valid id: {outcome.text[:80]!r}")
            return identity
        if repaired:
            usage.parse_repairs += 1
        return WindowParse(listed=tuple(listed)).full_order(m), len(listed)

    def _plan(
        self, query: str, cands: list[Candidate], usage: Usage
    ) -> Plan[tuple[Sequence[int], Sequence[float]]]:
        n = len(cands)
        texts = [c.text for c in cands]
        order = list(range(n))  # order[r] = input index at rank r
        spans = self.spans(n)
        verdict: dict[int, bool] = {}  # input index -> listed by the last window that judged it
        failures: list[str] = []
        for _ in range(self.passes):
            for start, end in spans:
                window = order[start:end]
                request = self.prompt.build(query, [texts[i] for i in window])
                (outcome,) = yield [request]
                new, n_listed = self._read(outcome, len(window), usage, failures)
                order[start:end] = [window[j] for j in new]
                if n_listed is not None:
                    verdict.update((window[j], r < n_listed) for r, j in enumerate(new))
        warn_degraded(
            log, "ListwiseRanker", failures, len(spans) * self.passes, "windows",
            "their previous order",
        )
        scores = [1.0 - r / n for r in range(n)]
        if not self.judges_relevance:
            return order, scores, positional(n)
        return order, scores, judged(order, {i for i, listed in verdict.items() if listed})
