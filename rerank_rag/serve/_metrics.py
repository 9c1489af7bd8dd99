"""Prometheus metrics of one service instance (its own registry: no global state).

``GET /metrics`` serves them in the Prometheus text format:

* ``rerank_rag_requests_total{route, model, status}``: answered rerank requests;
* ``rerank_rag_request_seconds{route, model}``: latency histogram of answered requests;
* ``rerank_rag_documents{model}``: documents per request (histogram);
* ``rerank_rag_in_flight``: requests being ranked now;
* ``rerank_rag_rejected_total{reason}``: requests refused before ranking (auth, body,
  overload, validation, deadline);
* ``rerank_rag_llm_calls_total{model}``, ``rerank_rag_llm_failed_calls_total{model}``,
  ``rerank_rag_fallbacks_total{model}``, ``rerank_rag_cache_hits_total{model}``,
  ``rerank_rag_truncated_documents_total{model}``: what the rankings cost and where
  they degraded (from :class:`~rerank_rag.Usage`).
"""

from __future__ import annotations

from typing import Any

from .._errors import require

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DOC_BUCKETS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)


class Metrics:
    """The counters, gauges and histograms of one service."""

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve", feature="rerank-rag serve metrics")
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter(
            "rerank_rag_requests", "Answered rerank requests", ["route", "model", "status"], registry=r
        )
        self.latency = prom.Histogram(
            "rerank_rag_request_seconds", "Latency of answered rerank requests",
            ["route", "model"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.documents = prom.Histogram(
            "rerank_rag_documents", "Documents per request", ["model"], buckets=_DOC_BUCKETS, registry=r
        )
        self.in_flight = prom.Gauge("rerank_rag_in_flight", "Requests being ranked now", registry=r)
        self.rejected = prom.Counter(
            "rerank_rag_rejected", "Requests refused before ranking", ["reason"], registry=r
        )
        self.usage: dict[str, Any] = {
            field: prom.Counter(f"rerank_rag_{name}", help_, ["model"], registry=r)
            for field, name, help_ in (
                ("llm_calls", "llm_calls", "LLM calls made"),
                ("failed_calls", "llm_failed_calls", "LLM calls that failed after retries"),
                ("fallbacks", "fallbacks", "Windows/blocks/stages that fell back"),
                ("cache_hits", "cache_hits", "LLM answers served from the response cache"),
            )
        }
        self.truncated = prom.Counter(
            "rerank_rag_truncated_documents", "Documents cut to the token budget", ["model"], registry=r
        )

    def observe(self, route: str, model: str, status: int, seconds: float) -> None:
        self.requests.labels(route, model, str(status)).inc()
        self.latency.labels(route, model).observe(seconds)

    def observe_usage(self, model: str, usage: Any, n_docs: int, truncated: int) -> None:
        self.documents.labels(model).observe(n_docs)
        for field, counter in self.usage.items():
            value = getattr(usage, field, 0)
            if value:
                counter.labels(model).inc(value)
        if truncated:
            self.truncated.labels(model).inc(truncated)

    def reject(self, reason: str, status: int | None = None) -> None:
        self.rejected.labels(reason).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST
