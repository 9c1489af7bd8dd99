"""Adapting user retrievers: :func:`as_retriever` and :class:`Retriever`.

A *retriever* in rerank-rag is anything that maps a query to passages:

* a plain function or callable object ``retriever(query, k)`` or ``retriever(query)``,
  sync or ``async`` (e.g. :class:`~rerank_rag.retrievers.BM25Retriever`);
* a LlamaIndex-style object with ``retrieve`` / ``aretrieve`` (``NodeWithScore`` results);
* a LangChain-style retriever with ``invoke`` / ``ainvoke`` (``Document`` results);
* an object with a ``search(query, ...)`` method.

:func:`as_retriever` turns any of these into a :class:`Retriever` with a uniform
``retrieve(query, k)`` / ``aretrieve(query, k)`` returning at most ``k``
:class:`~rerank_rag.Candidate` objects whose ``score`` is the first-stage score (when
the source gives one).

How ``k`` reaches your function: only through a parameter *named* for it (one of
:data:`K_PARAMETER_NAMES`: ``k``, ``top_k``, ``n``, ``limit``, ...), found by inspecting
the signature. A second parameter with any other name (``filters``, ``namespace``) is
never filled with ``k``; without a ``k``-like parameter the function is called with the
query alone and its answer is cut to ``k``. A required parameter that is neither the
query nor ``k``-like is rejected when the retriever is adapted (wrap the function).

What counts as an answer: a list (or any iterable) of passages, or a Haystack component
output ``{"documents": [...]}``. ``None``, a single string, a single mapping or a single
passage are errors naming the retriever, never silently "no results" (return ``[]`` for
that).
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from typing import Any

from ._sync import is_async_callable, run_sync, start_daemon
from ._types import Candidate, as_candidates

__all__ = ["Retriever", "as_retriever", "K_PARAMETER_NAMES"]

#: Parameter names recognised as "how many results" (matched exactly, in signature order).
K_PARAMETER_NAMES: tuple[str, ...] = (
    "k", "top_k", "topk", "n", "top_n", "limit", "num_results", "n_results",
    "max_results", "num_docs", "similarity_top_k",
)

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _bind_k(fn: Callable[..., Any], name: str) -> Callable[[str, int], Any]:
    """``(query, k) -> fn(query[, k])``, passing ``k`` only by a parameter named for it."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: query only
        return lambda q, k: fn(q)
    positional = [p for p in params if p.kind in _POSITIONAL]
    query = positional[0] if positional else None
    if query is None and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise TypeError(f"retriever {name} takes no positional parameter for the query")
    k_param = next(
        (p for p in params if p is not query and p.name in K_PARAMETER_NAMES
         and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)),
        None,
    )
    if k_param is not None and k_param.kind is k_param.POSITIONAL_ONLY:
        if positional.index(k_param) != 1:  # cannot be reached without filling others
            k_param = None
    unfillable = [
        p.name for p in params
        if p is not query and p is not k_param and p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if unfillable:
        raise TypeError(
            f"retriever {name} has required parameter(s) {', '.join(unfillable)} that "
            "rerank-rag cannot fill: it passes the query and, by name, k (one of "
            f"{', '.join(K_PARAMETER_NAMES)}); wrap it, e.g. lambda query, k: "
            f"{name}(query, ...)"
        )
    if k_param is None:
        return lambda q, k: fn(q)
    if k_param.kind is k_param.POSITIONAL_ONLY:
        return lambda q, k: fn(q, k)
    key = k_param.name
    return lambda q, k: fn(q, **{key: k})


def _to_candidate(item: Any, i: int) -> Candidate:
    """Normalise one retrieved item (ours, a framework document, a (doc, score) pair)."""
    if isinstance(item, Candidate):
        return item
    if isinstance(item, (str, Mapping)):
        return as_candidates([item])[0]
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (int, float)):
        base = _to_candidate(item[0], i)
        return Candidate(text=base.text, id=base.id, metadata=base.metadata, score=float(item[1]))
    node = getattr(item, "node", None)  # LlamaIndex NodeWithScore
    if node is not None and hasattr(node, "get_content"):
        score = getattr(item, "score", None)
        return Candidate(
            text=str(node.get_content()),
            id=getattr(node, "node_id", None),
            metadata=dict(getattr(node, "metadata", None) or {}),
            score=None if score is None else float(score),
        )
    if hasattr(item, "page_content"):  # LangChain Document
        meta = dict(getattr(item, "metadata", None) or {})
        did = getattr(item, "id", None) or meta.get("id")
        score = meta.get("score")
        return Candidate(
            text=str(item.page_content),
            id=None if did is None else str(did),
            metadata=meta,
            score=float(score) if isinstance(score, (int, float)) else None,
        )
    if hasattr(item, "content") and hasattr(item, "meta"):  # Haystack Document
        score = getattr(item, "score", None)
        did = getattr(item, "id", None)
        return Candidate(
            text=str(item.content or ""),
            id=None if did is None else str(did),
            metadata=dict(item.meta or {}),
            score=None if score is None else float(score),
        )
    raise TypeError(
        f"retriever result {i} has unsupported type {type(item).__name__}: return Candidate, "
        "str, a mapping with 'text', a (passage, score) pair or a framework document"
    )


