"""Window prompts: how one window of passages is shown to an LLM and read back.

Every prompt implements :class:`~rerank_rag.WindowPrompt`: ``build(query, passages)``
returns an :class:`~rerank_rag.LLMRequest`; ``parse(completion, n, strict=...)`` returns
a :class:`~rerank_rag.WindowParse` of 0-based window positions. Both methods are
self-contained (no state between calls), so the listwise ranker and JointRank share them.

* :class:`RankGPTPrompt`: the RankGPT multi-turn chat (one user turn per passage), asks
  for a full permutation ``[2] > [1] > ...``.
* :class:`RelevantOnlyPrompt`: JointRank-style single message; asks for the relevant
  ids only, most relevant first, or ``NO_RELEVANT_SNIPPETS`` when none is relevant.
* :class:`FirstTokenPrompt`: FIRST-style; asks for the single most relevant id with one
  output token and orders passages by the first-token log-probabilities.

Passages are sanitised (bracketed ids inside a passage become ``(3)``, whitespace and
line breaks collapsed) and truncated to ``max_passage_tokens`` tokens
(:mod:`rerank_rag._text`); the query is collapsed and truncated to ``max_query_tokens``
tokens (default 256) the same way, so a huge query cannot blow up every prompt. Ids are ``[1]``, ``[2]``, ... or, with ``id_style="alpha"``,
``[A]``, ``[B]``, ...; alpha ids are used only for windows of at most 26 passages, larger
windows fall back to numbers (``parse`` applies the same rule, so it always reads the
ids ``build`` used).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import ParseError
from .._evidence import with_evidence
from .._protocols import WindowParse, WindowPrompt
from .._text import prepare_passage, truncate_tokens
from ..llm._base import Completion, LLMRequest
from ._parse import fold_lookalikes, parse_permutation

__all__ = [
    "RankGPTPrompt",
    "RelevantOnlyPrompt",
    "FirstTokenPrompt",
    "get_prompt",
    "PROMPT_NAMES",
    "NO_RELEVANT_TOKEN",
]

#: What :class:`RelevantOnlyPrompt` asks the model to answer when nothing is relevant.
NO_RELEVANT_TOKEN = "NO_RELEVANT_SNIPPETS"

_ALPHA_MAX = 26


def _check_style(id_style: str) -> str:
    if id_style not in ("numeric", "alpha"):
        raise ValueError(f"id_style must be 'numeric' or 'alpha', got {id_style!r}")
    return id_style


#: Default token budget of the query in a prompt.
DEFAULT_MAX_QUERY_TOKENS = 256


def _check_budget(value: int | None, name: str = "max_passage_tokens") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def prepare_query(query: str, max_query_tokens: int | None) -> str:
    """The query as shown in a prompt: whitespace collapsed, cut to the token budget."""
    return truncate_tokens(query, max_query_tokens)


def _check_max_tokens(max_tokens: int | None) -> int | None:
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise ValueError(f"max_tokens must be a positive int or None, got {max_tokens!r}")
    return max_tokens


def _check_passages(query: str, passages: Sequence[str]) -> None:
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    if isinstance(passages, str):
        raise TypeError("passages must be a sequence of strings, not a single string")
    if len(passages) == 0:
        raise ValueError("a window needs at least one passage")
    for i, p in enumerate(passages):
        if not isinstance(p, str):
            raise TypeError(f"passage {i} must be a string, got {type(p).__name__}")


def _label(i: int, alpha: bool) -> str:
    """The id of 0-based position ``i``: ``"3"`` or ``"C"`` (without brackets)."""
    return chr(65 + i) if alpha else str(i + 1)


class _TextPrompt:
    """Shared plumbing of the prompts whose answer is a list of ids."""

    name = "text"
    #: whether the prompt asks for every id (missing ids then count as a repair)
    expect_all = True
    #: renders a first-stage note attached by FirstStageEvidence (InsertRank)
    renders_evidence = True

    def __init__(
        self,
        *,
        id_style: str = "numeric",
        max_passage_tokens: int | None = 300,
        max_tokens: int | None = None,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> None:
        self.id_style = _check_style(id_style)
        self.max_passage_tokens = _check_budget(max_passage_tokens)
        self.max_tokens = _check_max_tokens(max_tokens)
        self.max_query_tokens = _check_budget(max_query_tokens, "max_query_tokens")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id_style={self.id_style!r}, "
            f"max_passage_tokens={self.max_passage_tokens!r}, max_tokens={self.max_tokens!r}, "
            f"max_query_tokens={self.max_query_tokens!r})"
        )

    def _query(self, query: str) -> str:
        return prepare_query(query, self.max_query_tokens)

    def _alpha(self, n: int) -> bool:
        return self.id_style == "alpha" and n <= _ALPHA_MAX

    def answer_budget(self, n: int) -> int:
        """``max_tokens`` for an answer listing ``n`` ids (about 4 tokens per id + margin)."""
        if self.max_tokens is not None:
            return self.max_tokens
        return 4 * n + 16

    def _texts(self, passages: Sequence[str]) -> list[str]:
        # a first-stage note attached by FirstStageEvidence (InsertRank) follows the text
        return [with_evidence(prepare_passage(p, self.max_passage_tokens), p) for p in passages]

    def parse(self, completion: Completion, n: int, *, strict: bool = False) -> WindowParse:
        """Read the ids from ``completion.text`` (see :func:`parse_permutation`)."""
        return parse_permutation(
            completion.text,
            n,
            id_style="alpha" if self._alpha(n) else "numeric",
            strict=strict,
            expect_all=self.expect_all,
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "max_tokens": self.max_tokens,
            "max_query_tokens": self.max_query_tokens,
        }


class RankGPTPrompt(_TextPrompt):
    """The RankGPT multi-turn chat prompt (Sun et al., 2023), in our own wording.

    A system message, an introduction, then one user turn ``[i] passage`` per passage,
    each acknowledged by an assistant turn, and a final instruction to answer only with
    the full ranking ``[] > []``. ``parse`` expects every id; missing ones are a repair.

    Args:
        id_style: ``"numeric"`` or ``"alpha"`` (letters for windows of up to 26).
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        max_tokens: answer budget; default ``4 * n + 16``.
        max_query_tokens: truncation budget of the query (``None``: no truncation).
    """

    name = "rankgpt"
    expect_all = True

    def build(self, query: str, passages: Sequence[str]) -> LLMRequest:
        _check_passages(query, passages)
        n = len(passages)
        alpha = self._alpha(n)
        q = self._query(query)
        first, last = f"[{_label(0, alpha)}]", f"[{_label(n - 1, alpha)}]"
        kind = "a letter" if alpha else "a number"
        messages: list[dict[str, str]] = [
            {
                "role": "system",
                "content": "You are RankGPT, an assistant that orders passages by how "
                "relevant they are to a search query.",
            },
            {
                "role": "user",
                "content": f"You will receive {n} passages, each labelled with {kind} "
                f"between brackets, from {first} to {last}. Rank them by relevance to "
                f"this search query: {q}",
            },
            {"role": "assistant", "content": "Understood. Please send the passages."},
        ]
        for i, text in enumerate(self._texts(passages)):
            label = f"[{_label(i, alpha)}]"
            messages.append({"role": "user", "content": f"{label} {text}"})
            messages.append({"role": "assistant", "content": f"Got passage {label}."})
        example = " > ".join(f"[{_label(i, alpha)}]" for i in (1, 0) if i < n)
        messages.append(
            {
                "role": "user",
                "content": f"Search query: {q}\n\n"
                f"Order all {n} passages above from most to least relevant to the search "
                f"query. Use every label exactly once, in the format [] > [] "
                f"(for example {example}). Reply with the ranking only, no explanation.",
            }
        )
        return LLMRequest.chat(messages, max_tokens=self.answer_budget(n))


class RelevantOnlyPrompt(_TextPrompt):
    """JointRank-style prompt: one user message, relevant ids only, best first.

    The model may leave out irrelevant snippets (not a repair: the ranker keeps them
    after the listed ones, in their previous order) or answer
    ``NO_RELEVANT_SNIPPETS`` when none is relevant (an empty, non-repaired parse).

    Args: as :class:`RankGPTPrompt`.
    """

    name = "relevant-only"
    expect_all = False

    def build(self, query: str, passages: Sequence[str]) -> LLMRequest:
        _check_passages(query, passages)
        n = len(passages)
        alpha = self._alpha(n)
        lines = [
            "Rank the snippets below by how relevant they are to the query.",
            "Relevance, from high to low: the snippet answers the query directly; it "
            "answers it partly or indirectly; it is on the topic but does not answer; "
            "it is unrelated.",
            "",
            f"QUERY: {self._query(query)}",
            "",
            "SNIPPETS:",
        ]
        for i, text in enumerate(self._texts(passages)):
            lines.append(f"[{_label(i, alpha)}] {text}")
        ids = " ".join(f"[{_label(i, alpha)}]" for i in range(n))
        example = " > ".join(f"[{_label(i, alpha)}]" for i in (1, 0) if i < n)
        lines += [
            "",
            "INSTRUCTIONS:",
            "- Work out what the query is really asking for.",
            "- Judge how well each snippet answers it; snippets may be cut short, and "
            "may use synonyms or other wording.",
            "- Output the ids of the relevant snippets (those that answer the query fully "
            "or partly), most relevant first, separated by ' > ' "
            f"(for example {example}).",
            "- Leave out snippets that are unrelated to the query.",
            "- Output nothing else: no explanation.",
            # (last: a small model given this line earlier tended to answer it by default)
            f"- Only if every snippet is unrelated, output {NO_RELEVANT_TOKEN} instead of ids.",
            "",
            f"Snippet ids: {ids}",
            "Ranking:",
        ]
        return LLMRequest.chat(
            [{"role": "user", "content": "\n".join(lines)}], max_tokens=self.answer_budget(n)
        )


class FirstTokenPrompt:
    """FIRST-style prompt: rank by the log-probabilities of the first output token.

    Asks for the id of the single most relevant passage (by default letters ``A``..``Z``
    for up to 26 passages, numbers beyond) with ``max_tokens=1, top_logprobs=20, temperature=0``.
    ``parse`` orders ids by their first-token log-probability (token strings are
    stripped of spaces and brackets; the best logprob per id counts); ids absent from the
    top list are omitted (not a repair) and the ranker keeps them after the listed ones.
    ``WindowParse.scores`` holds the logprobs.

    If the backend returned no logprobs (or none of them is an id), the text is read as
    a single id and the parse is marked repaired. Numeric ids (windows over 26) are
    reliable only with tokenizers that keep small numbers in one token (cl100k/o200k
    do; Llama-style digit-by-digit tokenizers do not): keep windows at 26 or fewer.

    Args:
        id_style: ``"alpha"`` (default: letters for up to 26 passages, numbers beyond)
            or ``"numeric"`` (always numbers).
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        top_logprobs: how many first-token alternatives to request (OpenAI allows 20).
        max_query_tokens: truncation budget of the query (``None``: no truncation).
    """

    name = "first-token"
    renders_evidence = True

    def __init__(
        self,
        *,
        id_style: str = "alpha",
        max_passage_tokens: int | None = 300,
        top_logprobs: int = 20,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> None:
        self.id_style = _check_style(id_style)
        self.max_passage_tokens = _check_budget(max_passage_tokens)
        self.max_query_tokens = _check_budget(max_query_tokens, "max_query_tokens")
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or top_logprobs < 1:
            raise ValueError(f"top_logprobs must be a positive int, got {top_logprobs!r}")
        self.top_logprobs = top_logprobs

    def __repr__(self) -> str:
        return (
            f"FirstTokenPrompt(id_style={self.id_style!r}, "
            f"max_passage_tokens={self.max_passage_tokens!r}, top_logprobs={self.top_logprobs!r})"
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id_style": self.id_style,
            "max_passage_tokens": self.max_passage_tokens,
            "top_logprobs": self.top_logprobs,
            "max_query_tokens": self.max_query_tokens,
        }

    def _alpha(self, n: int) -> bool:
        return self.id_style == "alpha" and n <= _ALPHA_MAX

    def build(self, query: str, passages: Sequence[str]) -> LLMRequest:
        _check_passages(query, passages)
        n = len(passages)
        alpha = self._alpha(n)
        kind = "letter" if alpha else "number"
        lines = [
            "Which passage is the most relevant to the search query?",
            "",
            f"QUERY: {prepare_query(query, self.max_query_tokens)}",
            "",
            "PASSAGES:",
        ]
        for i, p in enumerate(passages):
            text = with_evidence(prepare_passage(p, self.max_passage_tokens), p)
            lines.append(f"[{_label(i, alpha)}] {text}")
        lines += [
            "",
            f"Answer with the {kind} of the single most relevant passage, without "
            f"brackets and nothing else (one of {_label(0, alpha)} to {_label(n - 1, alpha)}). "
            "If none is relevant, answer with the closest one.",
        ]
        return LLMRequest.chat(
            [{"role": "user", "content": "\n".join(lines)}],
            max_tokens=1,
            top_logprobs=self.top_logprobs,
            temperature=0,
        )

    @staticmethod
    def _token_id(token: str, n: int, alpha: bool) -> int | None:
        key = fold_lookalikes(str(token)).strip().strip("[](){}<>.,:;*\"'`#").strip()
        if alpha:
            if len(key) == 1 and key.isascii() and key.isalpha():
                i = ord(key.upper()) - 65
                return i if 0 <= i < n else None
            return None
        if key.isascii() and key.isdigit() and len(key) <= 6:
            i = int(key) - 1
            return i if 0 <= i < n else None
        return None

    def parse(self, completion: Completion, n: int, *, strict: bool = False) -> WindowParse:
        """Order ids by first-token logprob; fall back to reading the text as one id."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if n == 0:
            return WindowParse(listed=())
        alpha = self._alpha(n)
        best: dict[int, float] = {}
        tops = completion.top_logprobs
        if isinstance(tops, Mapping):
            for token, lp in tops.items():
                try:
                    value = float(lp)
                except (TypeError, ValueError):
                    continue
                if math.isnan(value):
                    continue
                i = self._token_id(token, n, alpha)
                if i is not None and (i not in best or value > best[i]):
                    best[i] = value
        if best:
            listed = sorted(best, key=lambda i: (-best[i], i))
            return WindowParse(
                listed=tuple(listed), repaired=False, scores=tuple(best[i] for i in listed)
            )
        try:
            parsed = parse_permutation(
                completion.text, n, id_style="alpha" if alpha else "numeric", strict=strict
            )
        except ParseError as exc:
            raise ParseError(f"no usable first-token logprobs, and {exc}") from None
        return WindowParse(listed=parsed.listed[:1], repaired=True)


