"""The ASGI app: routes for every API shape, health, models, metrics, OpenAPI.

:func:`create_app` builds a FastAPI app around one :class:`RerankService`. The app is
stateless between requests (pipelines are built from the config at startup), so any
number of workers or Ray Serve replicas can run it behind a load balancer.

Routes:

* ``POST /rerank``, ``POST /v1/rerank``: Jina / Cohere v1 shape; a body with ``texts``
  instead of ``documents`` on ``/rerank`` is the TEI shape (bare array answer).
* ``POST /v2/rerank``: Cohere v2 shape.
* ``GET /v1/models``: the configured pipelines (OpenAI list shape).
* ``GET /health``: liveness/readiness (no key needed).
* ``GET /metrics``: Prometheus text format.
* ``GET /docs``, ``GET /openapi.json``: the OpenAPI page (no key needed).
* ``/mcp``: the MCP endpoint (streamable HTTP) when ``config.mcp`` is true.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations of the
# route functions defined inside create_app (``request: Request``) at definition time.

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from .._errors import require

require("fastapi", "serve", feature="rerank-rag serve")

from ._config import ServeConfig  # noqa: E402
from ._limits import ApiError, Guard, error_body  # noqa: E402
from ._schemas import (  # noqa: E402
    CohereV2RerankRequest,
    CohereV2RerankResponse,
    JinaRerankRequest,
    JinaRerankResponse,
    TEIRank,
    TEIRerankRequest,
    cohere_v2_response,
    document_texts,
    jina_response,
    parse,
    tei_response,
)
from ._service import RerankService  # noqa: E402

__all__ = ["create_app"]

log = logging.getLogger("rerank_rag.serve")

PUBLIC_PATHS = frozenset({"/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"})


def _request_body(model: type, example: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


_EXAMPLE = {
    "model": "minilm",
    "query": "Which volcano in Sicily erupts often?",
    "documents": ["Mount Etna is an active volcano in Sicily.", "Knitting a wool scarf."],
    "top_n": 2,
}


def create_app(config: ServeConfig | None = None, *, service: RerankService | None = None) -> Any:
    """A FastAPI app serving ``config`` (default: :func:`default_config`)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    from ._config import default_config

    if service is None:
        service = RerankService(config or default_config())
    cfg = service.config
    mcp_server = None
    if cfg.mcp:
        from ._mcp import build_mcp_server

        mcp_server = build_mcp_server(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await service.start()
        try:
            if mcp_server is not None:
                async with mcp_server.session_manager.run():
                    yield
            else:
                yield
        finally:
            await service.aclose()

    from .. import __version__

    app = FastAPI(
        title="rerank-rag",
        version=__version__,
        description="Rerank API (Jina / Cohere v1, Cohere v2, TEI shapes) over rerank-rag "
        "pipelines. Scores are relevance values in [0, 1]; >= 0.5 means the ranker judged "
        "the document relevant.",
        lifespan=lifespan,
    )
    app.state.service = service

    def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        return Response(
            content=json.dumps(payload, separators=(",", ":")),
            status_code=status,
            media_type="application/json",
            headers=headers,
        )

    def timing(res: Any) -> dict[str, str]:
        # W3C Server-Timing: how long the ranker itself took (the rest is service time)
        return {"Server-Timing": f"rank;dur={res.usage.wall_time * 1000:.3f}"}

    def fail(exc: ApiError, route: str, model: str, t0: float, *, tei: bool = False) -> Any:
        service.metrics.observe(route, model, exc.status, time.perf_counter() - t0)
        if exc.status >= 500:
            log.warning("%s %s -> %d: %s", route, model, exc.status, exc.message)
        return json_response(error_body(exc.message, exc.kind, tei=tei), exc.status, exc.headers)

    async def read_json(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ApiError(
                400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}",
            ) from None  # fmt: skip
        except UnicodeDecodeError:
            raise ApiError(400, "the request body is not valid UTF-8 JSON") from None

    def model_label(data: Any) -> str:
        m = data.get("model") if isinstance(data, dict) else None
        if not m or not isinstance(m, str):
            return cfg.default_model
        return m if m in service.pipelines else "unknown"

    async def rerank_jina_or_tei(request: Request, route: str) -> Any:
        t0 = time.perf_counter()
        tei, label = False, cfg.default_model
        try:
            data = await read_json(request)
            label = model_label(data)
            tei = route == "/rerank" and isinstance(data, dict) and "texts" in data and "documents" not in data
            if tei:
                req: Any = parse(TEIRerankRequest, data)
                texts = document_texts(req.texts, "texts")
                res = await service.rerank(model=req.model, query=req.query, texts=texts)
                payload: Any = tei_response(res, texts, req.raw_scores, req.return_text)
            else:
                req = parse(JinaRerankRequest, data)
                texts = document_texts(req.documents)
                res = await service.rerank(model=req.model, query=req.query, texts=texts, top_n=req.top_n)
                payload = jina_response(res, texts, req.return_documents)
        except ApiError as exc:
            return fail(exc, route, label, t0, tei=tei)
        service.metrics.observe(route, res.model, 200, time.perf_counter() - t0)
        return json_response(payload, headers=timing(res))

    responses = {200: {"model": JinaRerankResponse}, 422: {"description": "invalid request"}}

    @app.post("/rerank", openapi_extra=_request_body(JinaRerankRequest, _EXAMPLE), responses=responses,
              summary="Rerank (Jina / Cohere v1 shape; TEI shape when the body has 'texts')")  # fmt: skip
    async def rerank(request: Request) -> Any:
        return await rerank_jina_or_tei(request, "/rerank")

    @app.post("/v1/rerank", openapi_extra=_request_body(JinaRerankRequest, _EXAMPLE),
              responses=responses, summary="Rerank (Jina / Cohere v1 shape)")  # fmt: skip
    async def rerank_v1(request: Request) -> Any:
        return await rerank_jina_or_tei(request, "/v1/rerank")

    v2_example = {k: v for k, v in _EXAMPLE.items()}
    v2_example["max_tokens_per_doc"] = 512

    @app.post("/v2/rerank", openapi_extra=_request_body(CohereV2RerankRequest, v2_example),
              responses={200: {"model": CohereV2RerankResponse}}, summary="Rerank (Cohere v2 shape)")  # fmt: skip
    async def rerank_v2(request: Request) -> Any:
        t0 = time.perf_counter()
        label = cfg.default_model
        try:
            data = await read_json(request)
            label = model_label(data)
            req = parse(CohereV2RerankRequest, data)
            texts = document_texts(req.documents)
            res = await service.rerank(
                model=req.model, query=req.query, texts=texts, top_n=req.top_n,
                max_tokens_per_doc=req.max_tokens_per_doc,
            )  # fmt: skip
        except ApiError as exc:
            return fail(exc, "/v2/rerank", label, t0)
        service.metrics.observe("/v2/rerank", res.model, 200, time.perf_counter() - t0)
        return json_response(cohere_v2_response(res), headers=timing(res))

    # The TEI shape, documented for the OpenAPI page (served by POST /rerank).
    app.openapi_tags = [{"name": "TEI", "description": "POST /rerank with {query, texts}: "
                         f"answers a bare array of {list(TEIRank.model_fields)}"}]  # fmt: skip

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Any:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return json_response(error_body("internal server error", "internal_error"), 500)

    @app.get("/v1/models", summary="The configured pipelines")
    async def models() -> Any:
        return json_response(
            {"object": "list", "data": [p.describe() for p in service.pipelines.values()]}
        )

    @app.get("/health", summary="Liveness and readiness")
    async def health() -> Any:
        body = service.health()
        return json_response(body, 200 if body["status"] == "ok" else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Any:
        content, ctype = service.metrics.render()
        return Response(content=content, media_type=ctype)

    if mcp_server is not None:
        mcp_app = mcp_server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=True,
            max_request_body_size=cfg.limits.max_body_bytes,
            host=cfg.host,
        )
        for route in mcp_app.routes:
            app.router.routes.append(route)

    app.add_middleware(
        Guard,
        keys=cfg.api_keys(),
        max_body_bytes=cfg.limits.max_body_bytes,
        public=PUBLIC_PATHS,
        on_reject=service.metrics.reject,
    )

    return app
