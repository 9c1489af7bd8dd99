"""Exceptions raised by rerank-rag."""

from __future__ import annotations

__all__ = [
    "RerankRagError",
    "LLMError",
    "LLMRateLimitError",
    "LLMTimeoutError",
    "LLMConnectionError",
    "LLMServerError",
    "LLMResponseError",
    "LLMConfigurationError",
    "ParseError",
    "RankingFailedError",
    "CacheError",
    "MissingDependencyError",
    "is_permanent",
    "as_llm_error",
]


class RerankRagError(Exception):
    """Base class of every error raised by rerank-rag."""


class LLMError(RerankRagError):
    """An LLM call failed (after the backend's bounded retries).

    ``transient`` tells rankers whether a documented fallback is allowed: transient
    failures (rate limits, timeouts, 5xx, resets, garbled answers) may degrade; a
    non-transient one (:class:`LLMConfigurationError`: wrong key, unknown model) can
    never succeed on retry and is raised, never fallen back from.
    """

    transient: bool = True

    def __init__(self, message: str, *, attempts: int = 1, status: int | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class LLMRateLimitError(LLMError):
    """HTTP 429 from the backend, still failing after the retries."""


class LLMTimeoutError(LLMError):
    """The request timed out, still failing after the retries."""


class LLMConnectionError(LLMError):
    """The connection failed or was reset, still failing after the retries."""


class LLMServerError(LLMError):
    """HTTP 5xx from the backend, still failing after the retries."""


class LLMResponseError(LLMError):
    """The backend answered, but not with a usable completion (bad JSON, no choices, 4xx)."""


class LLMConfigurationError(LLMResponseError):
    """A call that cannot succeed as configured: HTTP 401/403 (wrong or missing key),
    404 (wrong URL or unknown model), an unknown-model error. Never retried, never a
    reason to fall back: rankers raise it."""

    transient = False


class ParseError(RerankRagError):
    """An LLM output could not be parsed (raised only when ``strict=True``)."""


class RankingFailedError(RerankRagError):
    """A ranking could not be completed and the caller asked for strictness."""


class CacheError(RerankRagError):
    """A response cache cannot be opened (e.g. a damaged SQLite file); names the path.

    Failures of a cache already in use never raise: the backend logs one WARNING and
    goes on without the cache.
    """


class MissingDependencyError(ImportError, RerankRagError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str, *, feature: str | None = None):  # type: ignore[no-untyped-def]
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised via tests with a missing module
        what = feature or "this feature"
        raise MissingDependencyError(
            f"{what} needs the '{module.split('.')[0]}' package. "
            f"Install it with: pip install 'rerank-rag[{extra}]'"
        ) from exc


def is_permanent(exc: BaseException) -> bool:
    """True for an error no retry or fallback can fix: one with ``transient = False``
    (:class:`LLMConfigurationError`), or an :class:`ImportError` (the backend cannot run
    at all: a module is missing)."""
    return isinstance(exc, ImportError) or getattr(exc, "transient", True) is False


def as_llm_error(exc: BaseException, message: str) -> LLMError:
    """``exc``, raised by a backend that is not ours to classify, as an :class:`LLMError`
    saying ``message``: a timeout or a connection error as the transient kinds, an
    :class:`ImportError` as :class:`LLMConfigurationError` (the backend cannot run, so it
    is raised, never fallen back from), anything else as a transient :class:`LLMError`.
    The original is kept as ``__cause__``."""
    err: LLMError
    if isinstance(exc, ImportError):
        err = LLMConfigurationError(message)
    elif isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError since 3.11
        err = LLMTimeoutError(message)
    elif isinstance(exc, ConnectionError):
        err = LLMConnectionError(message)
    else:
        err = LLMError(message)
    err.__cause__ = exc
    return err
