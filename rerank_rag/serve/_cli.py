"""``rerank-rag serve``: run the rerank HTTP service (uvicorn), the MCP server, or Ray Serve.

    rerank-rag serve                                  # offline default on 127.0.0.1:8000
    rerank-rag serve --config serve.toml --port 9000
    rerank-rag serve --pipeline 'jr=jointrank,base_url=http://127.0.0.1:8080/v1,model=qwen'
    rerank-rag serve --mcp                            # also MCP (streamable HTTP) at /mcp
    rerank-rag serve --stdio                          # MCP over stdio only
    rerank-rag serve --ray --replicas 2               # Ray Serve deployment
    rerank-rag serve --ray --min-replicas 1 --max-replicas 4 --num-cpus 1   # autoscaling
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from .._errors import MissingDependencyError
from ._config import ConfigError, ServeConfig, default_config, load_config
from ._flags import parse_pipeline_flag
from ._scaling import RayOptions

__all__ = ["main", "build_config", "app_from_env"]

#: Environment variable carrying the config (JSON) to uvicorn worker processes.
CONFIG_ENV = "RERANK_RAG_SERVE_CONFIG"


#: The ``[limits]`` fields settable by a flag (``--max-in-flight`` ...), with their types.
_LIMIT_FLAGS = (("max_in_flight", int), ("max_documents", int), ("max_body_bytes", int),
                ("max_query_chars", int), ("max_tokens_per_doc", int), ("request_timeout", float))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rerank-rag serve",
        description="Serve rerank-rag pipelines over the rerank APIs RAG apps speak "
        "(Jina / Cohere v1 /rerank and /v1/rerank, Cohere v2 /v2/rerank, TEI), and as MCP tools.",
    )
    p.add_argument("--config", help="TOML or YAML config file (see docs/serving.md)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 8000; 0: a free one)")
    p.add_argument(
        "--pipeline", action="append", default=[], metavar="NAME=RANKER[,key=value...]",
        help="add a pipeline, e.g. 'jr=jointrank,base_url=http://127.0.0.1:8080/v1,model=qwen,"
        "api_key_env=OPENAI_API_KEY,block_size=10' (repeatable)",
    )  # fmt: skip
    p.add_argument("--default-model", help="pipeline used when a request names no model")
    p.add_argument(
        "--api-keys-env", metavar="VAR",
        help="environment variable with comma-separated API keys (default RERANK_RAG_API_KEYS; "
        "unset or empty: no authentication)",
    )  # fmt: skip
    for name, kind in _LIMIT_FLAGS:
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"limits.{name}")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--mcp", action="store_true", help="also serve the MCP tools at /mcp")
    p.add_argument("--stdio", action="store_true", help="serve the MCP tools over stdio only")
    ray = p.add_argument_group("Ray Serve (with --ray; override the config's [ray] section)")
    ray.add_argument("--ray", action="store_true", help="run as a Ray Serve deployment")
    ray.add_argument("--replicas", type=int, help="a fixed number of replicas (ray.replicas)")
    for name, kind in (("min-replicas", int), ("max-replicas", int), ("target-ongoing-requests", float)):
        ray.add_argument(f"--{name}", type=kind, help=f"autoscaling (ray.autoscaling.{name.replace('-', '_')})")
    ray.add_argument("--num-cpus", type=float, help="CPUs each replica reserves (ray.ray_actor_options.num_cpus)")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def build_config(args: argparse.Namespace) -> ServeConfig:
    """The config file (or the default), then the flags on top."""
    cfg = load_config(args.config) if args.config else default_config()
    pipes = dict(cfg.pipelines)
    for flag in args.pipeline:
        spec = parse_pipeline_flag(flag)
        pipes[spec.name] = spec
    kw: dict[str, object] = {"pipelines": pipes}
    if args.host:
        kw["host"] = args.host
    if args.port is not None:
        kw["port"] = args.port
    if args.api_keys_env:
        kw["api_keys_env"] = args.api_keys_env
    if args.mcp:
        kw["mcp"] = True
    if args.default_model:
        kw["default_model"] = args.default_model
    limits = {name: getattr(args, name) for name, _ in _LIMIT_FLAGS if getattr(args, name) is not None}
    if limits:
        kw["limits"] = replace(cfg.limits, **limits)
    kw["ray"] = _ray_options(args, cfg.ray)
    return replace(cfg, **kw)  # type: ignore[arg-type]


_AUTOSCALING_FLAGS = ("min_replicas", "max_replicas", "target_ongoing_requests")


def _ray_options(args: argparse.Namespace, base: RayOptions) -> RayOptions:
    """The ``[ray]`` section with the Ray flags on top (flags without ``--ray``: an error)."""
    auto = {k: getattr(args, k) for k in _AUTOSCALING_FLAGS if getattr(args, k) is not None}
    given = [f"--{k.replace('_', '-')}" for k in ("replicas", *_AUTOSCALING_FLAGS, "num_cpus")
             if getattr(args, k) is not None]  # fmt: skip
    if given and not args.ray:
        raise ConfigError(f"{', '.join(given)}: only with --ray")
    if args.ray and args.workers != 1:
        raise ConfigError("--workers is for uvicorn; with --ray, scale with --replicas or autoscaling")
    if args.replicas is not None and auto:
        raise ConfigError("--replicas (a fixed number) and the autoscaling flags exclude each other")
    ray = base
    if args.replicas is not None:
        ray = replace(ray, replicas=args.replicas, autoscaling=None)
    elif auto:
        ray = replace(ray, replicas=None, autoscaling={**(ray.autoscaling or {}), **auto})
    if args.num_cpus is not None:
        ray = replace(ray, ray_actor_options={**ray.ray_actor_options, "num_cpus": args.num_cpus})
    return ray


def app_from_env() -> object:
    """App factory for uvicorn workers (``--workers N``): the config comes as JSON in
    :data:`CONFIG_ENV`."""
    from ._app import create_app

    return create_app(ServeConfig.from_dict(json.loads(os.environ[CONFIG_ENV])))


def _serve_http(cfg: ServeConfig, workers: int, log_level: str) -> int:
    from .._errors import require

    uvicorn = require("uvicorn", "serve", feature="rerank-rag serve")
    grace = cfg.limits.request_timeout + 5.0  # SIGTERM: finish in-flight requests first
    common = dict(
        host=cfg.host, port=cfg.port, log_level=log_level, timeout_graceful_shutdown=grace,
        proxy_headers=False, server_header=False,
    )  # fmt: skip
    if workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(cfg.to_dict())
        uvicorn.run("rerank_rag.serve._cli:app_from_env", factory=True, workers=workers, **common)
        return 0
    from ._app import create_app

    uvicorn.run(create_app(cfg), **common)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = build_config(args)
        if args.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {args.workers}")
        if args.print_config:
            print(json.dumps(cfg.to_dict(), indent=2))
            return 0
        from ._pipelines import Pipeline

        for spec in cfg.pipelines.values():  # fail fast: unknown ranker, unset key variable
            Pipeline(spec).check()
        if args.stdio:
            import asyncio

            from ._mcp import run_stdio
            from ._service import RerankService

            asyncio.run(run_stdio(RerankService(cfg)))
            return 0
        if args.ray:
            from ._ray import serve_forever

            return serve_forever(cfg)
        return _serve_http(cfg, args.workers, args.log_level)
    except (ConfigError, MissingDependencyError) as exc:
        print(f"rerank-rag serve: {exc}", file=sys.stderr)
        return 2

