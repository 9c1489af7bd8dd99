"""Opt-in response cache for LLM calls.

Rerankers re-send identical prompts all the time (re-running an evaluation, the same
query twice, a pipeline retried after a crash). A cache turns those into zero-cost,
zero-latency hits. It is **opt-in**: pass ``cache=`` to
:class:`~rerank_rag.llm.OpenAICompatibleLLM` or wrap any backend in :class:`CachedLLM`.

Keys are the sha256 of canonical JSON (sorted keys, no whitespace) of::

    {"v": 1, "backend": backend.cache_identity(), "messages": [...], "params": {...}}

``cache_identity()`` names the backend, base URL, model and generation defaults, never
an API key. Values are the JSON of the :class:`~rerank_rag.llm.Completion` (text, token
counts, first-token logprobs, model): plain JSON, never pickle, so a cache file is safe
to inspect and share. Only successful completions are stored; errors never are.

Two stores ship:

* :class:`MemoryCache`: a dict (optionally LRU-bounded) for one process.
* :class:`SQLiteCache`: a stdlib ``sqlite3`` file, shared by every instance (and
  process) that opens the same path. One connection guarded by a lock makes it safe
  under threads; async callers use it synchronously (a lookup is sub-millisecond).

Concurrent misses for the same key are not coalesced: both calls reach the backend and
the last answer is stored.

Keys are exact: parameters are serialised canonically (mapping keys as strings, so
``{42: 5}`` and ``{"42": 5}`` are the same ``logit_bias``); a parameter with no JSON form
(an arbitrary object) is never reduced to its type name: such a call bypasses the cache,
with one WARNING per backend. A backend with neither ``cache_identity()`` nor
``to_config()`` cannot be wrapped in :class:`CachedLLM` without an explicit
``identity=`` (two instances with different models would otherwise share answers).

A cache is an optimisation, never a reason to lose a ranking: if a cache fails while in
use (a locked or damaged SQLite file, a full disk), the backend logs one WARNING and goes
on without it. Opening a damaged SQLite file raises :class:`~rerank_rag.CacheError`
naming the path.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, Self, runtime_checkable

from .._errors import CacheError
from ._base import Completion, Message, normalize_messages
from ._cache_keys import (  # re-exported: the key rules live there
    IGNORED_PARAMS,
    Uncacheable,
    _canonical,
    _scrub_identity,
    backend_identity,
    cache_key,
)

__all__ = ["CachedLLM", "MemoryCache", "ResponseCache", "SQLiteCache", "cache_key"]

log = logging.getLogger("rerank_rag.llm")

@runtime_checkable
class ResponseCache(Protocol):
    """What a response cache offers: JSON values by string key."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: Mapping[str, Any]) -> None: ...


def _from_value(value: Any) -> Completion | None:
    """A stored value as a cached :class:`Completion` (``cached=True``, ``retries=0``),
    or ``None`` (nothing stored, or a corrupt entry)."""
    if not isinstance(value, Mapping):
        return None
    try:
        return replace(Completion.from_json(value), cached=True, retries=0)
    except (TypeError, ValueError):  # a corrupt entry is a miss, not a crash
        return None


def store(cache: ResponseCache, key: str, completion: Completion) -> None:
    """Store a successful, non-cached completion."""
    if completion.cached or not isinstance(completion.text, str):
        return
    cache.set(key, completion.to_json())


