"""Question decomposition: one LLM call turns a question into standalone sub-questions.

:class:`Decomposer` asks an LLM (parsing in :mod:`._parse`); :mod:`._function` adapts a
plain function ``question -> list[str]`` (sync or async, e.g. gold decompositions) to
the same ``decompose`` / ``adecompose`` interface, so the pipeline treats every
decomposer alike.

Failure policy (the same for both kinds):

* a *transient* failure (a failed LLM call, an unreadable answer, a function that
  raised) gives an empty decomposition: the pipeline retrieves with the original
  question alone. It is logged once at WARNING, counted in ``usage.fallbacks`` and
  described in :attr:`Decomposition.error`;
* a *permanent* error (an exception with ``transient = False``, such as
  :class:`~rerank_rag.LLMConfigurationError`: wrong key, unknown model) is raised;
* ``strict=True`` raises every failure.

The sync and async paths of :class:`Decomposer` share one sans-IO plan (:mod:`rerank_rag._plan`).
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from .._errors import LLMError, ParseError, is_permanent
from .._plan import Plan, arun_plan, run_plan
from .._ranker import check_query
from .._sync import run_sync
from .._types import Usage
from ..llm._base import Completion, LLMRequest, Message
from ._parse import dedupe_subquestions, question_key, subquestion_items

__all__ = [
    "Decomposer",
    "Decomposition",
    "DEFAULT_PROMPT",
    "GATE_PROMPT",
    "DEFAULT_MAX_SUBQUESTIONS",
]

log = logging.getLogger("rerank_rag.decompose")

#: The default cap m on sub-questions (Ammann et al. 2025 use at most 5).
DEFAULT_MAX_SUBQUESTIONS = 5

#: The default decomposition prompt (``{question}`` and ``{max_subquestions}`` are filled in).
DEFAULT_PROMPT = (
    "Break the question below into at most {max_subquestions} simple sub-questions that "
    "a search engine can answer one by one and that together answer the question.\n"
    "Rules:\n"
    "- Each sub-question must be standalone: name every entity explicitly, never refer to "
    "another sub-question.\n"
    "- If the question is already simple, write the question itself and nothing else.\n"
    "- Write one sub-question per line, numbered 1., 2., ... and write nothing else.\n\n"
    "Question: {question}"
)

#: The gate prompt used with ``gate="llm"`` (``{question}`` is filled in).
GATE_PROMPT = (
    "Can the question below be answered by looking up a single fact about a single "
    "entity, or does it need several facts that must be looked up one after the other "
    "(multi-hop)?\nAnswer with one word: SINGLE or MULTI.\n\nQuestion: {question}"
)

SYSTEM_PROMPT = "You are a careful assistant that prepares search queries."

Gate = Union[str, Callable[[str], Any], None]
PromptLike = Union[str, Callable[[str, int], Union[str, Sequence[Message]]]]


def describe(exc: BaseException) -> str:
    """``"ExceptionType: message"``."""
    return f"{type(exc).__name__}: {exc}"


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


@dataclass(frozen=True, slots=True)
class Decomposition:
    """The result of :meth:`Decomposer.decompose`.

    Attributes:
        question: the original question.
        sub_questions: the standalone sub-questions (possibly empty: no decomposition).
        from_cache: True when answered from the decomposition cache (no LLM call).
        skipped_by_gate: True when the gate judged the question single-hop.
        usage: LLM usage of this call (zero calls on a cache hit, ``cache_hits=1``).
        raw: the raw LLM answer, when an LLM call was made and answered.
        error: what went wrong when the decomposer fell back to no decomposition
            (``"ExceptionType: message"``); ``None`` otherwise.
    """

    question: str
    sub_questions: tuple[str, ...]
    from_cache: bool = False
    skipped_by_gate: bool = False
    usage: Usage = field(default_factory=Usage)
    raw: str | None = None
    error: str | None = None

    @property
    def queries(self) -> tuple[str, ...]:
        """The query set Q = {question} + sub-questions (the original always first)."""
        return (self.question, *self.sub_questions)


class _LRU:
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, tuple[tuple[str, ...], bool]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[tuple[str, ...], bool] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: tuple[tuple[str, ...], bool]) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


def _parse_gate(text: str) -> bool | None:
    """True = multi-hop (decompose), False = single-hop, None = unreadable."""
    t = text.strip().upper()
    m = re.search(r"\b(MULTI|SINGLE)", t)
    if m:
        return m.group(1) == "MULTI"
    m = re.search(r"\b(YES|NO)\b", t)
    if m:  # a model answering the implicit "does it need several facts?"
        return m.group(1) == "YES"
    return None


async def _verdict(answer: Any) -> bool | Exception:
    """An async gate's verdict, or the exception awaiting it raised."""
    try:
        return bool(await answer)
    except Exception as exc:  # noqa: BLE001 - judged in Decomposer._plan
        return exc


@dataclass(slots=True)
class _Answer:
    """What the plan found out (the LLM part of one decomposition)."""

    sub_questions: tuple[str, ...] = ()
    skipped_by_gate: bool = False
    raw: str | None = None
    error: str | None = None  # set when the decomposition fell back
    notes: list[str] = field(default_factory=list)  # every fallback, for the log line


