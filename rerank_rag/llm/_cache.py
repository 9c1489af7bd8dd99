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
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, Self, runtime_checkable

from ._base import Completion, Message, normalize_messages

__all__ = ["CachedLLM", "MemoryCache", "ResponseCache", "SQLiteCache", "cache_key"]

#: Call parameters that never change the answer and are not part of the key.
IGNORED_PARAMS = frozenset({"callbacks", "timeout"})

#: Identity entries whose name ends like this are dropped (credentials never enter keys).
_SECRET_SUFFIXES = ("key", "_token", "secret", "password", "authorization", "credentials")


@runtime_checkable
class ResponseCache(Protocol):
    """What a response cache offers: JSON values by string key."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: Mapping[str, Any]) -> None: ...


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if hasattr(obj, "to_json"):
        return obj.to_json()
    # Not JSON: identify by type only (a repr may hold memory addresses or secrets).
    return f"<{type(obj).__module__}.{type(obj).__qualname__}>"


def _scrub_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """Drop anything that looks like a credential from a cache identity."""
    return {str(k): v for k, v in identity.items() if not str(k).lower().endswith(_SECRET_SUFFIXES)}


def backend_identity(backend: Any) -> dict[str, Any]:
    """``backend.cache_identity()`` (scrubbed), or the backend's type as a fallback."""
    fn = getattr(backend, "cache_identity", None)
    if callable(fn):
        return _scrub_identity(fn())
    t = type(backend)
    return {"backend": f"{t.__module__}.{t.__qualname__}"}


def cache_key(
    identity: Mapping[str, Any], messages: Sequence[Message], params: Mapping[str, Any]
) -> str:
    """The sha256 hex key of one call (see the module docstring for what goes in)."""
    payload = {
        "v": 1,
        "backend": dict(identity),
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "params": {k: v for k, v in params.items() if k not in IGNORED_PARAMS},
    }
    blob = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def lookup(cache: ResponseCache, key: str) -> Completion | None:
    """A cached :class:`Completion` (``cached=True``, ``retries=0``) or ``None``."""
    value = cache.get(key)
    if value is None:
        return None
    try:
        return replace(Completion.from_json(value), cached=True, retries=0)
    except (TypeError, ValueError):  # a corrupt entry is a miss, not a crash
        return None


def store(cache: ResponseCache, key: str, completion: Completion) -> None:
    """Store a successful, non-cached completion."""
    if completion.cached:
        return
    cache.set(key, completion.to_json())


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
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            if self.path != ":memory:":
                try:
                    self._conn.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError:  # e.g. a file system without WAL support
                    pass
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                "key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )

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
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]


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
    """

    def __init__(self, backend: Any, cache: ResponseCache) -> None:
        from ._adapt import as_backend

        if not (callable(getattr(cache, "get", None)) and callable(getattr(cache, "set", None))):
            raise TypeError("cache must have get(key) and set(key, value) methods")
        self.backend = as_backend(backend)
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedLLM({self.backend!r}, {self.cache!r})"

    @property
    def max_concurrency(self) -> int:
        return int(getattr(self.backend, "max_concurrency", 4) or 4)

    def cache_identity(self) -> dict[str, Any]:
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
        return cache_key(self.cache_identity(), normalize_messages(messages), params)

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        key = self.key(messages, params)
        hit = lookup(self.cache, key)
        self._count(hit is not None)
        if hit is not None:
            return hit
        result = self.backend.complete(messages, **params)
        store(self.cache, key, result)
        return result

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion:
        key = self.key(messages, params)
        hit = lookup(self.cache, key)
        self._count(hit is not None)
        if hit is not None:
            return hit
        result = await self.backend.acomplete(messages, **params)
        store(self.cache, key, result)
        return result

    def close(self) -> None:
        fn = getattr(self.backend, "close", None)
        if callable(fn):
            fn()

    async def aclose(self) -> None:
        fn = getattr(self.backend, "aclose", None)
        if callable(fn):
            await fn()
