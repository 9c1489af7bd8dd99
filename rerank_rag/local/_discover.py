"""Find an OpenAI-compatible LLM server already running on this machine.

``rerank-rag demo`` asks here first, before it starts (or installs) its own llama.cpp
server: if you already run Ollama or a llama.cpp server, its model is used. Only
``127.0.0.1`` is probed, with a short timeout per port, and only with
``GET /v1/models`` (no completion is requested, nothing is sent elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RunningServer", "KNOWN_PORTS", "find_running_server"]

#: ``(port, what usually listens there)``, probed in this order.
KNOWN_PORTS: tuple[tuple[int, str], ...] = ((11434, "Ollama"), (8080, "llama.cpp server"))


@dataclass(frozen=True)
class RunningServer:
    """A server that answered ``GET /v1/models`` with at least one model."""

    base_url: str
    models: tuple[str, ...]
    kind: str

    @property
    def model(self) -> str:
        """The first model the server lists (the one the demo uses)."""
        return self.models[0]


def get_model_list(base_url: str, timeout: float, max_bytes: int | None = None) -> Any:
    """The decoded JSON of ``GET {base_url}/models`` (at most ``max_bytes`` of it), or
    ``None`` when nothing answers, the status is not 200 or the body is not JSON."""
    import urllib.error  # lazy: http.client and email are slow to import
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as resp:  # noqa: S310
            if resp.status != 200:
                return None
            return json.loads((resp.read() if max_bytes is None else resp.read(max_bytes)).decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _models(base_url: str, timeout: float) -> tuple[str, ...]:
    data = get_model_list(base_url, timeout, 1 << 20)
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return ()
    return tuple(str(m["id"]) for m in items if isinstance(m, dict) and m.get("id"))


def find_running_server(
    ports: Sequence[tuple[int, str]] | None = None, *, timeout: float = 0.5
) -> RunningServer | None:
    """The first server on ``127.0.0.1`` that lists a model, or ``None``.

    Args:
        ports: ``(port, label)`` pairs to try, in order (default: Ollama's 11434, then
            llama.cpp's 8080).
        timeout: seconds per port (a closed port answers at once).
    """
    for port, kind in KNOWN_PORTS if ports is None else ports:
        base_url = f"http://127.0.0.1:{int(port)}/v1"
        models = _models(base_url, timeout)
        if models:
            return RunningServer(base_url=base_url, models=models, kind=kind)
    return None