class GuardedCache:
    """A response cache as one backend uses it: any failure degrades to "no cache".

    * A call whose parameters have no JSON form bypasses the cache (one WARNING).
    * If the store fails (``get`` or ``set`` raises: a locked or damaged SQLite file, a
      full disk, ...), one WARNING names the cache and the error, and this backend goes
      on without it: the call itself is made and answered normally.
    """

    def __init__(self, cache: ResponseCache, owner: str) -> None:
        self.cache = cache
        self.owner = owner
        self.broken = False
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def _warn_once(self, kind: str, message: str, *args: Any) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        log.warning(message, *args)

    def key(
        self, identity: Mapping[str, Any], messages: Sequence[Message], params: Mapping[str, Any]
    ) -> str | None:
        """The key of one call, or ``None`` when it cannot (or should not) be cached."""
        if self.broken:
            return None
        try:
            return cache_key(identity, messages, params)
        except Uncacheable as exc:
            self._warn_once(
                "uncacheable",
                "%s: %s; calls with it bypass the response cache",
                self.owner,
                exc,
            )
            return None

    def _fail(self, exc: BaseException) -> None:
        self.broken = True
        self._warn_once(
            "broken",
            "%s: the response cache %r failed (%s: %s); continuing without it",
            self.owner,
            self.cache,
            type(exc).__name__,
            exc,
        )

    def get(self, key: str | None) -> Completion | None:
        if key is None or self.broken:
            return None
        try:
            value = self.cache.get(key)
        except Exception as exc:  # noqa: BLE001 - a cache failure is never a call failure
            self._fail(exc)
            return None
        return _from_value(value)

    def put(self, key: str | None, completion: Completion) -> None:
        if key is None or self.broken:
            return
        try:
            store(self.cache, key, completion)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def __getstate__(self) -> dict[str, Any]:
        return {"cache": self.cache, "owner": self.owner}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cache"], state["owner"])  # type: ignore[misc]


class MemoryCache:
    """In-process response cache.

    Args:
        max_entries: keep at most this many entries, evicting the least recently used;
            ``None`` (default) keeps everything.
    """

    def __init__(self, max_entries: int | None = None) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be >= 1 or None")
        self.max_entries = max_entries
        self._data: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryCache(entries={len(self)}, max_entries={self.max_entries})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            raw = self._data.get(key)
            if raw is None:
                return None
            self._data.move_to_end(key)
        return json.loads(raw)  # type: ignore[no-any-return]

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        raw = json.dumps(dict(value), ensure_ascii=False)  # a copy: callers cannot mutate it
        with self._lock:
            self._data[key] = raw
            self._data.move_to_end(key)
            if self.max_entries is not None:
                while len(self._data) > self.max_entries:
                    self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __getstate__(self) -> dict[str, Any]:  # locks cannot be pickled / deep-copied
        with self._lock:
            return {"max_entries": self.max_entries, "data": list(self._data.items())}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_entries = state["max_entries"]
        self._data = OrderedDict(state["data"])
        self._lock = threading.Lock()


