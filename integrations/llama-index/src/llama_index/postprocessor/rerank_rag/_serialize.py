"""LLM configuration in ``to_dict`` / ``from_dict``: never a credential.

* a LlamaIndex LLM: its own ``to_dict()`` without credential fields, plus ``type`` (the
  import path); restored with ``llama_index.core.llms.loading.load_llm`` or, for other
  ``llama_index.*`` classes, that class's ``from_dict``;
* rerank-rag's ``OpenAICompatibleLLM``: its ``to_config()`` (the key is read from
  ``OPENAI_API_KEY`` again when it is rebuilt);
* anything else is described (``type``) but cannot be rebuilt: pass ``llm=`` to
  ``from_dict``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from llama_index.core.base.llms.base import BaseLLM

__all__ = ["llm_to_dict", "llm_from_dict"]

_OPENAI = "openai-compatible"
_SECRETS = ("key", "_token", "secret", "password", "authorization", "credentials")


def _type(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _public(value: Any) -> Any:
    """``value`` without mapping entries whose name looks like a credential."""
    if isinstance(value, Mapping):
        return {k: _public(v) for k, v in value.items() if not str(k).lower().endswith(_SECRETS)}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def llm_to_dict(llm: Any) -> dict[str, Any] | None:
    """A JSON-able description of ``llm`` (``None`` stays ``None``: ``Settings.llm``)."""
    if llm is None:
        return None
    if isinstance(llm, BaseLLM):
        return {**_public(llm.to_dict()), "type": _type(llm)}
    to_config = getattr(llm, "to_config", None)
    config = to_config() if callable(to_config) else None
    if isinstance(config, Mapping) and config.get("type") == _OPENAI:
        return dict(config)
    return {"type": _type(llm), "restorable": False}


def llm_from_dict(data: Any) -> Any:
    """Inverse of :func:`llm_to_dict`; anything that is not a dict is returned as is."""
    if not isinstance(data, Mapping):
        return data
    if data.get("type") == _OPENAI:
        from rerank_rag.llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM.from_config(data)
    fields = {k: v for k, v in data.items() if k != "type"}
    if "class_name" in data:
        from llama_index.core.llms.loading import RECOGNIZED_LLMS, load_llm

        if data["class_name"] in RECOGNIZED_LLMS:
            return load_llm(fields)
        module, _, name = str(data.get("type", "")).rpartition(".")
        if module == "llama_index" or module.startswith("llama_index."):
            cls = getattr(importlib.import_module(module), name, None)
            if isinstance(cls, type) and issubclass(cls, BaseLLM):
                return cls.from_dict(fields)
    raise ValueError(
        f"cannot rebuild the LLM {data.get('type')!r} from its description: pass it to "
        "from_dict(data, llm=...)"
    )
