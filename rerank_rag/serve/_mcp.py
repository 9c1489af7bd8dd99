"""The pipelines as MCP tools, for agents (the official ``mcp`` Python SDK, v2).

Two tools, both going through :meth:`RerankService.rerank`, so they carry the same
limits as the HTTP API (document and query caps, in-flight cap, deadline, truncation):

* ``rerank(query, documents, top_n?, model?)`` -> the ranked indices with their
  relevance scores (in [0, 1]; >= 0.5: judged relevant);
* ``prune(query, items, token_budget, model?, min_relevance?)`` -> which agent-memory
  items to keep: the most relevant first, as many as fit in ``token_budget`` tokens
  (items below ``min_relevance`` are dropped); ``keep`` lists them in their original
  order so the memory's chronology survives.

Transports: stdio (``rerank-rag serve --stdio``) and streamable HTTP, mounted at
``/mcp`` on the HTTP service (``rerank-rag serve --mcp``; the API key, body cap and
in-flight cap apply there too).
"""

from __future__ import annotations

from typing import Any

from .._errors import require

require("mcp", "mcp", feature="the rerank-rag MCP server")

from pydantic import BaseModel, Field  # noqa: E402

from .._text import count_tokens  # noqa: E402
from ._limits import ApiError  # noqa: E402
from ._service import RerankResult, RerankService  # noqa: E402

__all__ = ["build_mcp_server", "run_stdio", "RankedItem", "RerankToolResult", "PruneToolResult"]

INSTRUCTIONS = (
    "Reranking tools. Use `rerank` to order documents (e.g. retrieved passages) by "
    "relevance to a query; scores are in [0, 1] and >= 0.5 means judged relevant. Use "
    "`prune` to choose which memory items to keep for a query within a token budget."
)


class RankedItem(BaseModel):
    index: int = Field(description="position of the item in the input list")
    relevance_score: float = Field(description="relevance in [0, 1]; >= 0.5: judged relevant")


class RerankToolResult(BaseModel):
    model: str
    results: list[RankedItem] = Field(description="best first")
    warnings: list[str] = Field(default_factory=list)


class PruneToolResult(BaseModel):
    model: str
    keep: list[int] = Field(description="indices of the items to keep, in their original order")
    dropped: list[int] = Field(description="indices of the items to drop, in their original order")
    tokens_kept: int
    token_budget: int
    results: list[RankedItem] = Field(description="every item, best first")
    warnings: list[str] = Field(default_factory=list)


def _tool_error(exc: ApiError) -> Exception:
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(f"{exc.message} (HTTP {exc.status} {exc.kind})")


def _ranked(res: RerankResult) -> list[RankedItem]:
    """Every ranked item of ``res``, best first, as both tools report it."""
    return [RankedItem(index=i, relevance_score=round(v, 6)) for i, v in zip(res.order, res.relevance)]


def build_mcp_server(service: RerankService) -> Any:
    """An ``MCPServer`` with the ``rerank`` and ``prune`` tools over ``service``."""
    from mcp.server.mcpserver import MCPServer

    from .. import __version__

    server = MCPServer(
        name="rerank-rag",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )

    @server.tool(
        description="Rerank documents by relevance to a query. Returns every document "
        "(or the top_n best) as {index, relevance_score}, best first."
    )
    async def rerank(
        query: str, documents: list[str], top_n: int | None = None, model: str | None = None
    ) -> RerankToolResult:
        try:
            res = await service.rerank(model=model, query=query, texts=list(documents), top_n=top_n)
        except ApiError as exc:
            raise _tool_error(exc) from None
        return RerankToolResult(
            model=res.model,
            results=_ranked(res),
            warnings=res.warnings,
        )

    @server.tool(
        description="Choose which agent-memory items to keep for a query: the most "
        "relevant first, as many as fit in token_budget tokens; items with a relevance "
        "below min_relevance are dropped. 'keep' is in the items' original order."
    )
    async def prune(
        query: str,
        items: list[str],
        token_budget: int,
        model: str | None = None,
        min_relevance: float = 0.0,
    ) -> PruneToolResult:
        if token_budget < 0:
            raise _tool_error(ApiError(422, f"token_budget must be >= 0, got {token_budget}"))
        if not 0.0 <= min_relevance <= 1.0:
            raise _tool_error(ApiError(422, f"min_relevance must lie in [0, 1], got {min_relevance}"))
        try:
            res = await service.rerank(model=model, query=query, texts=list(items))
        except ApiError as exc:
            raise _tool_error(exc) from None
        keep: list[int] = []
        left = token_budget
        for i, rel in zip(res.order, res.relevance):
            if rel < min_relevance:
                break  # relevance only decreases from here
            cost = count_tokens(items[i])
            if cost <= left:
                keep.append(i)
                left -= cost
        kept = set(keep)
        return PruneToolResult(
            model=res.model,
            keep=sorted(kept),
            dropped=[i for i in range(len(items)) if i not in kept],
            tokens_kept=token_budget - left,
            token_budget=token_budget,
            results=_ranked(res),
            warnings=res.warnings,
        )

    return server


async def run_stdio(service: RerankService) -> None:
    """Serve the tools over stdio until the client closes the stream."""
    server = build_mcp_server(service)
    await service.start()
    try:
        await server.run_stdio_async()
    finally:
        await service.aclose()
