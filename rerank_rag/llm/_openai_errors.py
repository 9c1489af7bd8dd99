"""How an OpenAI-compatible server's rejections map onto the rerank-rag error family.

* 429 -> :class:`~rerank_rag.LLMRateLimitError`, 5xx -> :class:`~rerank_rag.LLMServerError`,
  408 -> :class:`~rerank_rag.LLMTimeoutError` (all retried by the backend);
* 401, 403, 404, or an unknown model on any status (an OpenAI-style ``code`` such as
  ``model_not_found``, ``param == "model"``, or "unknown model" / "model ... does not
  exist" in the message) -> :class:`~rerank_rag.LLMConfigurationError`
  (``transient=False``: never retried, never fallen back from);
* any other 4xx -> :class:`~rerank_rag.LLMResponseError` (not retried; rankers fall back);
* an HTTP 200 whose body is ``{"error": ...}``: the status it names (``code`` or
  ``status``) is honoured as above; otherwise a malformed answer (retried once). The
  server's message is kept in every case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .._errors import (
    LLMConfigurationError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)
from ._retry import mark_malformed

__all__ = ["body_error", "is_configuration_error", "status_error"]

#: HTTP statuses that no retry or fallback can fix: wrong or missing key, no access,
#: wrong URL or unknown model.
CONFIG_STATUSES = frozenset({401, 403, 404})
#: Error codes (OpenAI-style ``error.code``) that say the same on any status.
CONFIG_CODES = frozenset(
    {"model_not_found", "invalid_api_key", "invalid_model", "unknown_model", "deployment_not_found"}
)
# An unknown model reported with a 400/422 (LiteLLM proxies, some gateways); bounded gap,
# so the search stays linear.
_UNKNOWN_MODEL_RE = re.compile(
    r"\b(?:unknown|invalid) model\b|\bmodel\b.{0,120}?\b(?:does not exist|not found)\b",
    re.I | re.S,
)
_HINT = " (check the API key, base_url and model name)"


def is_configuration_error(status: int | None, code: Any, param: Any, message: str) -> bool:
    """Whether a rejection can never succeed as configured."""
    if status in CONFIG_STATUSES:
        return True
    if isinstance(code, str) and code.strip().lower() in CONFIG_CODES:
        return True
    if status in (400, 422, None) and (param == "model" or _UNKNOWN_MODEL_RE.search(message)):
        return True
    return False


def _retried_kind(status: int | None) -> type[LLMError] | None:
    """The error class of a status the backend retries (429, 5xx, 408), else ``None``."""
    if status == 429:
        return LLMRateLimitError
    if status is not None and status >= 500:
        return LLMServerError
    if status == 408:
        return LLMTimeoutError
    return None


_RETRIED_TEXT = {
    LLMRateLimitError: "rate limited by {where} (HTTP 429): {message}",
    LLMServerError: "server error from {where} (HTTP {status}): {message}",
    LLMTimeoutError: "{where} answered HTTP 408 (request timeout)",
}


def status_error(
    status: int, where: str, message: str, *, code: Any = None, param: Any = None
) -> LLMError:
    """The error for an HTTP error status (``message``: the server's, shortened)."""
    kind = _retried_kind(status)
    if kind is not None:
        return kind(_RETRIED_TEXT[kind].format(where=where, status=status, message=message), status=status)
    text = f"{where} rejected the request (HTTP {status}): {message}"
    if is_configuration_error(status, code, param, message):
        return LLMConfigurationError(text + _HINT, status=status)
    return LLMResponseError(text, status=status)


def _status_of(value: Any) -> int | None:
    """An HTTP status from an error body's ``code``/``status`` (int or digit string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 100 <= value <= 599 else None
    if isinstance(value, str) and value.strip().isdigit():
        v = int(value.strip())
        return v if 100 <= v <= 599 else None
    return None


def body_error(error: Any, where: str, redact: Callable[[str], str]) -> LLMError:
    """The error of an HTTP 200 whose body is ``{"error": error}`` (message kept)."""
    if isinstance(error, dict):
        message = error.get("message") or error.get("error") or json.dumps(error)[:500]
        code, param = error.get("code"), error.get("param")
        status = _status_of(error.get("status")) or _status_of(code)
    else:
        message, code, param, status = str(error), None, None, None
    message = str(message)
    if len(message) > 500:
        message = message[:500] + "..."
    message = redact(message)
    text = f"{where} answered HTTP 200 with an error"
    if status is not None:
        text += f" (status {status})"
    text += f": {message}"
    kind = _retried_kind(status)
    if kind is not None:
        return kind(text, status=status)
    if is_configuration_error(status, code, param, message):
        return LLMConfigurationError(text + _HINT, status=status)
    return mark_malformed(LLMResponseError(text, status=status))