def _normalise_results(results: Any, k: int, name: str = "retriever") -> list[Candidate]:
    """The first ``k`` passages of a retriever's answer, as candidates.

    Raises TypeError (naming the retriever) for an answer that is not a list of
    passages: ``None``, a string, a single mapping or a single passage.
    """
    what = None
    if results is None:
        what = "None"
    elif isinstance(results, (str, bytes)):
        what = "a single string"
    elif isinstance(results, Mapping):
        docs = results.get("documents")
        if isinstance(docs, Iterable) and not isinstance(docs, (str, bytes, Mapping)):
            results = docs  # a Haystack component output
        else:
            keys = ", ".join(repr(key) for key in list(results)[:5])
            what = f"a single mapping (keys {keys})"
    elif isinstance(results, Candidate) or not isinstance(results, Iterable):
        what = f"a single {type(results).__name__}"
    if what is not None:
        raise TypeError(
            f"retriever {name} returned {what}; it must return a list of passages "
            "(an empty list when nothing matches)"
        )
    out: list[Candidate] = []
    for i, item in enumerate(results):
        if len(out) >= k:
            break
        out.append(_to_candidate(item, i))
    return out


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return k


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


class Retriever:
    """A retriever normalised by :func:`as_retriever`: ``retrieve`` / ``aretrieve``.

    Args:
        sync_fn / async_fn: ``(query, k) -> passages`` (at least one of them).
        name: shown in reprs and error messages.
        timeout: seconds one call may take (``None``: no limit). A call past it raises
            :class:`TimeoutError`; the call itself is abandoned, not interrupted (Python
            cannot stop a running thread): a sync source keeps running in a daemon
            thread and its answer is discarded; an async source is cancelled.

    ``retrieve`` runs a sync source directly and an async one on its own event loop
    (in a worker thread when the caller already runs a loop); ``aretrieve`` awaits an
    async source and runs a sync one in a worker thread, so it never blocks the loop.
    Both return at most ``k`` candidates.
    """

    def __init__(
        self,
        sync_fn: Callable[[str, int], Any] | None,
        async_fn: Callable[[str, int], Any] | None,
        *,
        name: str = "retriever",
        timeout: float | None = None,
    ) -> None:
        if sync_fn is None and async_fn is None:
            raise ValueError("a retriever needs a sync or an async function")
        self._sync = sync_fn
        self._async = async_fn
        self.name = name
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        extra = "" if self.timeout is None else f", timeout={self.timeout:g}"
        return f"Retriever({self.name}{extra})"

    @property
    def is_async(self) -> bool:
        """True when the source is natively async."""
        return self._async is not None

    def with_timeout(self, timeout: float | None) -> Retriever:
        """The same source with another per-call ``timeout``."""
        return Retriever(self._sync, self._async, name=self.name, timeout=timeout)

    def _timed_out(self, query: str) -> TimeoutError:
        short = query if len(query) <= 80 else query[:77] + "..."
        return TimeoutError(
            f"retriever {self.name} did not answer within {self.timeout:g} s (query {short!r})"
        )

    def _call(self, query: str, k: int) -> Any:
        if self._sync is None:
            assert self._async is not None
            return run_sync(self._async(query, k))
        res = self._sync(query, k)
        return run_sync(res) if inspect.isawaitable(res) else res

    def retrieve(self, query: str, k: int = 10) -> list[Candidate]:
        """Up to ``k`` candidates for ``query`` (first-stage scores in ``score``)."""
        k = _check_k(k)
        if self.timeout is None:
            res = self._call(query, k)
        else:
            call = start_daemon(self._call, query, k)
            if not futures.wait([call], timeout=self.timeout).done:
                raise self._timed_out(query)
            res = call.result()
        return _normalise_results(res, k, self.name)

    async def aretrieve(self, query: str, k: int = 10) -> list[Candidate]:
        """Async twin of :meth:`retrieve`."""
        k = _check_k(k)
        if self._async is not None:
            pending: Any = self._async(query, k)
        elif self.timeout is None:
            pending = asyncio.to_thread(self._sync, query, k)  # type: ignore[arg-type]
        else:  # a daemon thread: a hung call must not hold up the loop's shutdown
            pending = asyncio.wrap_future(start_daemon(self._sync, query, k))  # type: ignore[arg-type]
        res = await self._within_timeout(pending, query)
        if inspect.isawaitable(res):  # a sync function that returned a coroutine
            res = await self._within_timeout(res, query)
        return _normalise_results(res, k, self.name)

    async def _within_timeout(self, pending: Any, query: str) -> Any:
        if self.timeout is None:
            return await pending
        task = asyncio.ensure_future(pending)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            raise self._timed_out(query)
        return task.result()

    __call__ = retrieve


