"""Shared plumbing of the prompts that show a small labelled group of passages.

:class:`~rerank_rag.setwise.PickBestPrompt` (setwise, pairwise) and
:class:`~rerank_rag.tournament.SelectPrompt` (tournaments) show ``[A] text`` /
``[1] text`` lines between a fixed head and tail. They share the listwise text prompts'
settings and rules (``id_style``, ``max_passage_tokens``, ``max_tokens``,
``max_query_tokens``, letters only up to 26 passages, passages sanitised and truncated,
the query budgeted; :class:`~rerank_rag.listwise._prompts._TextPrompt`).

Sorting rankers send hundreds or thousands of such prompts per query that differ only in
*which* candidates they show, so a prompt is **bound** once per ranking
(:meth:`GroupPrompt.bind`):

* the query is collapsed and cut to ``max_query_tokens``, once;
* every passage is sanitised, truncated to ``max_passage_tokens`` and given its
  first-stage note (:func:`~rerank_rag._evidence.with_evidence`), once;
* the text around the passages (the *frame*) is built once per group shape.

A request then costs a few look-ups and one join. ``build(query, passages)`` is the
same thing for a single group (bind, then show every passage in order), so both paths
produce the same prompt text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ._types import check_int
from .listwise._prompts import DEFAULT_MAX_QUERY_TOKENS, _check_passages, _label, _TextPrompt
from .listwise._prompts import _check_style as check_id_style
from .llm._base import LLMRequest

__all__ = ["GroupPrompt", "BoundPrompt", "check_budget", "check_id_style", "labels"]


def check_budget(name: str, value: Any) -> int | None:
    """``None`` or an int >= 1 (any integer type; TypeError / ValueError otherwise)."""
    return None if value is None else check_int(name, value, 1)


@lru_cache(maxsize=512)
def labels(n: int, alpha: bool) -> tuple[str, ...]:
    """``("[A] ", "\\n[B] ", ...)``: the label of each line, with the line break before
    every line but the first (so a group's lines are one ``"".join``)."""
    return tuple(("\n" if i else "") + f"[{_label(i, alpha)}] " for i in range(n))


def _request_factory() -> Any:
    """``request(messages, params)``: an :class:`LLMRequest` for messages valid by
    construction, set through the frozen dataclass's slots (its generated ``__init__``
    costs about twice as much; a sorting ranker builds thousands per query)."""
    try:
        set_messages = LLMRequest.__dict__["messages"].__set__
        set_params = LLMRequest.__dict__["params"].__set__
    except (KeyError, AttributeError):  # not a slots dataclass any more: the plain way
        return lambda messages, params: LLMRequest(messages=messages, params=params)
    new = object.__new__

    def request(messages: tuple[Mapping[str, str], ...], params: Mapping[str, Any]) -> LLMRequest:
        req = new(LLMRequest)
        set_messages(req, messages)
        set_params(req, params)
        return req  # type: ignore[no-any-return]

    return request


_request = _request_factory()


class BoundPrompt:
    """A :class:`GroupPrompt` bound to one query and one list of passages.

    ``bound(positions)`` (``bound(positions, picks)`` for a selection prompt) is the
    request showing ``passages[p]`` for each ``p`` in ``positions``, in that order.
    """

    __slots__ = ("prompt", "query", "shown", "_frames")

    def __init__(self, prompt: GroupPrompt, query: str, shown: list[str]) -> None:
        self.prompt = prompt
        self.query = query  # as shown: collapsed and cut to max_query_tokens
        self.shown = shown  # each passage as shown: prepared, with its first-stage note
        self._frames: dict[Any, tuple[str, tuple[str, ...], str, Mapping[str, Any]]] = {}

    def __call__(self, positions: Sequence[int], picks: int | None = None) -> LLMRequest:
        n = len(positions)
        key = n if picks is None else (n, picks)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = self.prompt._frame(self.query, n, picks)
        before, tags, after, params = frame
        shown = self.shown
        if n == 2:  # pairwise: one f-string, one copy of the text
            content = f"{before}{tags[0]}{shown[positions[0]]}{tags[1]}{shown[positions[1]]}{after}"
        else:
            parts = [before]
            for tag, p in zip(tags, positions):
                parts += (tag, shown[p])
            parts.append(after)
            content = "".join(parts)
        # valid by construction: skip LLMRequest.chat's checks; params are read-only
        return _request(({"role": "user", "content": content},), params)


class GroupPrompt(_TextPrompt):
    """Base of the labelled-group prompts: the listwise text-prompt settings, binding.

    Subclasses set ``name`` and ``default_id_style`` and implement
    ``_frame(query, n, picks) -> (before, labels, after, params)``.

    Args:
        id_style: ``"alpha"`` or ``"numeric"`` (``None``: the prompt's default).
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
        max_tokens: answer budget (``None``: the prompt's default).
        max_query_tokens: truncation budget of the query (``None``: no truncation;
            default 256, as in the listwise prompts).

    Integer settings follow the integer rule (any integer type, numpy's too);
    a wrong type raises ``TypeError``, a wrong value ``ValueError``.
    """

    name = "group"
    default_id_style = "alpha"
    expect_all = False

    def __init__(
        self,
        *,
        id_style: str | None = None,
        max_passage_tokens: int | None = 300,
        max_tokens: int | None = None,
        max_query_tokens: int | None = DEFAULT_MAX_QUERY_TOKENS,
    ) -> None:
        super().__init__(
            id_style=check_id_style(self.default_id_style if id_style is None else id_style),
            max_passage_tokens=check_budget("max_passage_tokens", max_passage_tokens),
            max_tokens=check_budget("max_tokens", max_tokens),
            max_query_tokens=check_budget("max_query_tokens", max_query_tokens),
        )

    def _frame(
        self, query: str, n: int, picks: int | None
    ) -> tuple[str, tuple[str, ...], str, Mapping[str, Any]]:
        raise NotImplementedError

    def build(
        self, query: str, passages: Sequence[str], *, picks: int | None = None
    ) -> LLMRequest:
        """The request showing ``passages`` in order (``picks``: how many to select, for
        a selection prompt; default half the group, rounded up)."""
        if isinstance(passages, str) or len(passages) < 2:
            raise ValueError(f"a {self.name} prompt needs a sequence of at least 2 passages")
        return self.bind(query, passages)(range(len(passages)), picks)

    def bind(self, query: str, passages: Sequence[str]) -> BoundPrompt:
        """Prepare ``query`` and every passage once (see the module docstring)."""
        _check_passages(query, passages)
        return BoundPrompt(self, self._query(query), self._texts(passages))
