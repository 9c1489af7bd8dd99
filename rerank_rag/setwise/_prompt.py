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
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from .._errors import ParseError
from .._family import check_choice
from .._group_prompt import GroupPrompt, labels
from .._protocols import WindowParse
from .._types import check_int
from ..listwise._parse import fold_lookalikes, parse_permutation, strip_reasoning
from ..listwise._prompts import DEFAULT_MAX_QUERY_TOKENS, FirstTokenPrompt, _label
from ..llm._base import Completion

__all__ = ["PickBestPrompt", "SCORINGS"]

#: How an answer is read: the generated text, or first-token log-probabilities.
SCORINGS = ("generation", "logprobs")
_STANDALONE_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z]|\d{1,3})(?![A-Za-z0-9])")
#: The parse of a clean one-label answer naming position ``i`` (shared, immutable).
_PICKS = tuple(WindowParse(listed=(i,)) for i in range(26))


@lru_cache(maxsize=64)
def _clean(n: int, alpha: bool) -> Mapping[str, int]:
    """Bare labels and their positions (the text parser's fast path reads labels of up
    to 4 characters as clean picks)."""
    return MappingProxyType({_label(i, alpha): i for i in range(min(n, 9999))})


class PickBestPrompt(GroupPrompt):
    """Ask which of a few passages is the most relevant to the query.

    Args:
        scoring: ``"generation"`` (read the answer text) or ``"logprobs"`` (order the
            labels by first-token log-probability; needs a backend that returns them).
        id_style: ``"alpha"`` (default; letters for up to 26 passages, numbers beyond)
            or ``"numeric"``.
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        max_tokens: answer budget in generation mode (default 16; raise it for
            reasoning models, whose ``<think>`` blocks are stripped before parsing).
        top_logprobs: first-token alternatives requested in logprobs mode (>= 2).
        max_query_tokens: truncation budget of the query (``None``: no truncation;
            default 256, as in the listwise prompts).
    """

    name = "pick-best"
    default_id_style = "alpha"

    def __init__(
        self,
        *,
        scoring: str = "generation",
        id_style: str | None = None,
        max_passage_tokens: int | None = 300,
        max_tokens: int | None = None,
        top_logprobs: int = 20,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> None:
        scoring = check_choice("scoring", scoring, SCORINGS)
        super().__init__(
            id_style=id_style,
            max_passage_tokens=max_passage_tokens,
            max_tokens=max_tokens,
            max_query_tokens=max_query_tokens,
        )
        self.scoring = scoring
        self.top_logprobs = check_int("top_logprobs", top_logprobs, 2)
        # one read-only parameter mapping shared by every request of this prompt
        if scoring == "logprobs":
            params: dict[str, Any] = {
                "max_tokens": 1,
                "top_logprobs": self.top_logprobs,
                "temperature": 0,
            }
        else:
            params = {"max_tokens": self.max_tokens or 16, "temperature": 0}
        self._params: Mapping[str, Any] = MappingProxyType(params)

    def __repr__(self) -> str:
        return (
            f"PickBestPrompt(scoring={self.scoring!r}, id_style={self.id_style!r}, "
            f"max_passage_tokens={self.max_passage_tokens!r}, "
            f"max_query_tokens={self.max_query_tokens!r})"
        )

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "scoring": self.scoring, "top_logprobs": self.top_logprobs}

    # ------------------------------------------------------------------ build

    def _frame(
        self, query: str, n: int, picks: int | None
    ) -> tuple[str, tuple[str, ...], str, Mapping[str, Any]]:
        if picks not in (None, 1):
            raise ValueError(f"a pick-best prompt picks 1 passage, got picks={picks!r}")
        alpha = self._alpha(n)
        kind = "letter" if alpha else "number"
        if n == 2:
            head = "Which of the two passages below is more relevant to the search query?"
        else:
            head = f"Which of the {n} passages below is the most relevant to the search query?"
        before = f"{head}\n\nQUERY: {query}\n\nPASSAGES:\n"
        after = (
            f"\n\nAnswer with the {kind} of the most relevant passage only "
            f"(one of {_label(0, alpha)} to {_label(n - 1, alpha)}), without brackets "
            "and without explanation."
        )
        return before, labels(n, alpha), after, self._params

    # ------------------------------------------------------------------ parse

    def clean_answers(self, n: int) -> Mapping[str, int]:
        """The answers that name one of ``n`` passages with nothing to repair, and the
        position each names (``{"A": 0, "B": 1}``): :meth:`parse` reads them as
        ``WindowParse(listed=(i,))``, so a ranker may take them without parsing. Empty
        in logprobs mode (there the answer is the log-probabilities)."""
        if self.scoring != "generation" or n < 1:
            return MappingProxyType({})
        return _clean(n, self._alpha(n))


    # a token or a short answer as a label ("B", " B", "[B]", "2", look-alikes folded):
    # the rule of the listwise first-token prompt
    _token_label = staticmethod(FirstTokenPrompt._token_id)

    def _from_logprobs(self, tops: Any, n: int, alpha: bool) -> WindowParse | None:
        if tops.__class__ is not dict and not isinstance(tops, Mapping):
            return None
        clean = _clean(n, alpha)  # the usual tokens ("A", "B"): no normalisation
        best: dict[int, float] = {}
        for token, lp in tops.items():
            if lp.__class__ is not float:
                try:
                    lp = float(lp)
                except (TypeError, ValueError):
                    continue
            if lp != lp or lp == math.inf:  # NaN, +inf
                continue
            i = clean.get(token) if token.__class__ is str else None
            if i is None:
                i = self._token_label(token, n, alpha)
                if i is None:
                    continue
            if i not in best or lp > best[i]:
                best[i] = lp
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
        if type(n) is not int:
            n = check_int("n", n)
        if n <= 0:
            if n < 0:
                raise ValueError(f"n must be >= 0, got {n}")
            return WindowParse(listed=())
        alpha = self._alpha(n)
        if self.scoring == "generation":  # the usual answer, one bare label: no parser
            i = _clean(n, alpha).get(completion.text)
            if i is not None:
                return _PICKS[i] if i < 26 else WindowParse(listed=(i,))
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