def as_retriever(obj: Any, *, timeout: float | None = None) -> Retriever:
    """Normalise ``obj`` into a :class:`Retriever`.

    Accepted (checked in this order):

    * a :class:`Retriever` (returned unchanged, or with the given ``timeout``);
    * a LlamaIndex-style retriever (``retrieve`` + ``aretrieve`` methods), called with
      the query;
    * a LangChain-style retriever (``invoke`` + ``ainvoke`` methods), called with the query;
    * any callable, sync or ``async`` (e.g. :class:`~rerank_rag.retrievers.BM25Retriever`);
    * an object with a ``search`` method.

    ``k`` is passed only through a parameter named for it (see the module docs); the
    answer is always cut to ``k``. Results may be :class:`~rerank_rag.Candidate`,
    strings, mappings with ``"text"``, ``(passage, score)`` pairs, or LangChain /
    LlamaIndex / Haystack documents.

    Args:
        obj: the retriever.
        timeout: seconds one call may take (``None``: no limit; see :class:`Retriever`).

    Raises:
        TypeError: for anything else, naming what is accepted, or for a function with
            a required parameter rerank-rag cannot fill.
    """
    if isinstance(obj, Retriever):
        return obj if timeout is None else obj.with_timeout(timeout)
    name = type(obj).__name__
    if callable(getattr(obj, "retrieve", None)) and callable(getattr(obj, "aretrieve", None)):
        return Retriever(
            lambda q, k: obj.retrieve(q), lambda q, k: obj.aretrieve(q), name=name, timeout=timeout
        )
    if callable(getattr(obj, "invoke", None)) and callable(getattr(obj, "ainvoke", None)):
        return Retriever(
            lambda q, k: obj.invoke(q), lambda q, k: obj.ainvoke(q), name=name, timeout=timeout
        )
    if callable(obj):
        fname = getattr(obj, "__name__", name)
        fn = _bind_k(obj, fname)
        if is_async_callable(obj):
            return Retriever(None, fn, name=fname, timeout=timeout)
        return Retriever(fn, None, name=fname, timeout=timeout)
    if callable(getattr(obj, "search", None)):
        return Retriever(_bind_k(obj.search, f"{name}.search"), None, name=name, timeout=timeout)
    raise TypeError(
        f"cannot use an object of type {name} as a retriever: pass a callable "
        "query -> list of passages (sync or async), a BM25Retriever, or a LangChain / "
        "LlamaIndex retriever"
    )
