"""Ray Serve scaling from config: the ``[ray]`` section (TOML or YAML) and the ``--ray``
flags become the deployment's replicas, autoscaling and actor options, and bad values
are clear errors before Ray starts. The deployment itself runs in
``tests/test_serve_cli.py`` (``rerank-rag serve --ray`` on a local Ray instance gives the
plain server's answers)."""

from __future__ import annotations

import pytest

from rerank_rag.serve import ConfigError, PipelineSpec, RayOptions, ServeConfig, load_config
from rerank_rag.serve._cli import _parser, build_config

PIPES = '[pipelines.lexical]\nranker = "bm25"\n'


def _cfg(tmp_path, text: str, suffix: str = ".toml") -> ServeConfig:
    path = tmp_path / f"serve{suffix}"
    path.write_text(text)
    return load_config(path)


def _cli(tmp_path, text: str, *flags: str) -> RayOptions:
    path = tmp_path / "cli.toml"
    path.write_text(PIPES + text)
    return build_config(_parser().parse_args(["--config", str(path), *flags])).ray


def test_ray_section_in_toml_and_yaml(tmp_path):
    fixed = _cfg(tmp_path, PIPES + "[ray]\nreplicas = 3\nray_actor_options = { num_cpus = 0.5, num_gpus = 0 }\n")
    assert fixed.ray == RayOptions(replicas=3, ray_actor_options={"num_cpus": 0.5, "num_gpus": 0})
    assert fixed.ray.deployment_options() == {"num_replicas": 3, "ray_actor_options": {"num_cpus": 0.5, "num_gpus": 0}}
    pytest.importorskip("yaml", reason="YAML configs need the serve extra")
    auto = _cfg(
        tmp_path,
        "pipelines:\n  lexical: {ranker: bm25}\n"
        "ray:\n  autoscaling: {min_replicas: 1, max_replicas: 4, target_ongoing_requests: 8}\n",
        ".yaml",
    )
    assert auto.ray.deployment_options() == {
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8}
    }
    assert auto.ray.describe() == "autoscaling, 1 to 4 replicas"
    # no section: one replica, Ray's default actor options; the config round-trips (to replicas)
    plain = _cfg(tmp_path, PIPES)
    assert plain.ray.deployment_options() == {"num_replicas": 1} and plain.ray.describe() == "1 replica"
    for cfg in (fixed, auto, plain):
        assert ServeConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[ray]\nreplicas = 0\n", "ray.replicas must be an integer >= 1, got 0"),
        ("[ray]\nreplicas = 2.5\n", "ray.replicas must be an integer"),
        ("[ray]\nreplica = 2\n", "unknown key(s) replica; allowed: autoscaling, ray_actor_options, replicas"),
        ("[ray]\nreplicas = 2\n[ray.autoscaling]\nmax_replicas = 4\n", "replicas (a fixed number) or autoscaling, not both"),
        ("[ray.autoscaling]\nmin_replicas = 2\n", "max_replicas is required"),
        ("[ray.autoscaling]\nmin_replicas = 5\nmax_replicas = 2\n", "min_replicas (5) exceeds max_replicas (2)"),
        ("[ray.autoscaling]\nmax_replicas = 2\ninitial_replicas = 3\n", "initial_replicas (3) must lie between"),
        ("[ray.autoscaling]\nmax_replicas = 2\ntarget_ongoing_requests = 0\n", "target_ongoing_requests must be a positive number"),
        ("[ray.autoscaling]\nmax_replicas = 2\ntarget = 3\n", "ray.autoscaling: unknown key(s) target"),
        ("[limits]\nmax_in_flight = 4\n[ray.autoscaling]\nmax_replicas = 2\ntarget_ongoing_requests = 8\n",
         "target_ongoing_requests (8) exceeds limits.max_in_flight (4)"),
        ("[ray.ray_actor_options]\nnum_cpus = -1\n", "ray.ray_actor_options.num_cpus must be a number >= 0"),
        ("[ray.ray_actor_options]\ncpus = 1\n", "unknown key(s) cpus; allowed: memory, num_cpus, num_gpus, resources"),
        ("[ray.ray_actor_options]\nresources = { accel = -2 }\n", "ray.ray_actor_options.resources.accel"),
        ("ray = 3\n", "ray must be a table"),
    ],
)  # fmt: skip
def test_bad_ray_section_is_a_clear_error(tmp_path, section, message):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, section + PIPES)
    assert message in str(err.value) and "serve.toml" in str(err.value)


def test_ray_flags_override_the_section(tmp_path):
    auto = "[ray]\nray_actor_options = { num_cpus = 2 }\n[ray.autoscaling]\nmin_replicas = 1\nmax_replicas = 4\n"
    # a fixed number replaces the autoscaling of the file; the actor options stay
    assert _cli(tmp_path, auto, "--ray", "--replicas", "2") == RayOptions(replicas=2, ray_actor_options={"num_cpus": 2})
    # autoscaling flags merge into the file's bounds; --num-cpus into its actor options
    got = _cli(tmp_path, auto, "--ray", "--max-replicas", "6", "--target-ongoing-requests", "5", "--num-cpus", "0.5")
    assert got.autoscaling == {"min_replicas": 1, "max_replicas": 6, "target_ongoing_requests": 5.0}
    assert got.ray_actor_options == {"num_cpus": 0.5}
    # autoscaling flags over a fixed number in the file switch to autoscaling
    got = _cli(tmp_path, "[ray]\nreplicas = 3\n", "--ray", "--min-replicas", "1", "--max-replicas", "3")
    assert got.replicas is None and got.autoscaling == {"min_replicas": 1, "max_replicas": 3}
    with pytest.raises(ConfigError, match="exclude each other"):
        _cli(tmp_path, "", "--ray", "--replicas", "2", "--max-replicas", "3")
    with pytest.raises(ConfigError, match="--replicas, --num-cpus: only with --ray"):
        _cli(tmp_path, "", "--replicas", "2", "--num-cpus", "1")
    with pytest.raises(ConfigError, match="max_replicas is required"):
        _cli(tmp_path, "", "--ray", "--min-replicas", "2")
    with pytest.raises(ConfigError, match="--workers is for uvicorn"):
        _cli(tmp_path, "", "--ray", "--workers", "2")


def test_deployment_carries_the_options():
    pytest.importorskip("ray.serve", reason="needs the ray extra")
    from rerank_rag.serve import ray_deployment

    cfg = ServeConfig(
        pipelines={"lexical": PipelineSpec("lexical", "bm25")},
        ray=RayOptions(replicas=2, ray_actor_options={"num_cpus": 0.5}),
    )
    dep = ray_deployment(cfg)._bound_deployment
    assert dep.num_replicas == 2 and dep.ray_actor_options["num_cpus"] == 0.5
    assert dep.max_ongoing_requests == cfg.limits.max_in_flight  # the replica answers 429, not Ray's queue
    assert dep._deployment_config.graceful_shutdown_timeout_s == cfg.limits.request_timeout + 5.0
    # keywords replace the section's scaling and are checked like it
    dep = ray_deployment(cfg, autoscaling_config={"min_replicas": 1, "max_replicas": 3})._bound_deployment
    auto = dep._deployment_config.autoscaling_config
    assert (auto.min_replicas, auto.max_replicas) == (1, 3) and dep.ray_actor_options["num_cpus"] == 0.5
    with pytest.raises(ConfigError, match="min_replicas"):
        ray_deployment(cfg, autoscaling_config={"min_replicas": 4, "max_replicas": 3})
