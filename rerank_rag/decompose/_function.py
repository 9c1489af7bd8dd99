"""Adapting what the pipeline accepts as ``decomposer`` (an LLM, a function, ``None``)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import is_permanent
from .._ranker import check_query
from .._sync import is_async_callable, run_sync
from .._types import Usage
from ._decomposer import (
    DEFAULT_MAX_SUBQUESTIONS,
    Decomposer,
    Decomposition,
    _check_max,
    _short,
    describe,
)
from ._parse import dedupe_subquestions

__all__ = ["as_decomposer"]

log = logging.getLogger("rerank_rag.decompose")


class _FunctionDecomposer:
    """A function ``question -> list[str]`` (sync or async) behind the Decomposer interface.

    Its answer is de-duplicated against the question and cut to ``max_subquestions``
    (a longer answer is logged once per decomposer at WARNING). An exception, or an
    answer that is not a list of strings, is a fallback (an empty decomposition, logged
    and recorded) unless ``strict`` or the error is permanent.
    """

    def __init__(self, fn: Callable[[str], Any], max_subquestions: int, strict: bool) -> None:
        self.fn = fn
        self.max_subquestions = _check_max(max_subquestions)
        self.strict = strict
        self._warned_cap = False

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        return f"FunctionDecomposer({name}, max_subquestions={self.max_subquestions})"

    def _result(self, question: str, subs: Any, t0: float) -> Decomposition:
        if subs is None:
            subs = []
        if isinstance(subs, (str, bytes)) or not isinstance(subs, Sequence):
            raise TypeError(
                f"a decomposer function must return a list of strings, got {type(subs).__name__}"
            )
        for i, s in enumerate(subs):
            if not isinstance(s, str):
                raise TypeError(f"a decomposer function returned {type(s).__name__} at position {i}")
        every = dedupe_subquestions(subs, question=question)
        if len(every) > self.max_subquestions and not self._warned_cap:
            self._warned_cap = True
            log.warning(
                "decomposer %r returned %d sub-questions; only the first %d are retrieved "
                "(max_subquestions; logged once per decomposer)",
                self, len(every), self.max_subquestions,
            )
        kept = tuple(every[: self.max_subquestions])
        return Decomposition(question, kept, usage=Usage(wall_time=time.perf_counter() - t0))

    def _failed(self, question: str, exc: Exception, t0: float) -> Decomposition:
        if self.strict or is_permanent(exc):
            raise exc
        log.warning("question decomposition degraded for %r: %s", _short(question), describe(exc))
        usage = Usage(fallbacks=1, wall_time=time.perf_counter() - t0)
        return Decomposition(question, (), usage=usage, error=describe(exc))

    def decompose(self, question: str) -> Decomposition:
        question = check_query(question)
        t0 = time.perf_counter()
        try:
            subs = self.fn(question)
            if inspect.isawaitable(subs):
                subs = run_sync(subs)
            return self._result(question, subs, t0)
        except Exception as exc:  # noqa: BLE001 - degrade or raise, see _failed
            return self._failed(question, exc, t0)

    async def adecompose(self, question: str) -> Decomposition:
        question = check_query(question)
        t0 = time.perf_counter()
        try:
            if is_async_callable(self.fn):
                subs = await self.fn(question)
            else:
                subs = await asyncio.to_thread(self.fn, question)
                if inspect.isawaitable(subs):
                    subs = await subs
            return self._result(question, subs, t0)
        except Exception as exc:  # noqa: BLE001
            return self._failed(question, exc, t0)


def as_decomposer(
    obj: Any, *, max_subquestions: int | None = None, strict: bool = False
) -> Decomposer | _FunctionDecomposer | None:
    """Normalise what the pipeline accepts as ``decomposer``.

    * ``None``: no decomposition (returned as ``None``);
    * a :class:`Decomposer`: returned as is (it keeps its own ``max_subquestions``;
      a different explicit ``max_subquestions`` is a ``ValueError``);
    * an LLM backend (``complete`` + ``acomplete``): a default :class:`Decomposer`;
    * a callable ``question -> list[str]`` (sync or async).

    ``max_subquestions`` (default :data:`DEFAULT_MAX_SUBQUESTIONS`) caps the last two.
    """
    if obj is None:
        return None
    if isinstance(obj, (Decomposer, _FunctionDecomposer)):
        if max_subquestions is not None and max_subquestions != obj.max_subquestions:
            raise ValueError(
                f"max_subquestions={max_subquestions} conflicts with the decomposer's own "
                f"max_subquestions={obj.max_subquestions}; set it on the Decomposer"
            )
        return obj
    m = DEFAULT_MAX_SUBQUESTIONS if max_subquestions is None else max_subquestions
    if callable(getattr(obj, "complete", None)) and callable(getattr(obj, "acomplete", None)):
        return Decomposer(obj, max_subquestions=m, strict=strict)
    if callable(obj):
        return _FunctionDecomposer(obj, m, strict)
    raise TypeError(
        "decomposer must be None, a Decomposer, an LLM backend or a callable "
        "question -> list[str]"
    )
