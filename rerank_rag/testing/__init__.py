"""Test doubles shipped with rerank-rag (public API).

* :class:`ChatServer`: a real OpenAI-compatible chat-completions HTTP server on
  ``127.0.0.1``, driven by a plain function ``handler(body) -> str | Reply``. Point
  :class:`~rerank_rag.llm.OpenAICompatibleLLM` (or any OpenAI client) at
  ``srv.base_url`` to test rate limits, server errors, timeouts, connection resets,
  malformed bodies, log-probabilities and concurrency limits end to end.
* :func:`keyword_oracle`: a deterministic listwise answer (passages containing a
  keyword first), for a :class:`FakeLLM` or a :class:`ChatServer` handler.
* :func:`synthetic_queries` / :func:`synthetic_qrels`: deterministic synthetic query
  sets (lazily generated) with matching judgments for the LLM simulator, for batch
  tests and benchmarks.
* :class:`Reply`: what the handler answers (text, status, headers, delay, raw body,
  reset, token counts, first-token top log-probabilities).

For in-process tests that need no HTTP at all, use :class:`FakeLLM` (re-exported here
from :mod:`rerank_rag.llm`).
Only the standard library is used; importing this module is cheap.
"""

from __future__ import annotations

from ..llm._fake import FakeLLM
from ._oracle import keyword_oracle
from ._server import ChatServer, RecordedRequest, Reply, estimate_tokens
from ._synthetic import synthetic_qrels, synthetic_queries

__all__ = [
    "ChatServer",
    "FakeLLM",
    "RecordedRequest",
    "Reply",
    "estimate_tokens",
    "keyword_oracle",
    "synthetic_qrels",
    "synthetic_queries",
]
