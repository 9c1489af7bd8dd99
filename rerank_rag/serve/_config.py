"""Service configuration: limits, API keys, and the pipelines served by ``model`` name.

A config is a TOML (``tomllib``) or YAML file (``pyyaml``), or the same structure as a
dict; ``rerank-rag serve`` flags override it. Every field has a safe default, and the
default config runs offline (see :func:`default_config`)::

    host = "127.0.0.1"            # loopback unless told otherwise
    port = 8000
    default_model = "minilm"      # used when a request has no (or an empty) model
    api_keys_env = "RERANK_RAG_API_KEYS"   # comma-separated keys; unset: no auth

    [limits]
    max_body_bytes = 8388608      # 413 above this
    max_documents = 1000          # 422 above this (Cohere's cap)
    max_query_chars = 4096
    max_tokens_per_doc = 1024     # longer documents are truncated, never rejected
    max_in_flight = 64            # 429 + Retry-After above this
    request_timeout = 30.0        # per-request deadline (504)

    [ray]                         # rerank-rag serve --ray only (see _scaling.py)
    replicas = 2                  # or [ray.autoscaling] min_replicas, max_replicas, ...
    ray_actor_options = { num_cpus = 1 }

    [cache]                       # optional response cache shared by LLM pipelines
    kind = "memory"               # or "sqlite" (with path = "...")

    [pipelines.jointrank]
    ranker = "jointrank"          # minilm, bm25, cross-encoder, bi-encoder, listwise,
                                  # jointrank, llm-pointwise, pairwise, setwise,
                                  # tournament, tdpart, or "package.module:factory"
    options = { block_size = 10, replicas = 3 }
    on_failure = "error"          # or "fallback"
    [pipelines.jointrank.llm]
    base_url = "http://127.0.0.1:8080/v1"
    model = "qwen2.5"
    api_key_env = "OPENAI_API_KEY"   # the key is read from this variable, never stored
    max_concurrency = 8

Only names of environment variables appear in a config: keys never do.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ._scaling import RayOptions
from ._validate import ConfigError, check_keys, pos_float, pos_int

__all__ = [
    "ConfigError",
    "Limits",
    "LLMSpec",
    "PipelineSpec",
    "ServeConfig",
    "default_config",
    "load_config",
]

ON_FAILURE = ("error", "fallback")


@dataclass(frozen=True)
class Limits:
    """Per-request limits (see the module docstring for the defaults' meaning)."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_documents: int = 1000
    max_query_chars: int = 4096
    max_tokens_per_doc: int = 1024
    max_in_flight: int = 64
    request_timeout: float = 30.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "request_timeout":
                pos_float(f"limits.{f.name}", value)
            else:
                pos_int(f"limits.{f.name}", value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        check_keys("limits", data, {f.name for f in fields(cls)})
        return cls(**dict(data))


@dataclass(frozen=True)
class LLMSpec:
    """The LLM behind a pipeline: an OpenAI-compatible endpoint or the local model.

    Attributes:
        base_url: ``http://host:port/v1`` of an OpenAI-compatible server.
        model: model name sent to it.
        api_key_env: name of the environment variable holding its key (the key itself
            never appears in a config).
        local: instead of ``base_url``: ``"smollm2"``, ``"qwen2.5-1.5b"`` or a GGUF path,
            served by a llama.cpp child process started on first use (extra ``local``).
        max_concurrency: calls in flight at once through the pipeline's one client.
        timeout / max_retries: per HTTP attempt, and bounded retries.
        cache: use the service's shared response cache (``[cache]``).
    """

    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    local: str | None = None
    max_concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 2
    cache: bool = False

    def __post_init__(self) -> None:
        if (self.base_url is None) == (self.local is None):
            raise ConfigError("llm: give exactly one of base_url (an OpenAI-compatible server) or local")
        if self.base_url is not None and not self.model:
            raise ConfigError("llm: model is required with base_url")
        pos_int("llm.max_concurrency", self.max_concurrency)
        pos_float("llm.timeout", self.timeout)
        pos_int("llm.max_retries", self.max_retries, 0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "llm") -> LLMSpec:
        check_keys(where, data, {f.name for f in fields(cls)})
        try:
            return cls(**dict(data))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {str(exc).removeprefix('llm: ')}") from None

    def api_key(self) -> str | None:
        """The key from ``api_key_env`` (``ConfigError`` if that variable is unset)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(
                f"the environment variable {self.api_key_env} (the LLM API key) is not set"
            )
        return key


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline: what a request's ``model`` name selects.

    Attributes:
        name: the ``model`` clients send.
        ranker: a bundled ranker name (see :data:`rerank_rag.serve.RANKERS`) or
            ``"package.module:factory"`` (called as ``factory(llm=..., **options)``).
        options: keyword arguments of the ranker (or of the scorer, for scorer pipelines).
        llm: the LLM backend, for LLM rankers.
        description: shown by ``GET /v1/models``.
        concurrency: rankings of this pipeline at once (others wait, within the request
            deadline); default 2 for local scorers, unbounded for LLM pipelines (their
            client's ``max_concurrency`` bounds the calls).
        on_failure: ``"error"``: when every LLM call of a request failed, answer 503
            instead of a ranking nobody judged; ``"fallback"``: return the ranker's
            documented fallback order (its relevance then stays below 0.5).
    """

    name: str
    ranker: str
    options: Mapping[str, Any] = field(default_factory=dict)
    llm: LLMSpec | None = None
    description: str = ""
    concurrency: int | None = None
    on_failure: str = "error"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("a pipeline needs a non-empty name")
        if not isinstance(self.ranker, str) or not self.ranker:
            raise ConfigError(f"pipeline {self.name!r}: ranker must be a non-empty string")
        if not isinstance(self.options, Mapping):
            raise ConfigError(f"pipeline {self.name!r}: options must be a table/mapping")
        if self.concurrency is not None:
            pos_int(f"pipeline {self.name!r}: concurrency", self.concurrency)
        if self.on_failure not in ON_FAILURE:
            raise ConfigError(
                f"pipeline {self.name!r}: on_failure must be one of {', '.join(ON_FAILURE)}, "
                f"got {self.on_failure!r}"
            )

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> PipelineSpec:
        where = f"pipelines.{name}"
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a table/mapping")
        check_keys(where, data, {f.name for f in fields(cls)} - {"name"})
        kw = dict(data)
        if "ranker" not in kw:
            raise ConfigError(f"{where}: ranker is required")
        if kw.get("llm") is not None:
            if not isinstance(kw["llm"], Mapping):
                raise ConfigError(f"{where}.llm must be a table/mapping")
            kw["llm"] = LLMSpec.from_dict(kw["llm"], f"{where}.llm")
        kw["options"] = dict(kw.get("options") or {})
        return cls(name=name, **kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("name")
        d["options"] = dict(self.options)
        return d


@dataclass(frozen=True)
class ServeConfig:
    """The whole service: where it listens, its limits, keys, cache and pipelines."""

    host: str = "127.0.0.1"
    port: int = 8000
    default_model: str | None = None  # None: the first pipeline
    pipelines: Mapping[str, PipelineSpec] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    api_keys_env: str | None = "RERANK_RAG_API_KEYS"
    cache: Mapping[str, Any] | None = None
    mcp: bool = False
    ray: RayOptions = field(default_factory=RayOptions)

    def __post_init__(self) -> None:
        pos_int("port", self.port, 0)
        if not self.pipelines:
            raise ConfigError("no pipeline configured")
        if self.default_model is None:
            object.__setattr__(self, "default_model", next(iter(self.pipelines)))
        if self.default_model not in self.pipelines:
            raise ConfigError(
                f"default_model {self.default_model!r} is not a configured pipeline "
                f"({', '.join(self.pipelines)})"
            )
        if self.cache is not None:
            kind = self.cache.get("kind")
            if kind not in ("memory", "sqlite"):
                raise ConfigError(f"cache.kind must be 'memory' or 'sqlite', got {kind!r}")
            if kind == "sqlite" and not self.cache.get("path"):
                raise ConfigError("cache.kind = 'sqlite' needs cache.path")
            check_keys("cache", self.cache, {"kind", "path", "max_entries"})
        target = (self.ray.autoscaling or {}).get("target_ongoing_requests")
        if target is not None and target > self.limits.max_in_flight:
            raise ConfigError(
                f"ray.autoscaling.target_ongoing_requests ({target}) exceeds limits.max_in_flight "
                f"({self.limits.max_in_flight}), the most one replica takes at once: it would never scale up"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServeConfig:
        """Build from a parsed TOML/YAML mapping; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ConfigError("the config must be a table/mapping at the top level")
        check_keys("config", data, {f.name for f in fields(cls)})
        kw = dict(data)
        pipes = kw.get("pipelines")
        if pipes is not None:
            if not isinstance(pipes, Mapping):
                raise ConfigError("pipelines must be a table/mapping of name -> pipeline")
            kw["pipelines"] = {str(n): PipelineSpec.from_dict(str(n), p) for n, p in pipes.items()}
        else:
            kw["pipelines"] = dict(default_config().pipelines)
        kw["limits"] = Limits.from_dict(kw.get("limits") or {})
        kw["ray"] = RayOptions.from_dict(kw.get("ray") or {})
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping :meth:`from_dict` reads back (used to ship the config to Ray)."""
        return {
            "host": self.host,
            "port": self.port,
            "default_model": self.default_model,
            "pipelines": {n: p.to_dict() for n, p in self.pipelines.items()},
            "limits": asdict(self.limits),
            "api_keys_env": self.api_keys_env,
            "cache": dict(self.cache) if self.cache is not None else None,
            "mcp": self.mcp,
            "ray": self.ray.to_dict(),
        }

    def with_overrides(self, **kw: Any) -> ServeConfig:
        return replace(self, **kw)

    def api_keys(self) -> tuple[str, ...]:
        """The accepted API keys (from ``api_keys_env``); empty: no authentication."""
        if not self.api_keys_env:
            return ()
        raw = os.environ.get(self.api_keys_env, "")
        return tuple(k.strip() for k in raw.split(",") if k.strip())


def _local_model_installed(name: str) -> bool:
    """Whether llama-cpp-python[server] and the named model's packages are installed
    (looked up, not imported)."""
    from ..local._models import MODELS
    from ..local._server import _SERVER_MODULES

    spec = MODELS.get(name)
    if spec is None:
        return False
    modules = list(_SERVER_MODULES) + [import_name for import_name, _ in spec.parts]
    return all(importlib.util.find_spec(m) is not None for m in dict.fromkeys(modules))


def default_config() -> ServeConfig:
    """The offline default: MiniLM pointwise (``minilm``, the default model) and, when
    the local llama.cpp model is installed, an LLM yes/no pipeline on it (``local``:
    Qwen2.5-1.5B when its packages are present, else SmolLM2-135M, which is for
    plumbing only and cannot rank)."""
    pipes: dict[str, PipelineSpec] = {
        "minilm": PipelineSpec(
            name="minilm",
            ranker="minilm",
            description="all-MiniLM-L6-v2 cosine similarity, int8 ONNX on CPU (offline)",
        )
    }
    for model in ("qwen2.5-1.5b", "smollm2"):
        if _local_model_installed(model):
            pipes["local"] = PipelineSpec(
                name="local",
                ranker="llm-pointwise",
                llm=LLMSpec(local=model, max_concurrency=1, timeout=300.0, max_retries=0),
                description=f"LLM yes/no relevance with the local llama.cpp model {model} "
                "(started on first use)",
                concurrency=1,
            )
            break
    return ServeConfig(pipelines=pipes, default_model="minilm")


def load_config(path: str | os.PathLike[str]) -> ServeConfig:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        from .._errors import require

        yaml = require("yaml", "serve", feature="a YAML config")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    else:
        raise ConfigError(f"{p}: use a .toml, .yaml or .yml file")
    try:
        return ServeConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
