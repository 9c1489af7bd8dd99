"""Backend wrappers used by the batch engines.

* :class:`CappedLLM`: one global cap on LLM calls in flight for a whole batch (an
  ``asyncio.Semaphore`` of its own, so the cap holds whatever the wrapped client's own
  limit does), counters for the progress line (calls, tokens, retries, calls waiting
  for a slot), and the "permanent error" trip wire: the first non-transient
  :class:`~rerank_rag.LLMError` (:class:`~rerank_rag.LLMConfigurationError`: wrong key,
  unknown model) is recorded so the engine stops the batch instead of writing fallback
  rankings for every remaining query.
* :class:`ReplayLLM`: answers the requests whose outcomes an earlier stage already
  fetched (the Ray engine's LLM stage), and sends any other request (a retry round) to
  a live backend. The ranker's own code then turns those outcomes into the ranking, so
  the aggregation is the ranker's, not a copy of it.
* :func:`with_backend`: a shallow copy of a ranker whose ``llm`` is replaced.
* :func:`outcome_to_json` / :func:`outcome_from_json` and :func:`request_key`: how
  requests and outcomes cross process boundaries.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import hashlib
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import _errors
from .._errors import LLMError, is_permanent
from ..llm._base import Completion, Message, normalize_messages

__all__ = [
    "CappedLLM",
    "ReplayLLM",
    "with_backend",
    "llm_of",
    "request_key",
    "outcome_to_json",
    "outcome_from_json",
    "QueryTrace",
    "current_query",
]


@dataclass
class QueryTrace:
    """Per-query state the engine puts in a context variable (each query is its own
    task, so every call it makes sees its own trace)."""

    qid: str
    issued: bool = False


#: The query whose plan is making the current call (set by the engine per task).
current_query: contextvars.ContextVar[QueryTrace | None] = contextvars.ContextVar(
    "rerank_rag_batch_query", default=None
)


class CappedLLM:
    """Wraps a backend: at most ``limit`` calls in flight through this batch.

    Args:
        inner: the backend (``complete``/``acomplete``).
        limit: the global cap on calls in flight.
        on_change: called (no arguments) whenever capacity may have changed: a call
            took or released a slot, or a permanent error was seen.
        on_first_call: called once per query trace, when its first call arrives.
    """

    def __init__(
        self,
        inner: Any,
        limit: int,
        *,
        on_change: Callable[[], None] | None = None,
        on_first_call: Callable[[QueryTrace], None] | None = None,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"the cap on LLM calls in flight must be a positive int, got {limit!r}")
        self.inner = inner
        self.limit = limit
        self.on_change = on_change
        self.on_first_call = on_first_call
        self._sem: asyncio.Semaphore | None = None
        self.waiting = 0  # calls waiting for a slot
        self.in_flight = 0  # calls holding a slot
        self.calls = 0  # finished calls (answers and final errors)
        self.failed = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.peak_in_flight = 0
        self.fatal: LLMError | None = None

    # the wrapped backend's description is still the backend's
    @property
    def max_concurrency(self) -> int:
        return self.limit

    def cache_identity(self) -> dict[str, Any]:
        ident = getattr(self.inner, "cache_identity", None)
        return ident() if callable(ident) else {"backend": type(self.inner).__name__}

    def __repr__(self) -> str:
        return f"CappedLLM({self.inner!r}, limit={self.limit})"

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _count(self, result: Completion | BaseException) -> None:
        self.calls += 1
        if isinstance(result, Completion):
            self.retries += result.retries
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
        else:
            self.failed += 1
            self.retries += max(0, int(getattr(result, "attempts", 1) or 1) - 1)
            if is_permanent(result) and self.fatal is None:
                self.fatal = result  # type: ignore[assignment]

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        # the batch engines are async; the sync path is only a pass-through
        return self.inner.complete(messages, **params)  # type: ignore[no-any-return]

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        trace = current_query.get()
        if trace is not None and not trace.issued:
            trace.issued = True
            if self.on_first_call is not None:
                self.on_first_call(trace)
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.limit)
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        if self.fatal is not None:  # a permanent error meanwhile: do not call again
            self._sem.release()
            raise _copy_error(self.fatal)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._notify()
        try:
            result = await self.inner.acomplete(messages, **params)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._count(exc)
            raise
        else:
            self._count(result)
            return result  # type: ignore[no-any-return]
        finally:
            self.in_flight -= 1
            self._sem.release()
            self._notify()


def _copy_error(err: LLMError) -> LLMError:
    new = type(err)(str(err), attempts=err.attempts, status=err.status)
    if not getattr(err, "transient", True):
        new.transient = False
    return new


def llm_of(ranker: Any) -> Any:
    """The ranker's LLM backend, or ``None`` (scorer-based and non-LLM rankers)."""
    return getattr(ranker, "llm", None) if getattr(ranker, "scorer", None) is None else None