def _check_max(max_subquestions: object) -> int:
    if isinstance(max_subquestions, bool) or not isinstance(max_subquestions, int):
        raise TypeError("max_subquestions must be an int")
    if max_subquestions < 1:
        raise ValueError(f"max_subquestions must be >= 1, got {max_subquestions}")
    return max_subquestions


class Decomposer:
    """Turns a question into at most ``max_subquestions`` standalone sub-questions.

    Args:
        llm: any LLM backend :func:`~rerank_rag.llm.as_backend` accepts (ours, a
            LangChain chat model, a LlamaIndex LLM, a Haystack ChatGenerator).
        max_subquestions: upper bound m on the sub-questions kept (default 5, as in
            Ammann et al. 2025). The original question is never counted: the query set
            is the question plus up to m sub-questions.
        gate: optional single-hop gate. ``None`` (default): always decompose (the
            paper's setting). ``"llm"``: one extra short LLM call asks whether the
            question is single- or multi-hop (an unreadable or failed answer means
            "decompose", counted in ``usage.fallbacks``). A callable
            ``gate(question) -> bool`` (sync or async): ``True`` means *decompose*,
            ``False`` means the question is single-hop and is not decomposed.
        strict: raise instead of degrading: the LLM's error when a call fails, and
            :class:`~rerank_rag.ParseError` when the answer holds no usable line.
            Otherwise a transient failure gives an empty decomposition (logged once at
            WARNING, counted in ``usage.fallbacks``, described in ``error``). A
            permanent error (``transient=False``, e.g.
            :class:`~rerank_rag.LLMConfigurationError`) is always raised.
        cache: ``True`` (default, 1024 entries), an int (LRU size) or ``False``.
            Decompositions are cached by :func:`question_key` (whitespace and the final
            question mark ignored; case and punctuation kept); fallbacks are not
            cached. Thread-safe.
        prompt: the user prompt, a template with ``{question}`` and
            ``{max_subquestions}``, or a function ``(question, m) -> str | messages``.
        system_prompt: the system message (``None`` for none); ignored when
            ``prompt`` returns full messages.
        llm_params: call parameters (default ``{"max_tokens": 256, "temperature": 0.0}``;
            the paper sampled at temperature 0.8, top-p 0.8; greedy is reproducible).
    """

    def __init__(
        self,
        llm: Any,
        *,
        max_subquestions: int = DEFAULT_MAX_SUBQUESTIONS,
        gate: Gate = None,
        strict: bool = False,
        cache: bool | int = True,
        prompt: PromptLike = DEFAULT_PROMPT,
        system_prompt: str | None = SYSTEM_PROMPT,
        llm_params: Mapping[str, Any] | None = None,
    ) -> None:
        from ..llm._adapt import as_backend

        self.llm = as_backend(llm)
        self.max_subquestions = _check_max(max_subquestions)
        if not (gate is None or gate == "llm" or callable(gate)):
            raise ValueError("gate must be None, 'llm' or a callable question -> bool")
        if not (isinstance(prompt, str) or callable(prompt)):
            raise TypeError("prompt must be a template string or a callable")
        self.gate = gate
        self.strict = strict
        self.prompt = prompt
        self.system_prompt = system_prompt
        self.llm_params = dict(llm_params) if llm_params is not None else {
            "max_tokens": 256,
            "temperature": 0.0,
        }
        if cache is True:
            size = 1024
        elif cache is False or cache is None:
            size = 0
        elif isinstance(cache, int) and cache >= 0:
            size = cache
        else:
            raise ValueError("cache must be True, False or a non-negative int")
        self._cache = _LRU(size) if size > 0 else None

    def __repr__(self) -> str:
        return (
            f"Decomposer(max_subquestions={self.max_subquestions}, gate={self.gate!r}, "
            f"strict={self.strict})"
        )

    # -- prompts ---------------------------------------------------------------------

    def build_request(self, question: str) -> LLMRequest:
        """The decomposition request for ``question``."""
        if callable(self.prompt):
            built = self.prompt(question, self.max_subquestions)
        else:
            built = self.prompt.format(question=question, max_subquestions=self.max_subquestions)
        if isinstance(built, str):
            messages: list[Message] = []
            if self.system_prompt:
                messages.append({"role": "system", "content": self.system_prompt})
            messages.append({"role": "user", "content": built})
            return LLMRequest.chat(messages, **self.llm_params)
        return LLMRequest.chat(built, **self.llm_params)

    def _gate_request(self, question: str) -> LLMRequest:
        params = dict(self.llm_params)
        params["max_tokens"] = 4
        return LLMRequest.chat(
            [{"role": "user", "content": GATE_PROMPT.format(question=question)}], **params
        )

    # -- cache -------------------------------------------------------------------------

    def clear_cache(self) -> None:
        """Forget every cached decomposition."""
        if self._cache is not None:
            self._cache.clear()

    def cache_info(self) -> dict[str, int]:
        """``{"size", "maxsize", "hits", "misses"}`` of the decomposition cache."""
        if self._cache is None:
            return {"size": 0, "maxsize": 0, "hits": 0, "misses": 0}
        c = self._cache
        return {"size": len(c), "maxsize": c.size, "hits": c.hits, "misses": c.misses}

    # -- the algorithm -------------------------------------------------------------------

    def _fail(self, answer: _Answer, usage: Usage, error: BaseException, note: str) -> None:
        """A failed step: raise (strict, or an error that cannot heal) or record it."""
        if self.strict or is_permanent(error):
            raise error
        usage.fallbacks += 1
        answer.notes.append(f"{note}: {describe(error)}")

    def _plan(
        self, question: str, usage: Usage, gate_says: bool | Exception | None
    ) -> Plan[_Answer]:
        """Gate (optional), then one decomposition request; the answer is parsed once.

        ``gate_says`` is the callable gate's verdict (``None`` without one, or the
        exception it raised)."""
        answer = _Answer()
        if isinstance(gate_says, Exception):
            self._fail(answer, usage, gate_says, "gate failed, decomposing anyway")
        elif gate_says is False:
            answer.skipped_by_gate = True
            return answer
        if self.gate == "llm":
            [out] = yield [self._gate_request(question)]
            if isinstance(out, LLMError):
                self._fail(answer, usage, out, "gate call failed, decomposing anyway")
            elif (verdict := _parse_gate(out.text)) is None:
                error = ParseError(f"unreadable single/multi-hop gate answer: {out.text!r}")
                self._fail(answer, usage, error, "decomposing anyway")
            elif verdict is False:
                answer.skipped_by_gate = True
                return answer
        [out] = yield [self.build_request(question)]
        if isinstance(out, LLMError):
            self._fail(answer, usage, out, "decomposition call failed")
            answer.error = describe(out)
            return answer
        assert isinstance(out, Completion)
        answer.raw = out.text
        items = subquestion_items(out.text)
        if not items:
            error = ParseError(f"no sub-question found in the LLM answer: {_short(out.text)!r}")
            self._fail(answer, usage, error, "unusable answer")
            answer.error = describe(error)
            return answer
        # Items that only restate the question are the model's way of saying "no
        # decomposition needed": an empty, valid answer.
        answer.sub_questions = tuple(
            dedupe_subquestions(items, question=question, max_subquestions=self.max_subquestions)
        )
        return answer

    def _cached(self, question: str, key: str) -> Decomposition | None:
        hit = self._cache.get(key) if self._cache is not None else None
        if hit is None:
            return None
        subs, skipped = hit
        return Decomposition(question, subs, True, skipped, Usage(cache_hits=1))

    def _finish(
        self, question: str, key: str, answer: _Answer, usage: Usage, t0: float
    ) -> Decomposition:
        usage.wall_time = time.perf_counter() - t0
        if answer.notes:
            log.warning(
                "question decomposition degraded for %r: %s",
                _short(question), "; ".join(answer.notes),
            )
        if answer.error is None and self._cache is not None:
            self._cache.put(key, (answer.sub_questions, answer.skipped_by_gate))
        return Decomposition(
            question, answer.sub_questions, False, answer.skipped_by_gate, usage,
            answer.raw, answer.error,
        )

    def _start(self, question: str) -> Decomposition | tuple[str, str, float, Usage, Any]:
        """Check ``question``; a cached decomposition, or what the plan starts from:
        ``(question, key, t0, usage, gate_says)``. ``gate_says`` is the callable gate's
        verdict (``None`` without one, or the exception it raised); for an async gate,
        an awaitable of that verdict, for the caller to await its own way."""
        question = check_query(question)
        key = question_key(question)
        cached = self._cached(question, key)
        if cached is not None:
            return cached
        t0, usage = time.perf_counter(), Usage()
        gate_says: Any = None
        if callable(self.gate):
            try:
                said = self.gate(question)
                gate_says = _verdict(said) if inspect.isawaitable(said) else bool(said)
            except Exception as exc:  # noqa: BLE001 - judged in _plan
                gate_says = exc
        return question, key, t0, usage, gate_says

    def decompose(self, question: str) -> Decomposition:
        """Decompose ``question`` (sync). Raises ``ValueError`` for an empty question."""
        started = self._start(question)
        if isinstance(started, Decomposition):  # a cache hit
            return started
        question, key, t0, usage, gate_says = started
        if inspect.isawaitable(gate_says):
            gate_says = run_sync(gate_says)
        answer = run_plan(self._plan(question, usage, gate_says), self.llm, usage)
        return self._finish(question, key, answer, usage, t0)

    async def adecompose(self, question: str) -> Decomposition:
        """Async twin of :meth:`decompose`."""
        started = self._start(question)
        if isinstance(started, Decomposition):  # a cache hit
            return started
        question, key, t0, usage, gate_says = started
        if inspect.isawaitable(gate_says):
            gate_says = await gate_says
        answer = await arun_plan(self._plan(question, usage, gate_says), self.llm, usage)
        return self._finish(question, key, answer, usage, t0)

    __call__ = decompose
