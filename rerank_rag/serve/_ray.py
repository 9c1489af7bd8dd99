"""Ray Serve: the same ASGI app as a deployment (replicas, autoscaling) — extra ``ray``.

The app is stateless, so Ray Serve can run it in any number of replicas behind its
HTTP proxy: :func:`deployment` wraps :func:`~rerank_rag.serve.create_app` with
``serve.ingress`` (the app is built inside each replica from the config, so models load
there), and :func:`serve_forever` is what ``rerank-rag serve --ray`` runs. From Python::

    from ray import serve
    from rerank_rag.serve import default_config, ray_deployment

    serve.run(ray_deployment(default_config(), replicas=2), route_prefix="/")

or with autoscaling::

    ray_deployment(cfg, autoscaling_config={"min_replicas": 1, "max_replicas": 4,
                                            "target_ongoing_requests": 8})

Each replica applies the service limits on its own (``max_in_flight`` is per replica);
Ray's ``max_ongoing_requests`` is set to the same bound so the replica, not Ray's queue,
decides when to answer 429.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from typing import Any

from .._errors import require
from ._config import ServeConfig

__all__ = ["deployment", "serve_forever"]


def deployment(
    config: ServeConfig,
    *,
    replicas: int = 1,
    autoscaling_config: Mapping[str, Any] | None = None,
    ray_actor_options: Mapping[str, Any] | None = None,
    name: str = "rerank-rag",
) -> Any:
    """A bound Ray Serve application serving ``config`` (pass it to ``serve.run``)."""
    require("ray", "ray", feature="rerank-rag serve --ray")
    from ray import serve

    data = config.to_dict()

    def build_app() -> Any:  # runs inside each replica
        from rerank_rag.serve._app import create_app
        from rerank_rag.serve._config import ServeConfig

        return create_app(ServeConfig.from_dict(data))

    options: dict[str, Any] = {"name": name, "max_ongoing_requests": config.limits.max_in_flight}
    if autoscaling_config is not None:
        options["autoscaling_config"] = dict(autoscaling_config)
    else:
        options["num_replicas"] = replicas
    if ray_actor_options is not None:
        options["ray_actor_options"] = dict(ray_actor_options)
    ingress_cls = serve.ingress(build_app)(type("RerankRagDeployment", (), {}))
    return serve.deployment(**options)(ingress_cls).bind()


def serve_forever(config: ServeConfig, *, replicas: int = 1) -> int:
    """Start Ray (locally unless already connected), deploy, and block until SIGINT/SIGTERM."""
    ray = require("ray", "ray", feature="rerank-rag serve --ray")
    from ray import serve

    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(deployment(config, replicas=replicas), name="rerank-rag", route_prefix="/")
    print(f"rerank-rag serve on Ray Serve: http://{config.host}:{config.port} ({replicas} replica(s))", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 0
