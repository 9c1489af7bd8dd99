"""The ``--pipeline NAME=RANKER[,key=value...]`` flag of ``rerank-rag serve``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ._config import ConfigError, LLMSpec, PipelineSpec

__all__ = ["parse_pipeline_flag"]

_PIPELINE_KEYS = {"ranker", "description", "concurrency", "on_failure"}
_LLM_KEYS = {f.name for f in fields(LLMSpec)}


def _scalar(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_pipeline_flag(flag: str) -> PipelineSpec:
    """``NAME=RANKER[,key=value...]`` (the ``--pipeline`` flag) -> a :class:`PipelineSpec`.

    LLM keys (``base_url``, ``model``, ``api_key_env``, ``local``, ``max_concurrency``,
    ``timeout``, ``max_retries``, ``cache``) go to the LLM, ``description``,
    ``concurrency`` and ``on_failure`` to the pipeline, any other key to the ranker's
    options. Example: ``jr=jointrank,base_url=http://127.0.0.1:8080/v1,model=qwen,block_size=10``.
    """
    head, _, rest = flag.partition(",")
    name, eq, ranker = head.partition("=")
    if not eq or not name.strip() or not ranker.strip():
        raise ConfigError(f"--pipeline {flag!r}: expected NAME=RANKER[,key=value...]")
    pipe: dict[str, Any] = {"ranker": ranker.strip()}
    llm: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--pipeline {flag!r}: {item!r} is not key=value")
        key = key.strip()
        target = pipe if key in _PIPELINE_KEYS else llm if key in _LLM_KEYS else options
        target[key] = value.strip() if key in ("base_url", "model", "local", "description") else _scalar(value.strip())
    if llm:
        pipe["llm"] = llm
    pipe["options"] = options
    return PipelineSpec.from_dict(name.strip(), pipe)