def with_backend(ranker: Any, backend: Any) -> Any:
    """A shallow copy of ``ranker`` that calls ``backend`` instead of its own ``llm``."""
    clone = copy.copy(ranker)
    clone.llm = backend
    return clone


# -- requests and outcomes across processes -------------------------------------------


def request_key(messages: Sequence[Message], params: Mapping[str, Any]) -> str:
    """A digest of one request (messages + parameters): equal requests, equal keys."""
    msgs = [dict(m) for m in normalize_messages(messages)]
    blob = json.dumps([msgs, dict(params)], sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def outcome_to_json(outcome: Completion | BaseException) -> dict[str, Any]:
    """A JSON-able outcome: a completion (with its retries) or the error it ended with."""
    if isinstance(outcome, Completion):
        d = outcome.to_json()
        d["retries"] = outcome.retries
        d["cached"] = outcome.cached
        return d
    return {
        "error": type(outcome).__name__ if isinstance(outcome, LLMError) else "LLMError",
        "message": str(outcome) if isinstance(outcome, LLMError) else f"{type(outcome).__name__}: {outcome}",
        "attempts": int(getattr(outcome, "attempts", 1) or 1),
        "status": getattr(outcome, "status", None),
        "transient": bool(getattr(outcome, "transient", True)),
    }


def outcome_from_json(data: Mapping[str, Any]) -> Completion | LLMError:
    """Inverse of :func:`outcome_to_json` (errors come back as the same error class)."""
    if "error" in data:
        cls = getattr(_errors, str(data["error"]), None)
        if not (isinstance(cls, type) and issubclass(cls, LLMError)):
            cls = LLMError
        err = cls(str(data.get("message", "")), attempts=int(data.get("attempts", 1)), status=data.get("status"))
        if not data.get("transient", True) and err.transient:
            err.transient = False  # a permanent error stays permanent
        return err
    c = Completion.from_json(data)
    retries = int(data.get("retries", 0) or 0)
    if retries or data.get("cached"):
        from dataclasses import replace

        c = replace(c, retries=retries, cached=bool(data.get("cached")))
    return c


class ReplayLLM:
    """Answers pre-fetched requests; forwards anything else to ``live``.

    Args:
        answers: ``{request_key: [outcome, ...]}`` (a list: identical requests may occur
            more than once; each answer is used once).
        live: the backend for requests not pre-fetched (``None``: such a request is an
            error, reported as a failed call).
    """

    def __init__(self, answers: Mapping[str, Sequence[Completion | LLMError]], live: Any = None) -> None:
        self._answers = {k: deque(v) for k, v in answers.items()}
        self.live = live
        self.replayed = 0
        self.forwarded = 0

    @property
    def max_concurrency(self) -> int:
        return int(getattr(self.live, "max_concurrency", 8) or 8)

    def cache_identity(self) -> dict[str, Any]:
        ident = getattr(self.live, "cache_identity", None)
        return ident() if callable(ident) else {"backend": "replay"}

    def unused(self) -> int:
        """How many pre-fetched answers were never asked for."""
        return sum(len(v) for v in self._answers.values())

    def _take(self, messages: Sequence[Message], params: Mapping[str, Any]) -> Completion | LLMError | None:
        q = self._answers.get(request_key(messages, params))
        if q:
            self.replayed += 1
            return q.popleft()
        return None

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        hit = self._take(messages, params)
        if hit is not None:
            if isinstance(hit, LLMError):
                raise hit
            return hit
        if self.live is None:
            raise LLMError("the batch driver has no live LLM for a follow-up request")
        self.forwarded += 1
        return self.live.complete(messages, **params)  # type: ignore[no-any-return]

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        hit = self._take(messages, params)
        if hit is not None:
            if isinstance(hit, LLMError):
                raise hit
            return hit
        if self.live is None:
            raise LLMError("the batch driver has no live LLM for a follow-up request")
        self.forwarded += 1
        return await self.live.acomplete(messages, **params)  # type: ignore[no-any-return]
