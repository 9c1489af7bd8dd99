"""The "which passage is the most relevant?" prompt of setwise and pairwise ranking.

:class:`PickBestPrompt` shows a small group of passages labelled ``[A]``, ``[B]``, ...
(numbers with ``id_style="numeric"``, or for groups over 26) and asks for the label of the
most relevant one; for two passages it asks which of the two is more relevant (the PRP
prompt of Qin et al. 2023, in our own wording). It follows the
:class:`~rerank_rag.WindowPrompt` protocol, so the parse is a
:class:`~rerank_rag.WindowParse` whose first listed position is the pick.

Two ways to read the answer (``scoring``):

* ``"generation"``: the answer text (``B``, ``[B]``, ``Passage B``, ``B > A``,
  "The most relevant passage is B."); the first valid label wins.
* ``"logprobs"``: one output token with ``top_logprobs``; the labels are ordered by
  their first-token log-probability (``WindowParse.scores`` holds them), which also
  gives pairwise ranking a probability instead of a hard vote. Without usable
  logprobs the text is read instead and the parse is marked repaired.

An answer naming no valid label parses to an empty ``listed`` (``repaired=True``), or
raises :class:`~rerank_rag.ParseError` with ``strict=True``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from .._errors import ParseError
from .._evidence import with_evidence
from .._protocols import WindowParse
from .._text import collapse_whitespace, prepare_passage
from ..listwise._parse import fold_lookalikes, parse_permutation, strip_reasoning
from ..llm._base import Completion, LLMRequest

__all__ = ["PickBestPrompt", "SCORINGS"]

#: How an answer is read: the generated text, or first-token log-probabilities.
SCORINGS = ("generation", "logprobs")
_ALPHA_MAX = 26
_STANDALONE_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z]|\d{1,3})(?![A-Za-z0-9])")
_TOKEN_STRIP = "[](){}<>.,:;*\"'`#"


def _label(i: int, alpha: bool) -> str:
    return chr(65 + i) if alpha else str(i + 1)


@lru_cache(maxsize=256)
def _frame(query: str, n: int, alpha: bool) -> tuple[str, str, tuple[str, ...]]:
    """The text before and after the passages, and the labels (cached: sorting
    methods build hundreds of prompts per query that differ only in their passages)."""
    kind = "letter" if alpha else "number"
    if n == 2:
        head = "Which of the two passages below is more relevant to the search query?"
    else:
        head = f"Which of the {n} passages below is the most relevant to the search query?"
    labels = tuple(f"[{_label(i, alpha)}] " for i in range(n))
    before = f"{head}\n\nQUERY: {collapse_whitespace(query)}\n\nPASSAGES:\n"
    after = (
        f"\n\nAnswer with the {kind} of the most relevant passage only "
        f"(one of {_label(0, alpha)} to {_label(n - 1, alpha)}), without brackets "
        "and without explanation."
    )
    return before, after, labels


class PickBestPrompt:
    """Ask which of a few passages is the most relevant to the query.

    Args:
        scoring: ``"generation"`` (read the answer text) or ``"logprobs"`` (order the
            labels by first-token log-probability; needs a backend that returns them).
        id_style: ``"alpha"`` (default; letters for up to 26 passages, numbers beyond)
            or ``"numeric"``.
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        max_tokens: answer budget in generation mode (default 16; raise it for
            reasoning models, whose ``<think>`` blocks are stripped before parsing).
        top_logprobs: first-token alternatives requested in logprobs mode.
    """

    name = "pick-best"
    expect_all = False
    renders_evidence = True

    def __init__(
        self,
        *,
        scoring: str = "generation",
        id_style: str = "alpha",
        max_passage_tokens: int | None = 300,
        max_tokens: int | None = None,
        top_logprobs: int = 20,
    ) -> None:
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
        if id_style not in ("alpha", "numeric"):
            raise ValueError(f"id_style must be 'numeric' or 'alpha', got {id_style!r}")
        if max_passage_tokens is not None and (
            isinstance(max_passage_tokens, bool)
            or not isinstance(max_passage_tokens, int)
            or max_passage_tokens < 1
        ):
            raise ValueError(f"max_passage_tokens must be a positive int or None, got {max_passage_tokens!r}")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ValueError(f"max_tokens must be a positive int or None, got {max_tokens!r}")
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or top_logprobs < 2:
            raise ValueError(f"top_logprobs must be an int >= 2, got {top_logprobs!r}")
        self.scoring = scoring
        self.id_style = id_style
        self.max_passage_tokens = max_passage_tokens
        self.max_tokens = max_tokens
        self.top_logprobs = top_logprobs
        # one read-only parameter mapping shared by every request of this prompt
        if scoring == "logprobs":
            params: dict[str, Any] = {"max_tokens": 1, "top_logprobs": top_logprobs, "temperature": 0}
        else:
            params = {"max_tokens": max_tokens or 16, "temperature": 0}
        self._params: Mapping[str, Any] = MappingProxyType(params)

    def __repr__(self) -> str:
        return (
            f"PickBestPrompt(scoring={self.scoring!r}, id_style={self.id_style!r}, "
            f"max_passage_tokens={self.max_passage_tokens!r})"
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scoring": self.scoring,
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "max_tokens": self.max_tokens,
            "top_logprobs": self.top_logprobs,
        }

    def _alpha(self, n: int) -> bool:
        return self.id_style == "alpha" and n <= _ALPHA_MAX

    # ------------------------------------------------------------------ build

    def build(self, query: str, passages: Sequence[str]) -> LLMRequest:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if isinstance(passages, str) or len(passages) < 2:
            raise ValueError("a pick-best prompt needs a sequence of at least 2 passages")
        n = len(passages)
        before, after, labels = _frame(query, n, self._alpha(n))
        budget = self.max_passage_tokens
        lines = []
        for i, p in enumerate(passages):
            if not isinstance(p, str):
                raise TypeError(f"passage {i} must be a string, got {type(p).__name__}")
            lines.append(labels[i] + with_evidence(prepare_passage(p, budget), p))
        content = before + "\n".join(lines) + after
        # messages built here are valid by construction: skip LLMRequest.chat's checks
        return LLMRequest(messages=({"role": "user", "content": content},), params=self._params)

    # ------------------------------------------------------------------ parse

    @staticmethod
    def _token_label(token: str, n: int, alpha: bool) -> int | None:
        if alpha and len(token) == 1 and "A" <= token <= "Z":  # the usual token: fast path
            i = ord(token) - 65
            return i if i < n else None
        key = fold_lookalikes(str(token)).strip().strip(_TOKEN_STRIP).strip()
        if alpha:
            if len(key) == 1 and key.isascii() and key.isalpha():
                i = ord(key.upper()) - 65
                return i if 0 <= i < n else None
            return None
        if key.isascii() and key.isdigit() and len(key) <= 4:
            i = int(key) - 1
            return i if 0 <= i < n else None
        return None

    def _from_logprobs(self, tops: Any, n: int, alpha: bool) -> WindowParse | None:
        if not isinstance(tops, Mapping):
            return None
        best: dict[int, float] = {}
        for token, lp in tops.items():
            try:
                value = float(lp)
            except (TypeError, ValueError):
                continue
            if math.isnan(value) or value == math.inf:
                continue
            i = self._token_label(token, n, alpha)
            if i is not None and (i not in best or value > best[i]):
                best[i] = value
        if not best or all(v == -math.inf for v in best.values()):
            return None
        listed = sorted(best, key=lambda i: (-best[i], i))
        return WindowParse(listed=tuple(listed), scores=tuple(best[i] for i in listed))

    def _from_text(self, text: str, n: int, alpha: bool) -> tuple[int | None, bool]:
        short = (text or "").strip()
        if len(short) <= 4:  # the usual answer, "B" or "[B]": no need for the full parser
            i = self._token_label(short, n, alpha)
            if i is not None:
                return i, False
        parsed = parse_permutation(
            text, n, id_style="alpha" if alpha else "numeric", strict=False, expect_all=False
        )
        if parsed.listed:
            return parsed.listed[0], parsed.repaired
        # "The most relevant passage is B." : a single standalone label in range
        cleaned = fold_lookalikes(strip_reasoning(text or ""))
        found = set()
        for tok in _STANDALONE_RE.findall(cleaned):
            i = self._token_label(tok, n, alpha)
            if i is not None:
                found.add(i)
        if len(found) == 1:
            return found.pop(), True
        return None, True

    def parse(self, completion: Completion, n: int, *, strict: bool = False) -> WindowParse:
        """The picked position first (logprobs mode: every scored label, best first)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if n == 0:
            return WindowParse(listed=())
        alpha = self._alpha(n)
        repaired = False
        if self.scoring == "logprobs":
            got = self._from_logprobs(completion.top_logprobs, n, alpha)
            if got is not None:
                return got
            repaired = True  # no usable logprobs: read the text
        pick, rep = self._from_text(completion.text, n, alpha)
        if pick is None:
            if strict:
                excerpt = " ".join(str(completion.text or "").split())[:120]
                raise ParseError(f"the answer names none of the {n} passages: {excerpt!r}")
            return WindowParse(listed=(), repaired=True)
        return WindowParse(listed=(pick,), repaired=repaired or rep)
