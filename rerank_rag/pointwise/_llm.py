"""``LLMPointwiseRanker``: ask an LLM "does this passage help?" once per passage.

One request per passage, all sent in one concurrent round (``usage.depth == 1``). The
first generated token's log-probabilities give a graded relevance score, which is the
strongest way to use a small local model as a reranker (see the offline-model notes:
Qwen2.5-Coder-1.5B reached P@R 1.00 this way where its listwise output did not).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from .._errors import LLMError, ParseError, RankingFailedError
from .._plan import Outcome, Plan
from .._ranker import PlanRanker, Result, raise_if_permanent, warn_degraded
from .._relevance import from_log_odds
from .._text import truncate_tokens
from .._types import Candidate, Ranking, Usage, check_int
from ..llm._base import Completion, LLMRequest
from ..listwise._prompts import DEFAULT_MAX_QUERY_TOKENS

__all__ = ["LLMPointwiseRanker", "yes_no_score"]

log = logging.getLogger("rerank_rag.pointwise")

SYSTEM_PROMPT = (
    "You judge whether a passage is useful for answering a search query. "
    "Reply with exactly one word: Yes or No."
)
USER_TEMPLATE = (
    "Query: {query}\n\nPassage: {passage}\n\n"
    "Does the passage help answer the query? Answer Yes or No."
)

_MARKERS = "\u2581\u0120"  # SentencePiece "▁" and GPT-2 byte-level "Ġ" space markers
_TEXT_ANSWER = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def _norm_token(token: str) -> str:
    return token.strip().strip(_MARKERS).strip().strip(".,!:;\"'").lower()


def _logsumexp(values: list[float]) -> float:
    m = max(values)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(v - m) for v in values))


def yes_no_score(top_logprobs: Mapping[str, float]) -> float | None:
    """``log P("yes") - log P("no")`` from a first-token top-logprob mapping.

    Token strings are normalised (surrounding spaces, ``▁``/``Ġ`` markers and
    punctuation stripped, lowercased) and the probabilities of variants such as
    ``"Yes"``, ``" yes"`` and ``"YES"`` are summed. An answer missing from the top-k
    gets a floor of ``min(logprobs) - 1``. Returns ``None`` when neither answer is among
    the alternatives (the caller then falls back to the generated text).
    """
    yes: list[float] = []
    no: list[float] = []
    values: list[float] = []
    for tok, lp in top_logprobs.items():
        try:
            v = float(lp)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(v):  # NaN or -inf (probability 0): treat as absent
            continue
        values.append(v)
        t = _norm_token(str(tok))
        if t == "yes":
            yes.append(v)
        elif t == "no":
            no.append(v)
    if not yes and not no:
        return None
    floor = min(values) - 1.0
    return (_logsumexp(yes) if yes else floor) - (_logsumexp(no) if no else floor)


class LLMPointwiseRanker(PlanRanker):
    """Pointwise yes/no relevance with an LLM, scored by first-token log-probabilities.

    Each passage gets its own chat request ("Query: ... Passage: ... Does the passage
    help answer the query? Answer Yes or No.") with ``max_tokens=1, temperature=0,
    top_logprobs=20``; all requests go out in one concurrent round (the backend's
    ``max_concurrency`` bounds how many run at once).

    **Score** (higher is more relevant):

    * with log-probabilities: ``log P(Yes) - log P(No)`` of the first generated token
      (see :func:`yes_no_score`; a log-odds, 0 means undecided);
    * when the backend returns no log-probabilities (or neither answer is among
      them): the text, ``+1.0`` for an answer starting with "yes", ``-1.0`` for "no",
      ``0.0`` otherwise (counted in ``usage.parse_repairs``; ``strict=True`` raises
      :class:`~rerank_rag.ParseError` instead);
    * a call that failed transiently (after the backend's retries): ``min(other
      scores) - 1`` (the lowest score; failed passages keep their input order), counted
      in ``usage.fallbacks`` (the call also counts in ``usage.failed_calls``) and logged
      once per ranking at WARNING; ``strict=True`` raises
      :class:`~rerank_rag.RankingFailedError` instead;
    * a non-transient error (:class:`~rerank_rag.LLMConfigurationError`: wrong key,
      wrong URL, unknown model) is raised, never fallen back from.

    **Relevance** (``Ranking.relevance``): P(yes) = ``sigmoid(score)`` (0.73 / 0.27
    for a text Yes / No, 0.5 for an unreadable answer), 0 for a failed call.

    Log-odds and the ±1 text scores are on different scales: mixing them only happens
    when a backend returns log-probabilities for some calls and not others.

    A single candidate is scored too (one call), like every pointwise ranker: its score
    keeps the log-odds scale, so it can be thresholded (an order-only ranker returns a
    single candidate without a call).

    Args:
        llm: an LLM backend (anything :func:`rerank_rag.llm.as_backend` accepts).
        max_passage_tokens: passages are cut to this many tokens in the prompt
            (:func:`rerank_rag._text.truncate_tokens`: tiktoken when available, else a
            documented estimate; whitespace is collapsed).
        strict: raise instead of falling back (see above).
        top_logprobs: how many first-token alternatives to request (1..20).
        max_query_tokens: the query is cut to this many tokens in the prompt (``None``:
            no truncation; default 256).
    """

    #: ``Ranking.relevance`` is P(yes): a judgment, so a 0.5 threshold means something.
    judges_relevance = True

    def __init__(
        self,
        llm: Any,
        *,
        max_passage_tokens: int = 300,
        strict: bool = False,
        top_logprobs: int = 20,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> None:
        from ..llm._adapt import as_backend

        max_passage_tokens = check_int("max_passage_tokens", max_passage_tokens, 1)
        top_logprobs = check_int("top_logprobs", top_logprobs, 1)
        if top_logprobs > 20:
            raise ValueError(f"top_logprobs must be in 1..20, got {top_logprobs}")
        if max_query_tokens is not None:
            max_query_tokens = check_int("max_query_tokens", max_query_tokens, 1)
        self.llm = as_backend(llm)
        self.max_query_tokens = max_query_tokens
        self.max_passage_tokens = max_passage_tokens
        self.strict = bool(strict)
        self.top_logprobs = top_logprobs

    def __repr__(self) -> str:
        return (
            f"LLMPointwiseRanker({self.llm!r}, max_passage_tokens={self.max_passage_tokens}, "
            f"strict={self.strict})"
        )

    def _trivial(self, cands: list[Candidate], k: int) -> Ranking | None:  # type: ignore[override]
        # only the empty list is trivial: a single candidate is scored, so its score
        # stays a log-odds (callers may threshold it)
        if not cands:
            return Ranking(order=(), scores=(), usage=Usage())
        return None

    def build_request(self, query: str, passage: str) -> LLMRequest:
        """The chat request sent for one passage."""
        text = truncate_tokens(passage, self.max_passage_tokens)
        q = truncate_tokens(query, self.max_query_tokens)
        return LLMRequest.chat(
            [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_TEMPLATE.format(query=q, passage=text)},
            ],
            max_tokens=1,
            temperature=0,
            top_logprobs=self.top_logprobs,
        )

    def _score_outcome(
        self, i: int, outcome: Outcome, usage: Usage, failures: list[str]
    ) -> float | None:
        if isinstance(outcome, LLMError):
            raise_if_permanent(outcome)
            if self.strict:
                raise RankingFailedError(
                    f"LLM call for passage {i} failed: {outcome}"
                ) from outcome
            usage.fallbacks += 1
            failures.append(f"LLM call for passage {i} failed: {outcome}")
            return None
        assert isinstance(outcome, Completion)
        if outcome.top_logprobs:
            s = yes_no_score(outcome.top_logprobs)
            if s is not None:
                return s
        m = _TEXT_ANSWER.match(outcome.text or "")
        if m:
            return 1.0 if m.group(1).lower() == "yes" else -1.0
        if self.strict:
            raise ParseError(
                f"passage {i}: expected a Yes/No answer, got {outcome.text[:80]!r}"
            )
        usage.parse_repairs += 1
        return 0.0

    def _plan(self, query: str, cands: list[Candidate], usage: Usage) -> Plan[Result]:
        requests = [self.build_request(query, c.text) for c in cands]
        outcomes = yield requests
        failures: list[str] = []
        raw: list[float | None] = [
            self._score_outcome(i, o, usage, failures) for i, o in enumerate(outcomes)
        ]
        warn_degraded(
            log, "LLMPointwiseRanker", failures, len(cands), "passages", "the lowest score"
        )
        ok = [s for s in raw if s is not None]
        low = (min(ok) - 1.0) if ok else 0.0
        scores = [low if s is None else s for s in raw]
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return order, [scores[i] for i in order], from_log_odds([raw[i] for i in order])

