"""``RerankService``: the one place a request is checked, limited and ranked.

The HTTP routes (every API shape) and the MCP tools call :meth:`RerankService.rerank`,
so they share the limits: model lookup (404 listing the known models), query and
document caps (422 with the limit), top_n checks, per-document truncation, the
in-flight cap (429 + ``Retry-After``), the per-request deadline (504) and the failure
policy (an LLM that failed every call: 503, never a silent first-stage order).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from .._errors import (
    LLMConfigurationError,
    LLMError,
    MissingDependencyError,
    ParseError,
    RankingFailedError,
)
from .._relevance import positional
from .._types import Ranking, Usage
from ._config import ServeConfig
from ._limits import ApiError, InFlight, truncate_documents
from ._metrics import Metrics
from ._pipelines import Pipeline, build_cache

__all__ = ["RerankService", "RerankResult"]

log = logging.getLogger("rerank_rag.serve")


@dataclass
class RerankResult:
    """A finished ranking, ready for any response shape.

    Attributes:
        model: the pipeline that ranked.
        order / scores / relevance: aligned, best first (relevance in [0, 1]).
        n_documents: documents in the request.
        input_tokens: estimated tokens of the query and documents (4 characters each).
        usage: what the ranking cost.
        warnings: degradations the client should know about (failed LLM calls,
            truncated documents).
    """

    model: str
    order: tuple[int, ...]
    scores: tuple[float, ...]
    relevance: tuple[float, ...]
    n_documents: int
    input_tokens: int
    usage: Usage = field(default_factory=Usage)
    warnings: list[str] = field(default_factory=list)


def _estimate_tokens(query: str, texts: list[str]) -> int:
    return (len(query) + sum(len(t) for t in texts) + 3) // 4


class RerankService:
    """Pipelines, limits and metrics of one running service.

    Create it, ``await start()`` (builds the pipelines, loads local models), serve, then
    ``await aclose()``.
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.limits = config.limits
        self.metrics = Metrics()
        self.in_flight = InFlight(config.limits.max_in_flight)
        self._cache = build_cache(config.cache)
        self.pipelines: dict[str, Pipeline] = {
            name: Pipeline(spec, cache=self._cache) for name, spec in config.pipelines.items()
        }
        self.started = False
        self._warned: set[str] = set()

    async def start(self) -> None:
        for p in self.pipelines.values():
            await asyncio.to_thread(p.start)
        self.started = True
        log.info(
            "rerank-rag serve: pipelines %s (default %s)",
            ", ".join(self.pipelines), self.config.default_model,
        )  # fmt: skip

    async def aclose(self) -> None:
        for p in self.pipelines.values():
            await p.aclose()
        close = getattr(self._cache, "close", None)
        if callable(close):
            close()

    # -- checks ------------------------------------------------------------------------

    def pipeline(self, model: Any) -> Pipeline:
        """The pipeline for ``model``; ``None`` or empty selects the default."""
        if model is None or (isinstance(model, str) and not model.strip()):
            return self.pipelines[self.config.default_model]
        if not isinstance(model, str):
            raise ApiError(422, f"model must be a string, got {type(model).__name__}")
        p = self.pipelines.get(model.strip())
        if p is None:
            raise ApiError(
                404,
                f"unknown model {model[:100]!r}; this server serves: {', '.join(self.pipelines)}",
                "model_not_found",
            )
        return p

    def check_query(self, query: Any) -> str:
        if not isinstance(query, str):
            raise ApiError(422, f"query must be a string, got {type(query).__name__}")
        if not query.strip():
            raise ApiError(422, "query must be a non-empty string")
        cap = self.limits.max_query_chars
        if len(query) > cap:
            raise ApiError(
                422, f"query too long: {len(query)} characters (this server accepts at most {cap})"
            )
        return query

    def check_documents(self, n: int) -> None:
        cap = self.limits.max_documents
        if n > cap:
            raise ApiError(
                422, f"too many documents: {n} (this server accepts at most {cap} per request)"
            )

    @staticmethod
    def check_top_n(top_n: Any) -> int | None:
        if top_n is None:
            return None
        if isinstance(top_n, bool) or not isinstance(top_n, int):
            raise ApiError(422, f"top_n must be an integer, got {type(top_n).__name__}")
        if top_n < 1:
            raise ApiError(422, f"top_n must be >= 1, got {top_n} (omit it to rank every document)")
        return top_n

    def token_budget(self, requested: Any) -> int:
        cap = self.limits.max_tokens_per_doc
        if requested is None:
            return cap
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ApiError(422, f"max_tokens_per_doc must be a positive integer, got {requested!r}")
        return min(requested, cap)

    # -- ranking -----------------------------------------------------------------------

    async def rerank(
        self,
        *,
        model: Any,
        query: Any,
        texts: list[str],
        top_n: Any = None,
        max_tokens_per_doc: Any = None,
    ) -> RerankResult:
        """Check, limit and rank; raises :class:`ApiError` with the status to answer."""
        pipeline = self.pipeline(model)
        query = self.check_query(query)
        self.check_documents(len(texts))
        k = self.check_top_n(top_n)
        budget = self.token_budget(max_tokens_per_doc)
        n = len(texts)
        if n == 0:
            return RerankResult(pipeline.name, (), (), (), 0, _estimate_tokens(query, texts))
        if not self.in_flight.try_acquire():
            self.metrics.reject("overloaded")
            raise ApiError(
                429,
                f"too many requests in flight (limit {self.limits.max_in_flight}); retry later",
                "rate_limit_error",
                {"Retry-After": str(self.limits.retry_after)},
            )
        self.metrics.in_flight.inc()
        try:
            cut_texts, truncated = truncate_documents(texts, budget)
            ranking = await self._rank(pipeline, query, cut_texts, k)
        finally:
            self.in_flight.release()
            self.metrics.in_flight.dec()
        self.metrics.observe_usage(pipeline.name, ranking.usage, n, truncated)
        warnings = self._policy(pipeline, ranking)
        if truncated:
            warnings.append(f"{truncated} document(s) truncated to {budget} tokens")
        relevance = ranking.relevance
        if relevance is None:  # a single document, not shown to a model: positional
            relevance = tuple(positional(n)[: len(ranking.order)])
        return RerankResult(
            model=pipeline.name,
            order=ranking.order,
            scores=ranking.scores,
            relevance=relevance,
            n_documents=n,
            input_tokens=_estimate_tokens(query, texts),
            usage=ranking.usage,
            warnings=warnings,
        )

    async def _rank(self, pipeline: Pipeline, query: str, texts: list[str], k: int | None) -> Ranking:
        timeout = self.limits.request_timeout
        try:
            async with asyncio.timeout(timeout):
                return await pipeline.rank(query, texts, k)
        except TimeoutError:
            self.metrics.reject("deadline")
            raise ApiError(
                504, f"the ranking did not finish within the request deadline of {timeout:g} s",
                "timeout_error",
            ) from None  # fmt: skip
        except LLMConfigurationError as exc:
            raise ApiError(
                502, f"pipeline {pipeline.name!r}: the LLM backend rejected the call as "
                f"configured ({type(exc).__name__}, HTTP {exc.status}); check its URL, model "
                "and key", "upstream_configuration_error",
            ) from exc  # fmt: skip
        except (LLMError, RankingFailedError, ParseError) as exc:
            raise ApiError(
                503, f"pipeline {pipeline.name!r}: the LLM backend failed ({type(exc).__name__}); "
                "retry later", "upstream_unavailable", {"Retry-After": str(self.limits.retry_after)},
            ) from exc  # fmt: skip
        except MissingDependencyError as exc:
            raise ApiError(503, f"pipeline {pipeline.name!r}: {exc}", "missing_dependency") from exc

    def _policy(self, pipeline: Pipeline, ranking: Ranking) -> list[str]:
        """Apply ``on_failure``; return warnings for partial degradation."""
        u = ranking.usage
        if not u.failed_calls and not u.fallbacks:
            return []
        every_call_failed = u.failed_calls > 0 and u.failed_calls >= u.llm_calls and not u.cache_hits
        msg = (
            f"{u.failed_calls} of {u.llm_calls} LLM call(s) failed; {u.fallbacks} "
            "window(s)/block(s) fell back to the previous order"
        )
        # WARNING the first time per pipeline, DEBUG after (the metrics count every one)
        level = logging.DEBUG if pipeline.name in self._warned else logging.WARNING
        self._warned.add(pipeline.name)
        log.log(level, "pipeline %s: %s (further ones at DEBUG; see /metrics)", pipeline.name, msg)
        if every_call_failed and pipeline.spec.on_failure == "error":
            raise ApiError(
                503, f"pipeline {pipeline.name!r}: the LLM backend failed on every call "
                f"({u.failed_calls}); no ranking was made. Retry later.",
                "upstream_unavailable", {"Retry-After": str(self.limits.retry_after)},
            )  # fmt: skip
        return [msg]

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.started else "starting",
            "default_model": self.config.default_model,
            "models": list(self.pipelines),
            "in_flight": self.in_flight.count,
        }