class SQLiteCache:
    """Response cache in an SQLite file (stdlib ``sqlite3``, JSON values).

    Every instance opening the same ``path`` (in this or another process) sees the same
    entries. Thread-safe: one connection per instance, used under a lock. The file
    holds keys (sha256), JSON completions and timestamps, nothing else.

    Args:
        path: database file (created with its parent directories), or ``":memory:"``.
        timeout: seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                parent = os.path.dirname(os.path.abspath(self.path))
                os.makedirs(parent, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            with self._lock:
                if self.path != ":memory:":
                    try:
                        self._conn.execute("PRAGMA journal_mode=WAL")
                    except sqlite3.OperationalError as exc:  # no WAL support: fine; else not
                        if "not a database" in str(exc) or "malformed" in str(exc):
                            raise
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS responses ("
                    "key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
                )
                self._conn.execute("SELECT COUNT(*) FROM responses LIMIT 1").fetchone()
        except (sqlite3.Error, OSError) as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            raise CacheError(
                f"cannot use the response cache file {self.path!r}: {type(exc).__name__}: "
                f"{exc} (a damaged or foreign file: delete it or choose another path)"
            ) from exc

    def __repr__(self) -> str:
        return f"SQLiteCache(path={self.path!r})"

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SQLiteCache is closed")
        return self._conn

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db().execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(n)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db().execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        raw = json.dumps(dict(value), ensure_ascii=False)
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                (key, raw, time.time()),
            )

    def clear(self) -> None:
        with self._lock:
            self._db().execute("DELETE FROM responses")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # picklable: reopen the same file
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], timeout=state.get("timeout", 30.0))  # type: ignore[misc]


class CachedLLM:
    """Wrap any backend with a response cache.

    A hit returns the stored :class:`Completion` with ``cached=True`` (and
    ``retries=0``) without calling the backend; rankers count it in
    ``usage.cache_hits`` instead of ``llm_calls``. Misses call the backend and store
    the answer if it succeeded.

    Args:
        backend: anything :func:`~rerank_rag.llm.as_backend` accepts (our backends,
            LangChain / LlamaIndex / Haystack LLM objects).
        cache: a :class:`MemoryCache`, :class:`SQLiteCache` or any object with
            ``get(key) -> dict | None`` and ``set(key, dict)``.
        identity: what identifies the backend's answers in cache keys (a JSON-able
            mapping: model, endpoint, sampling settings). Default: the backend's
            ``cache_identity()``, else its ``to_config()``; a backend with neither must
            be given one (``TypeError`` otherwise), since its type alone cannot tell two
            instances with different models apart.

    A failing cache never fails a call: one WARNING, then the backend is called without
    the cache (see the module docs).
    """

    def __init__(
        self, backend: Any, cache: ResponseCache, *, identity: Mapping[str, Any] | None = None
    ) -> None:
        from ._adapt import as_backend

        if not (callable(getattr(cache, "get", None)) and callable(getattr(cache, "set", None))):
            raise TypeError("cache must have get(key) and set(key, value) methods")
        self.backend = as_backend(backend)
        if identity is not None:
            if not isinstance(identity, Mapping) or not identity:
                raise TypeError("identity must be a non-empty mapping")
            t = type(self.backend)
            self._identity: dict[str, Any] | None = {
                "backend": f"{t.__module__}.{t.__qualname__}",
                "identity": _scrub_identity(identity),
            }
            _canonical(self._identity, "identity")  # JSON-able, or a clear error now
        else:
            self._identity = None
            backend_identity(self.backend)  # a backend that cannot be told apart: now
        self.cache = cache
        self._guard = GuardedCache(cache, f"CachedLLM({type(self.backend).__name__})")
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedLLM({self.backend!r}, {self.cache!r})"

    @property
    def max_concurrency(self) -> int:
        return int(getattr(self.backend, "max_concurrency", 4) or 4)

    def cache_identity(self) -> dict[str, Any]:
        if self._identity is not None:
            return dict(self._identity)
        return backend_identity(self.backend)

    def to_config(self) -> dict[str, Any]:
        inner = getattr(self.backend, "to_config", None)
        return {
            "type": "cached",
            "backend": inner() if callable(inner) else {"type": type(self.backend).__qualname__},
            "cache": type(self.cache).__name__,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def key(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """The cache key of one call (``TypeError`` for parameters with no JSON form)."""
        return cache_key(self.cache_identity(), normalize_messages(messages), params)

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _lookup(
        self, messages: Sequence[Message], params: Mapping[str, Any]
    ) -> tuple[str | None, Completion | None]:
        key = self._guard.key(self.cache_identity(), normalize_messages(messages), params)
        hit = self._guard.get(key)
        self._count(hit is not None)
        return key, hit

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        key, hit = self._lookup(messages, params)
        if hit is not None:
            return hit
        result = self.backend.complete(messages, **params)
        self._guard.put(key, result)
        return result

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        key, hit = self._lookup(messages, params)
        if hit is not None:
            return hit
        result = await self.backend.acomplete(messages, **params)
        self._guard.put(key, result)
        return result

    def close(self) -> None:
        fn = getattr(self.backend, "close", None)
        if callable(fn):
            fn()

    async def aclose(self) -> None:
        fn = getattr(self.backend, "aclose", None)
        if callable(fn):
            await fn()
