"""The ``[ray]`` section of the serve config: a fixed number of Ray Serve replicas or
autoscaling bounds, and the resources each replica reserves. Used by
``rerank-rag serve --ray`` and :func:`~rerank_rag.serve.ray_deployment`; the plain
server ignores it. Checked here, without importing Ray, so a bad value fails at startup
with a message naming the field::

    [ray]
    replicas = 2                         # a fixed number of replicas (default 1), or:
    [ray.autoscaling]                    # between min_replicas and max_replicas, aiming at
    min_replicas = 1                     # target_ongoing_requests per replica
    max_replicas = 4
    target_ongoing_requests = 8
    [ray.ray_actor_options]              # what each replica reserves on the Ray cluster
    num_cpus = 1
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._validate import ConfigError, check_keys, nonneg_float, pos_float, pos_int

__all__ = ["RayOptions"]


def _count(minimum: int) -> Callable[[str, Any], Any]:
    return lambda where, value: pos_int(where, value, minimum)


#: Autoscaling keys (Ray Serve's ``autoscaling_config``) and their checks.
AUTOSCALING_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "min_replicas": _count(0),
    "initial_replicas": _count(0),
    "max_replicas": _count(1),
    "target_ongoing_requests": pos_float,
    "upscale_delay_s": nonneg_float,
    "downscale_delay_s": nonneg_float,
    "metrics_interval_s": pos_float,
    "look_back_period_s": pos_float,
}


def _resources(where: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table/mapping of resource name -> amount")
    return {str(k): nonneg_float(f"{where}.{k}", v) for k, v in value.items()}


#: ``ray_actor_options`` keys (per replica) and their checks.
ACTOR_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "num_cpus": nonneg_float,
    "num_gpus": nonneg_float,
    "memory": _count(1),
    "resources": _resources,
}


def _checked(
    where: str, data: Any, checks: Mapping[str, Callable[[str, Any], Any]]
) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table/mapping")
    check_keys(where, data, set(checks))
    for key, value in data.items():
        checks[key](f"{where}.{key}", value)
    return dict(data)


@dataclass(frozen=True)
class RayOptions:
    """How ``rerank-rag serve --ray`` deploys the app on Ray Serve.

    Attributes:
        replicas: a fixed number of replicas; with neither this nor ``autoscaling``, 1.
        autoscaling: Ray Serve autoscaling bounds instead (``min_replicas``,
            ``max_replicas``, ``target_ongoing_requests``, ``initial_replicas``, and the
            ``*_delay_s`` / ``*_period_s`` timings); ``max_replicas`` is required.
        ray_actor_options: per replica: ``num_cpus``, ``num_gpus``, ``memory`` (bytes),
            ``resources`` (custom resource name -> amount).
    """

    replicas: int | None = None
    autoscaling: Mapping[str, Any] | None = None
    ray_actor_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.replicas is not None and self.autoscaling is not None:
            raise ConfigError("ray: give replicas (a fixed number) or autoscaling, not both")
        if self.replicas is not None:
            pos_int("ray.replicas", self.replicas)
        if self.autoscaling is not None:
            auto = _checked("ray.autoscaling", self.autoscaling, AUTOSCALING_KEYS)
            if "max_replicas" not in auto:
                raise ConfigError("ray.autoscaling: max_replicas is required")
            low, high = auto.get("min_replicas", 1), auto["max_replicas"]
            if low > high:
                raise ConfigError(
                    f"ray.autoscaling: min_replicas ({low}) exceeds max_replicas ({high})"
                )
            start = auto.get("initial_replicas")
            if start is not None and not low <= start <= high:
                raise ConfigError(
                    f"ray.autoscaling: initial_replicas ({start}) must lie between "
                    f"min_replicas ({low}) and max_replicas ({high})"
                )
            object.__setattr__(self, "autoscaling", auto)
        object.__setattr__(
            self,
            "ray_actor_options",
            _checked("ray.ray_actor_options", self.ray_actor_options, ACTOR_KEYS),
        )

    @classmethod
    def from_dict(cls, data: Any) -> RayOptions:
        if not isinstance(data, Mapping):
            raise ConfigError("ray must be a table/mapping")
        check_keys("ray", data, {"replicas", "autoscaling", "ray_actor_options"})
        return cls(
            replicas=data.get("replicas"),
            autoscaling=data.get("autoscaling"),
            ray_actor_options=data.get("ray_actor_options") or {},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "autoscaling": dict(self.autoscaling) if self.autoscaling is not None else None,
            "ray_actor_options": dict(self.ray_actor_options),
        }

    def deployment_options(self) -> dict[str, Any]:
        """The keyword arguments of ``serve.deployment`` these options stand for."""
        options: dict[str, Any] = {}
        if self.autoscaling is not None:
            options["autoscaling_config"] = dict(self.autoscaling)
        else:
            options["num_replicas"] = self.replicas or 1
        if self.ray_actor_options:
            options["ray_actor_options"] = dict(self.ray_actor_options)
        return options

    def describe(self) -> str:
        """``"2 replicas"`` or ``"autoscaling, 1 to 4 replicas"`` (for the startup line)."""
        if self.autoscaling is not None:
            low = self.autoscaling.get("min_replicas", 1)
            return f"autoscaling, {low} to {self.autoscaling['max_replicas']} replicas"
        n = self.replicas or 1
        return f"{n} replica{'s' if n != 1 else ''}"
