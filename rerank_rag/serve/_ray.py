"""Ray Serve: the same ASGI app as a deployment (replicas, autoscaling) — extra ``ray``.

The app is stateless, so Ray Serve can run it in any number of replicas behind its
HTTP proxy: :func:`deployment` wraps :func:`~rerank_rag.serve.create_app` with
``serve.ingress`` (the app is built inside each replica from the config, so models load
there), and :func:`serve_forever` is what ``rerank-rag serve --ray`` runs. From Python::

    from ray import serve
    from rerank_rag.serve import default_config, ray_deployment

    serve.run(ray_deployment(default_config(), replicas=2), route_prefix="/")

Replicas, autoscaling and per-replica resources come from the config's ``[ray]``
section (:class:`~rerank_rag.serve.RayOptions`), or as keywords::

    ray_deployment(cfg, autoscaling_config={"min_replicas": 1, "max_replicas": 4,
                                            "target_ongoing_requests": 8},
                   ray_actor_options={"num_cpus": 1})

Each replica applies the service limits on its own (``max_in_flight`` is per replica);
Ray's ``max_ongoing_requests`` is set to the same bound so the replica, not Ray's queue,
decides when to answer 429, and a stopping replica drains its requests for up to
``request_timeout`` + 5 s, like the plain server on SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .._errors import require
from ._config import ServeConfig

__all__ = ["deployment", "serve_forever"]


def deployment(
    config: ServeConfig,
    *,
    replicas: int | None = None,
    autoscaling_config: Mapping[str, Any] | None = None,
    ray_actor_options: Mapping[str, Any] | None = None,
    name: str = "rerank-rag",
) -> Any:
    """A bound Ray Serve application serving ``config`` (pass it to ``serve.run``).

    Replicas, autoscaling and actor options come from ``config.ray`` (the ``[ray]``
    section); ``replicas`` or ``autoscaling_config`` replace its scaling, and
    ``ray_actor_options`` its actor options. All are checked like the config file
    (``ConfigError`` naming the field)."""
    options = config.ray
    if replicas is not None or autoscaling_config is not None:
        options = replace(options, replicas=replicas, autoscaling=autoscaling_config)
    if ray_actor_options is not None:
        options = replace(options, ray_actor_options=ray_actor_options)
    require("ray", "ray", feature="rerank-rag serve --ray")
    from ray import serve

    data = replace(config, ray=options).to_dict()

    def build_app() -> Any:  # runs inside each replica
        from rerank_rag.serve._app import create_app
        from rerank_rag.serve._config import ServeConfig

        return create_app(ServeConfig.from_dict(data))

    ingress_cls = serve.ingress(build_app)(type("RerankRagDeployment", (), {}))
    return serve.deployment(
        name=name,
        max_ongoing_requests=config.limits.max_in_flight,
        graceful_shutdown_timeout_s=config.limits.request_timeout + 5.0,  # drain like uvicorn
        **options.deployment_options(),
    )(ingress_cls).bind()


def serve_forever(config: ServeConfig) -> int:
    """What ``rerank-rag serve --ray`` runs: start Ray (a local instance, or the cluster
    named by ``RAY_ADDRESS``), deploy ``config`` with its ``[ray]`` options, and block
    until SIGINT/SIGTERM; then delete the deployment and stop Ray (a local instance
    started here ends with it: no Ray process outlives the command)."""
    ray = require("ray", "ray", feature="rerank-rag serve --ray")
    from ray import serve

    app = deployment(config)  # checks the options before Ray starts
    stop = threading.Event()
    try:
        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which sets its own
            signal.signal(sig, lambda *_: stop.set())
        serve.start(http_options={"host": config.host, "port": config.port})
        serve.run(app, name="rerank-rag", route_prefix="/")
        print(
            f"rerank-rag serve on Ray Serve: http://{config.host}:{config.port} ({config.ray.describe()})",
            flush=True,
        )
        stop.wait()
    finally:
        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
    return 0