_PROMPTS: dict[str, type] = {
    "rankgpt": RankGPTPrompt,
    "relevant-only": RelevantOnlyPrompt,
    "first-token": FirstTokenPrompt,
}
_ALIASES = {
    "rank-gpt": "rankgpt",
    "relevant": "relevant-only",
    "jointrank": "relevant-only",
    "first": "first-token",
    "logits": "first-token",
}

#: Names accepted by :func:`get_prompt`.
PROMPT_NAMES: tuple[str, ...] = tuple(_PROMPTS)


def get_prompt(name_or_obj: str | WindowPrompt, **kw: Any) -> WindowPrompt:
    """Return a :class:`~rerank_rag.WindowPrompt`.

    A name (``"rankgpt"``, ``"relevant-only"``, ``"first-token"``; ``_`` and case are
    ignored) builds the prompt with ``kw`` (e.g. ``max_passage_tokens=300``,
    ``id_style="alpha"``; options a prompt does not take raise ``TypeError``). An
    object with callable ``build`` and ``parse`` is returned unchanged and ``kw`` is
    ignored (the object carries its own settings).
    """
    if isinstance(name_or_obj, str):
        key = name_or_obj.strip().lower().replace("_", "-")
        key = _ALIASES.get(key, key)
        cls = _PROMPTS.get(key)
        if cls is None:
            raise ValueError(
                f"unknown prompt {name_or_obj!r}; choose one of {', '.join(PROMPT_NAMES)} "
                "or pass a WindowPrompt object"
            )
        return cls(**kw)  # type: ignore[no-any-return]
    if callable(getattr(name_or_obj, "build", None)) and callable(
        getattr(name_or_obj, "parse", None)
    ):
        return name_or_obj
    raise TypeError(
        f"prompt must be a name ({', '.join(PROMPT_NAMES)}) or an object with build() and "
        f"parse() methods, got {type(name_or_obj).__name__}"
    )
