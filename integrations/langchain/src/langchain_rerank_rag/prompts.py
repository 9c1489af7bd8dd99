"""Prompts for the LangChain presets: a LangChain prompt template as a window prompt.

A ``ChatPromptTemplate`` (or any ``BasePromptTemplate``) with the variables ``query`` and
``passages`` (and optionally ``n``, the number of passages) becomes a
:class:`~rerank_rag.WindowPrompt`: ``passages`` is filled with one ``[i] text`` line per
passage and the answer is read with :func:`rerank_rag.listwise.parse_permutation` (ids
in brackets, best first; passages the model leaves out keep their previous order).
Prompt objects with ``build`` / ``parse`` (dataclasses, pydantic models, ...) and prompt
names are passed to the core unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.prompts import BasePromptTemplate

from rerank_rag import LLMRequest
from rerank_rag._text import prepare_passage
from rerank_rag.listwise import parse_permutation

__all__ = ["TemplatePrompt", "as_window_prompt"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


class TemplatePrompt:
    """A LangChain prompt template as a rerank-rag window prompt.

    Args:
        template: a ``BasePromptTemplate`` whose input variables are ``query``,
            ``passages`` and optionally ``n``.
        max_passage_tokens: truncation budget per passage (``None``: no truncation).
    """

    name = "langchain-template"

    def __init__(
        self, template: BasePromptTemplate, *, max_passage_tokens: int | None = 300
    ) -> None:
        variables = set(template.input_variables)
        if not {"query", "passages"} <= variables or variables - {"query", "passages", "n"}:
            raise ValueError(
                "a prompt template must have the variables 'query' and 'passages' (and "
                f"optionally 'n'), got {sorted(variables)}"
            )
        self.template = template
        self.max_passage_tokens = max_passage_tokens
        self._takes_n = "n" in variables

    def build(self, query: str, passages: Sequence[str]) -> LLMRequest:
        budget = self.max_passage_tokens
        lines = "\n".join(f"[{i}] {prepare_passage(p, budget)}" for i, p in enumerate(passages, 1))
        values: dict[str, Any] = {"query": query, "passages": lines}
        if self._takes_n:
            values["n"] = len(passages)
        messages = [
            {"role": _ROLES.get(m.type, "user"), "content": m.text}
            for m in self.template.format_messages(**values)
        ]
        return LLMRequest.chat(messages, max_tokens=4 * len(passages) + 16)

    def parse(self, completion: Any, n: int, *, strict: bool = False) -> Any:
        return parse_permutation(completion.text, n, strict=strict, expect_all=False)


def as_window_prompt(prompt: Any) -> Any:
    """A prompt template becomes a :class:`TemplatePrompt`; anything else is unchanged."""
    return TemplatePrompt(prompt) if isinstance(prompt, BasePromptTemplate) else prompt
