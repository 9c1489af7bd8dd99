"""Response-cache keys: exact, canonical, credential-free.

A key is the sha256 of canonical JSON (sorted keys, no whitespace) of::

    {"v": 1, "backend": <identity>, "messages": [...], "params": {...}}

* ``identity``: the backend's ``cache_identity()``, else its ``to_config()`` with its
  type; credentials (names ending in ``key``, ``_token``, ``secret``, ...) are dropped. A
  backend with neither cannot be told apart from another instance of its class: refused.
* ``params``: the call parameters except ``timeout`` and ``callbacks``, serialised
  exactly (:func:`_canonical`): mapping keys as strings (as on the wire), tuples as
  lists, sets sorted, bytes tagged, non-finite floats tagged. A value with no JSON form
  raises :class:`Uncacheable` rather than being reduced to its type name (which would let
  different calls share a key).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ._base import Message

__all__ = ["IGNORED_PARAMS", "Uncacheable", "backend_identity", "cache_key"]

#: Call parameters that never change the answer and are not part of the key.
IGNORED_PARAMS = frozenset({"callbacks", "timeout"})

#: Identity entries whose name ends like this are dropped (credentials never enter keys).
_SECRET_SUFFIXES = ("key", "_token", "secret", "password", "authorization", "credentials")


class Uncacheable(TypeError):
    """A call whose parameters have no exact JSON form (it bypasses the cache)."""


def _canonical(value: Any, where: str) -> Any:
    """An exact, JSON-serialisable stand-in for ``value`` (raises :class:`Uncacheable`).

    Mapping keys become strings (as they do on the wire), tuples and lists become lists,
    sets are sorted, bytes are tagged; floats keep their value (NaN and infinities
    included); objects with ``to_json()`` are replaced by its result. Anything else
    raises: a stand-in such as the type name would make different calls share a key.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = k
            elif isinstance(k, (int, float)) and not isinstance(k, bool):
                key = str(k)  # {42: 5} is sent as {"42": 5}
            else:
                key = json.dumps(_canonical(k, where), sort_keys=True)
            out[key] = _canonical(v, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_canonical(v, where) for v in value]
        return {"__set__": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": bytes(value).hex()}
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return _canonical(to_json(), where)
    raise Uncacheable(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which has no "
        "JSON form"
    )


def _scrub_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """Drop anything that looks like a credential from a cache identity."""
    return {str(k): v for k, v in identity.items() if not str(k).lower().endswith(_SECRET_SUFFIXES)}


def backend_identity(backend: Any) -> dict[str, Any]:
    """What identifies ``backend``'s answers in cache keys (scrubbed of credentials).

    ``backend.cache_identity()`` when it has one, else its ``to_config()`` (the settings
    that rebuild an equivalent backend) with its type. A backend with neither raises
    ``TypeError``: its type alone cannot tell two instances with different models apart.
    """
    fn = getattr(backend, "cache_identity", None)
    if callable(fn):
        return _scrub_identity(fn())
    t = type(backend)
    config = getattr(backend, "to_config", None)
    if callable(config):
        return {"backend": f"{t.__module__}.{t.__qualname__}", "config": _scrub_identity(config())}
    raise TypeError(
        f"cannot cache the answers of {t.__module__}.{t.__qualname__}: it has no "
        "cache_identity() (a JSON-able dict of what determines its answers: model, endpoint, "
        "sampling settings) and no to_config(); add one, or pass identity={...} to CachedLLM"
    )


def cache_key(
    identity: Mapping[str, Any], messages: Sequence[Message], params: Mapping[str, Any]
) -> str:
    """The sha256 hex key of one call (see the module docstring for what goes in).

    Raises :class:`Uncacheable` (a ``TypeError``) naming a parameter with no JSON form.
    """
    payload = {
        "v": 1,
        "backend": _canonical(dict(identity), "cache identity"),
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "params": {
            k: _canonical(v, f"parameter {k!r}")
            for k, v in params.items()
            if k not in IGNORED_PARAMS
        },
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


