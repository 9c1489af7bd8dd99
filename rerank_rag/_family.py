"""Shared plumbing of the pairwise, setwise, tournament and top-down rankers.

* :class:`FamilyRanker`: a :class:`~rerank_rag._ranker.PlanRanker` whose plan returns
  a relevance value per rank (:func:`scored`, made non-increasing); trivial inputs (0
  or 1 candidate) get the positional relevance; the settings every family ranker
  shares (``strict`` and the default prompt's), ``repr`` and ``to_config``.
* :class:`CallBook`: per-ranking bookkeeping of failed calls and unusable answers, with
  the error policy every ranker follows: a non-transient :class:`~rerank_rag.LLMError`
  (e.g. :class:`~rerank_rag.LLMConfigurationError`) is raised; ``strict=True`` raises on
  transient failures too (:class:`~rerank_rag.RankingFailedError`, or
  :class:`~rerank_rag.ParseError` for an unusable answer); otherwise the documented
  fallback is taken, counted in ``usage.fallbacks`` and logged once per ranking.
* :func:`read_answer`: one answer read under that policy (valid, unique positions).
* :func:`bind_prompt`: a prompt bound to one ranking's query and passages (prepared
  once, see :mod:`rerank_rag._group_prompt`), for any :class:`~rerank_rag.WindowPrompt`.
* :func:`monotone`: the non-increasing least-squares fit of a sequence
  (pool-adjacent-violators), used to turn per-item judgements into a ``relevance``
  tuple that is monotone along the final order.
* Argument checks shared by the rankers (:func:`check_int` is the one integer rule of
  :func:`rerank_rag._types.check_int`: any integer type, TypeError / ValueError).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import LLMError, ParseError, RankingFailedError
from ._group_prompt import GroupPrompt, check_budget, check_id_style
from ._protocols import WindowParse
from ._ranker import PlanRanker, raise_if_permanent
from ._relevance import positional
from ._types import Candidate, Ranking, Usage, check_int
from .llm._base import Completion, LLMRequest

__all__ = [
    "FamilyRanker",
    "scored",
    "CallBook",
    "read_answer",
    "bind_prompt",
    "monotone",
    "positional",
    "check_int",
    "check_choice",
    "check_budget",
    "check_id_style",
    "check_strict",
    "resolve_prompt",
]


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of ``choices`` (TypeError for a non-string, ValueError for another string)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_strict(strict: Any) -> bool:
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
    return strict


def resolve_prompt(
    prompt: Any, default: Callable[[], Any], what: str = "None or a WindowPrompt"
) -> Any:
    """``default()`` for ``None``; an object with callable ``build`` and ``parse`` as is."""
    if prompt is None:
        return default()
    if callable(getattr(prompt, "build", None)) and callable(getattr(prompt, "parse", None)):
        return prompt
    raise TypeError(f"prompt must be {what}, got {type(prompt).__name__}")


def bind_prompt(prompt: Any, query: str, texts: Sequence[str]) -> Callable[..., LLMRequest]:
    """``request(positions[, picks])`` for one ranking: the request showing
    ``texts[p]`` for each ``p`` in ``positions``.

    A rerank-rag group prompt is bound (query and passages prepared once), unless a
    subclass replaced its ``build``; any other prompt builds each request with
    ``prompt.build(query, [texts[p] for p in positions])``.
    """
    if isinstance(prompt, GroupPrompt) and type(prompt).build is GroupPrompt.build:
        return prompt.bind(query, texts)
    build = prompt.build

    def request(positions: Sequence[int], picks: int | None = None) -> LLMRequest:
        shown = [texts[p] for p in positions]
        if picks is None:
            return build(query, shown)  # type: ignore[no-any-return]
        return build(query, shown, picks=picks)  # type: ignore[no-any-return]

    return request


def monotone(values: Sequence[float]) -> list[float]:
    """The non-increasing sequence closest to ``values`` in least squares (PAV).

    Runs of values that rise along the order are replaced by their mean, so an item
    judged relevant that ended up below one judged irrelevant shares the average with
    it. Values are clamped to [0, 1].
    """
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([min(1.0, max(0.0, float(v))), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out.extend([s / c] * int(c))
    # float noise must not break "non-increasing"
    for i in range(1, len(out)):
        if out[i] > out[i - 1]:
            out[i] = out[i - 1]
    return out


def scored(
    order: Sequence[int], scores: Sequence[float], relevance: Sequence[float] | None = None
) -> tuple[list[int], list[float], list[float]]:
    """A family plan's result ``(order, scores, relevance)``, as the plan drivers and
    :class:`~rerank_rag._ranker.PlanRanker` take it: ``relevance`` per rank
    (positional when ``None``), made non-increasing (:func:`monotone`)."""
    values = positional(len(order)) if relevance is None else relevance
    return list(order), list(scores), monotone(values)


class CallBook:
    """Failures and unusable answers of one ranking, with the shared error policy."""

    def __init__(self, usage: Usage, *, strict: bool, log: logging.Logger, what: str) -> None:
        self.usage = usage
        self.strict = strict
        self.log = log
        self.what = what
        self.failed = 0
        self.unusable = 0
        self.first_reason: str | None = None

    def error(self, err: LLMError, context: str) -> None:
        """A call ended in ``err``: raise (non-transient or strict) or count a fallback."""
        raise_if_permanent(err)
        if self.strict:
            raise RankingFailedError(f"LLM call failed ({context}): {err}") from err
        self.failed += 1
        self.usage.fallbacks += 1
        if self.first_reason is None:
            self.first_reason = f"LLM call failed ({context}): {err}"

    def unusable_answer(self, reason: str) -> None:
        """An answer named no valid passage: raise when strict, else count a fallback."""
        if self.strict:
            raise ParseError(reason)
        self.unusable += 1
        self.usage.fallbacks += 1
        if self.first_reason is None:
            self.first_reason = reason

    def report(self, fallback: str) -> None:
        """Log once (WARNING) what degraded in this ranking, if anything."""
        if self.failed or self.unusable:
            self.log.warning(
                "%s: %d failed call(s) and %d unusable answer(s); %s (first: %s)",
                self.what,
                self.failed,
                self.unusable,
                fallback,
                self.first_reason,
            )


def read_answer(
    prompt: Any, outcome: Completion | LLMError, m: int, book: CallBook, usage: Usage
) -> WindowParse | None:
    """The parse of one answer about ``m`` shown passages, under the error policy.

    Returns the valid, unique positions the answer listed (best first; a repaired
    answer counts in ``usage.parse_repairs``), or ``None`` when the call failed or the
    answer names no valid passage (counted by ``book``, which raises when the error is
    not transient or ``strict``). An answer that validly lists nothing (a relevant-only
    prompt's "nothing relevant") is an empty parse, not a failure.
    """
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
    if parsed.__class__ is WindowParse and not parsed.repaired and len(parsed.listed) == 1:
        p = parsed.listed[0]  # the usual pick: one valid position, nothing to repair
        if p.__class__ is int and 0 <= p < m and (parsed.scores is None or len(parsed.scores) == 1):
            return parsed
    raw = tuple(getattr(parsed, "listed", ()))
    listed: list[int] = []
    for p in raw:
        if isinstance(p, int) and not isinstance(p, bool) and 0 <= p < m and p not in listed:
            listed.append(p)
    repaired = bool(getattr(parsed, "repaired", False)) or len(listed) != len(raw)
    if not listed:
        if repaired:
            excerpt = outcome.text[:80]
            book.unusable_answer(f"the answer names none of the {m} passages: {excerpt!r}")
            return None
        return WindowParse(listed=())  # "nothing relevant": a valid answer
    if repaired:
        usage.parse_repairs += 1
    scores = getattr(parsed, "scores", None)
    if scores is not None and (len(scores) != len(raw) or len(listed) != len(raw)):
        scores = None
    return WindowParse(listed=tuple(listed), repaired=repaired, scores=scores)


class FamilyRanker(PlanRanker):
    """A plan ranker whose result carries a ``relevance`` tuple.

    Subclasses implement ``_plan`` returning :func:`scored`, ``_own`` (their settings,
    for ``repr`` and ``to_config``) and set ``kind`` and ``judges_relevance``: True when
    the relevance values are the model's own relevant / not relevant judgement (what a
    dynamic cut-off may threshold), False when they only encode the rank or the points.
    """

    #: ``to_config()["type"]``
    kind = "family"
    judges_relevance: bool = False
    strict: bool = False
    prompt: Any
    id_style: str | None = None
    max_passage_tokens: int | None = None
    max_query_tokens: int | None = None

    @staticmethod
    def _trivial(cands: list[Candidate], k: int) -> Ranking | None:
        if not cands:
            return Ranking(order=(), scores=(), usage=Usage(), relevance=())
        if len(cands) == 1:
            return Ranking(order=(0,), scores=(1.0,), usage=Usage(), relevance=(1.0,))
        return None

    def _settings(
        self,
        strict: Any,
        id_style: Any,
        max_passage_tokens: Any,
        max_query_tokens: Any,
    ) -> dict[str, Any]:
        """Check and keep ``strict`` and the settings of the default prompt (``id_style``,
        ``max_passage_tokens``, ``max_query_tokens``: the listwise rankers' rules and
        defaults); returns them as that prompt's keyword arguments (``id_style`` only when
        given)."""
        self.strict = check_strict(strict)
        self.id_style = None if id_style is None else check_id_style(id_style)
        self.max_passage_tokens = check_budget("max_passage_tokens", max_passage_tokens)
        self.max_query_tokens = check_budget("max_query_tokens", max_query_tokens)
        kw: dict[str, Any] = {
            "max_passage_tokens": self.max_passage_tokens,
            "max_query_tokens": self.max_query_tokens,
        }
        if self.id_style is not None:
            kw["id_style"] = self.id_style
        return kw

    def _own(self) -> dict[str, Any]:
        """The ranker's own settings (shown by ``repr`` and ``to_config``)."""
        return {}

    def __repr__(self) -> str:
        fields = {**self._own(), "prompt": getattr(self.prompt, "name", type(self.prompt).__name__)}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"

    def to_config(self) -> dict[str, Any]:
        """JSON-able settings: the type, the ranker's own, then the shared ones (the LLM
        by its own ``to_config``, if any)."""
        cfg = getattr(self.llm, "to_config", None)
        return {
            "type": self.kind,
            **self._own(),
            "prompt": getattr(self.prompt, "name", type(self.prompt).__name__),
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "max_query_tokens": self.max_query_tokens,
            "strict": self.strict,
            "llm": cfg() if callable(cfg) else None,
        }
