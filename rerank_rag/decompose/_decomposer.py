"""Question decomposition: one LLM call turns a question into standalone sub-questions.

The answer is parsed robustly (:func:`parse_subquestions`): numbered or bulleted lists,
JSON (a list, or an object with a ``sub_questions``-like key), several questions on one
line, chatty preambles ("Sure! Here are ...:"). Empty or unusable output means *no
decomposition* (the pipeline then retrieves with the original question only), never an
exception unless ``strict=True``.

The sync and async paths share one sans-IO plan (:mod:`rerank_rag._plan`).
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from .._errors import LLMError, ParseError
from .._plan import Plan, arun_plan, run_plan
from .._ranker import check_query
from .._types import Usage
from ..llm._base import Completion, LLMRequest, Message

__all__ = [
    "Decomposer",
    "Decomposition",
    "parse_subquestions",
    "dedupe_subquestions",
    "DEFAULT_PROMPT",
    "GATE_PROMPT",
]

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

_WH_START = re.compile(
    r"^(what|who|whom|whose|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
    r"should|would|will|has|have|had|in\s+which|on\s+which|at\s+which|from\s+which|to\s+which|"
    r"name|list|find|identify)\b",
    re.IGNORECASE,
)
_MARKER = re.compile(
    r"^\s*(?:"
    r"[-*\u2022\u00b7\u2013\u2014>]+"  # bullets
    r"|\(?\d{1,2}\s*[.):\]]"  # 1. 1) (1) 1:
    r"|(?-i:\(?[a-h][.)])(?=\s)"  # a) b.
    r"|\[\d{1,2}\]"  # [1]
    r"|(?:sub[- ]?questions?|sub[- ]?quer(?:y|ies)|question|step|query)\s*\d{0,2}\s*[:.)]"
    r"|q\d{0,2}\s*[:.)]"  # Q1: Q:
    r")\s*",
    re.IGNORECASE,
)
_CHATTY = re.compile(
    r"^(sure|okay|ok|certainly|of course|here|these|this|the (?:following|sub-?questions?)|"
    r"note|i (?:would|will|can|have)|let me|answer|explanation)\b",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```(?:json|text|markdown)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_JSON_KEYS = (
    "sub_questions", "subquestions", "sub-questions", "sub_queries", "subqueries",
    "sub-queries", "questions", "queries", "decomposition",
)


def _normalise(text: str) -> str:
    """Comparison form of a question: case-folded, punctuation dropped, spaces collapsed."""
    return " ".join(re.sub(r"[^\w\s#]", " ", text.casefold()).split())


def _clean(item: str) -> str:
    s = item.strip()
    for _ in range(3):  # markers may be nested ("1. - **Q1:** ...")
        s = s.strip().strip("*_`").strip()
        new = _MARKER.sub("", s, count=1)
        if new == s:
            break
        s = new
    s = s.strip().strip("*_`").strip()
    if len(s) >= 2 and s[0] in "\"'\u201c\u2018" and s[-1] in "\"'\u201d\u2019":
        s = s[1:-1].strip()
    return " ".join(s.split())


def _from_json(text: str) -> list[str] | None:
    """Sub-questions from a JSON answer, or ``None`` when the text holds no usable JSON."""
    for opener, closer in (("[", "]"), ("{", "}")):
        start = text.find(opener)
        end = text.rfind(closer)
        if start < 0 or end <= start:
            continue
        try:
            data = json.loads(text[start : end + 1])
        except (ValueError, RecursionError):
            continue
        items = _json_items(data)
        if items is not None:
            return items
    return None


def _json_items(data: Any) -> list[str] | None:
    if isinstance(data, Mapping):
        lowered = {str(k).lower(): v for k, v in data.items()}
        for key in _JSON_KEYS:
            if key in lowered:
                return _json_items(lowered[key])
        return None
    if isinstance(data, list):
        out: list[str] = []
        for item in data:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, Mapping):
                for key in ("question", "sub_question", "subquestion", "query", "text"):
                    if isinstance(item.get(key), str):
                        out.append(item[key])
                        break
        return out
    return None


def _split_questions(line: str) -> list[str]:
    """Split a line holding several questions ("1. What A? 2. Who B?") after each '?'."""
    parts = [p for p in re.findall(r"[^?]*\?", line) if p.strip()]
    return parts or [line]


def parse_subquestions(
    text: str,
    *,
    question: str | None = None,
    max_subquestions: int | None = 5,
) -> list[str]:
    """Read sub-questions out of an LLM answer; never raises on malformed text.

    Understands JSON (a list of strings or of ``{"question": ...}`` objects, or an
    object with a ``sub_questions`` / ``questions`` / ``queries`` key), numbered and
    bulleted lists, ``Q1:``/``Sub-question 1:`` labels, code fences, markdown emphasis
    and chatty preambles. Lines containing a ``?`` are preferred; without any, list
    items and lines that start like a question are kept. The result is de-duplicated
    (case, punctuation and spacing ignored), the original ``question`` is removed from
    it, and it is cut to ``max_subquestions``. Returns ``[]`` when nothing usable is
    found.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    fenced = _FENCE.findall(text)
    body = "\n".join(fenced) if fenced else text

    items = _from_json(body)
    if items is None:
        items = _from_lines(body)
    cleaned = [c for c in (_clean(i) for i in items) if len(c) >= 3]
    return dedupe_subquestions(cleaned, question=question, max_subquestions=max_subquestions)


