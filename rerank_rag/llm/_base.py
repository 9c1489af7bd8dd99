"""The LLM seam: a tiny protocol with a sync and an async path.

A backend turns chat ``messages`` (a list of ``{"role": ..., "content": ...}``) into a
:class:`Completion`. Rankers never talk to an SDK directly; they build
:class:`LLMRequest` objects and hand them to a driver (:mod:`rerank_rag._plan`).

Parameters understood by every backend (unknown ones are passed through or ignored):

* ``max_tokens``: completion budget.
* ``temperature``: defaults to 0 in our backends.
* ``seed``: passed through where the backend supports it.
* ``top_logprobs``: ask for the top-k log-probabilities of the *first* generated token
  (returned in :attr:`Completion.top_logprobs` when the backend offers them).
* ``logit_bias``: mapping token-id -> bias, passed through.
* ``stop``: stop sequences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Message", "Completion", "LLMBackend", "LLMRequest", "normalize_messages"]

#: A chat message: ``{"role": "system"|"user"|"assistant", "content": str}``.
Message = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Completion:
    """One LLM answer.

    Attributes:
        text: the generated text ("" when the model said nothing).
        prompt_tokens / completion_tokens: token usage as reported by the backend
            (0 when unknown).
        top_logprobs: for the first generated token, ``{token_text: logprob}`` of the top
            alternatives, when requested and offered by the backend; otherwise ``None``.
        cached: True when the answer came from a response cache (no backend call).
        retries: transport retries the backend made before this answer.
        model: the model name reported by the backend, when known.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    top_logprobs: Mapping[str, float] | None = None
    cached: bool = False
    retries: int = 0
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "top_logprobs": dict(self.top_logprobs) if self.top_logprobs is not None else None,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Completion:
        """Inverse of :meth:`to_json`. A missing or ``null`` text is ``""`` (the model
        said nothing); a text of another type raises ``ValueError``."""
        text = data.get("text")
        if text is None:
            text = ""
        elif not isinstance(text, str):
            raise ValueError(f"completion text must be a string, got {type(text).__name__}")
        return cls(
            text=text,
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            top_logprobs=data.get("top_logprobs"),
            model=data.get("model"),
        )


@runtime_checkable
class LLMBackend(Protocol):
    """The seam every LLM backend implements.

    Optional attributes a backend may expose:

    * ``max_concurrency: int``: how many calls may run at once through this backend;
      drivers use it to size their thread pools (sync path).
    * ``cache_identity() -> dict``: JSON-able description of backend + model (never a
      secret) used as part of response-cache keys.
    * ``to_config() -> dict``: JSON-able configuration (never a secret), for
      serialization in framework adapters.
    """

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion: ...

    async def acomplete(self, messages: Sequence[Message], **params: Any) -> Completion: ...


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """One call a ranker wants made: chat messages plus per-call parameters."""

    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def chat(cls, messages: Sequence[Message], **params: Any) -> LLMRequest:
        return cls(messages=normalize_messages(messages), params=dict(params))


def normalize_messages(messages: Sequence[Message] | str) -> tuple[Message, ...]:
    """Accept a prompt string or a sequence of role/content mappings; validate them."""
    if isinstance(messages, str):
        return ({"role": "user", "content": messages},)
    out: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ValueError(f"message {i} must be a mapping with 'role' and 'content'")
        if not isinstance(m["content"], str):
            raise ValueError(f"message {i} content must be a string")
        out.append({"role": str(m["role"]), "content": m["content"]})
    return tuple(out)