def _from_lines(body: str) -> list[str]:
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    with_q: list[str] = []
    marked: list[str] = []
    wh: list[str] = []
    for ln in lines:
        is_marked = bool(_MARKER.match(ln))
        if "?" in ln:
            for part in _split_questions(ln):
                part = _clean(part)
                if _CHATTY.match(part) and ":" in part:
                    part = _clean(part.rsplit(":", 1)[1])  # "Here they are: 1. What ...?"
                if part and not _CHATTY.match(part):
                    with_q.append(part)
            continue
        content = _clean(ln)
        if not content or content.endswith(":") or _CHATTY.match(content):
            continue
        if is_marked:
            marked.append(content)
        elif _WH_START.match(content):
            wh.append(content)
    if with_q:
        return with_q
    if marked:
        return marked
    return wh


def dedupe_subquestions(
    items: Sequence[str],
    *,
    question: str | None = None,
    max_subquestions: int | None = None,
) -> list[str]:
    """Drop blanks, repeats of ``question`` and of each other; keep order; cut to the max."""
    seen: set[str] = set()
    if question is not None:
        seen.add(_normalise(question))
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        s = " ".join(item.split())
        norm = _normalise(s)
        if not norm or norm in seen:
            continue
        seen.add(norm)
        out.append(s)
        if max_subquestions is not None and len(out) >= max_subquestions:
            break
    return out


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
        error: the error message when the LLM call failed and the decomposer fell back
            to no decomposition (non-strict mode).
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
            Otherwise a failed call or unusable answer gives an empty decomposition
            (``usage.fallbacks`` counts it).
        cache: ``True`` (default, 1024 entries), an int (LRU size) or ``False``.
            Decompositions are cached by normalised question (case, punctuation and
            spacing ignored); failed calls are not cached. Thread-safe.
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
        max_subquestions: int = 5,
        gate: Gate = None,
        strict: bool = False,
        cache: bool | int = True,
        prompt: PromptLike = DEFAULT_PROMPT,
        system_prompt: str | None = SYSTEM_PROMPT,
        llm_params: Mapping[str, Any] | None = None,
    ) -> None:
        from ..llm._adapt import as_backend

        self.llm = as_backend(llm)
        if isinstance(max_subquestions, bool) or not isinstance(max_subquestions, int):
            raise TypeError("max_subquestions must be an int")
        if max_subquestions < 1:
            raise ValueError(f"max_subquestions must be >= 1, got {max_subquestions}")
        if not (gate is None or gate == "llm" or callable(gate)):
            raise ValueError("gate must be None, 'llm' or a callable question -> bool")
        if not (isinstance(prompt, str) or callable(prompt)):
            raise TypeError("prompt must be a template string or a callable")
        self.max_subquestions = max_subquestions
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

    def _plan(
        self, question: str, usage: Usage, gate_says: bool | None
    ) -> Plan[tuple[tuple[str, ...], bool, str | None, str | None, bool]]:
        """Yields the gate and decomposition requests.

        Returns ``(sub_questions, skipped_by_gate, raw, error, cacheable)``.
        """
        if gate_says is False:
            return (), True, None, None, True
        if self.gate == "llm":
            [out] = yield [self._gate_request(question)]
            if isinstance(out, LLMError):
                if self.strict:
                    raise out
                usage.fallbacks += 1
            else:
                verdict = _parse_gate(out.text)
                if verdict is None:
                    if self.strict:
                        raise ParseError(f"unreadable single/multi-hop gate answer: {out.text!r}")
                    usage.fallbacks += 1
                elif verdict is False:
                    return (), True, None, None, True
        [out] = yield [self.build_request(question)]
        if isinstance(out, LLMError):
            if self.strict:
                raise out
            usage.fallbacks += 1
            return (), False, None, f"{type(out).__name__}: {out}", False
        assert isinstance(out, Completion)
        subs = parse_subquestions(
            out.text, question=question, max_subquestions=self.max_subquestions
        )
        if not subs:
            # Nothing usable. If the model only restated the question, that is its way
            # of saying "no decomposition needed"; anything else is a parse failure.
            restated = bool(parse_subquestions(out.text, max_subquestions=None))
            if not restated:
                if self.strict:
                    raise ParseError(f"no sub-question found in the LLM answer: {out.text!r}")
                usage.fallbacks += 1
        return tuple(subs), False, out.text, None, True

    def _lookup(self, question: str) -> Decomposition | None:
        if self._cache is None:
            return None
        hit = self._cache.get(_normalise(question))
        if hit is None:
            return None
        subs, skipped = hit
        return Decomposition(
            question=question,
            sub_questions=subs,
            from_cache=True,
            skipped_by_gate=skipped,
            usage=Usage(cache_hits=1),
        )

    def _store(self, question: str, subs: tuple[str, ...], skipped: bool) -> None:
        if self._cache is not None:
            self._cache.put(_normalise(question), (subs, skipped))

    def _gate_callable(self, question: str) -> Any:
        if callable(self.gate):
            return self.gate(question)
        return None

    def decompose(self, question: str) -> Decomposition:
        """Decompose ``question`` (sync). Raises ``ValueError`` for an empty question."""
        question = check_query(question)
        cached = self._lookup(question)
        if cached is not None:
            return cached
        t0 = time.perf_counter()
        usage = Usage()
        gate_says = self._gate_callable(question)
        if inspect.isawaitable(gate_says):
            import asyncio

            gate_says = asyncio.run(_await(gate_says))
        subs, skipped, raw, error, cacheable = run_plan(
            self._plan(question, usage, None if gate_says is None else bool(gate_says)),
            self.llm,
            usage,
        )
        usage.wall_time = time.perf_counter() - t0
        if cacheable:
            self._store(question, subs, skipped)
        return Decomposition(question, subs, False, skipped, usage, raw, error)

    async def adecompose(self, question: str) -> Decomposition:
        """Async twin of :meth:`decompose`."""
        question = check_query(question)
        cached = self._lookup(question)
        if cached is not None:
            return cached
        t0 = time.perf_counter()
        usage = Usage()
        gate_says = self._gate_callable(question)
        if inspect.isawaitable(gate_says):
            gate_says = await gate_says
        subs, skipped, raw, error, cacheable = await arun_plan(
            self._plan(question, usage, None if gate_says is None else bool(gate_says)),
            self.llm,
            usage,
        )
        usage.wall_time = time.perf_counter() - t0
        if cacheable:
            self._store(question, subs, skipped)
        return Decomposition(question, subs, False, skipped, usage, raw, error)

    __call__ = decompose


async def _await(aw: Any) -> Any:
    return await aw
