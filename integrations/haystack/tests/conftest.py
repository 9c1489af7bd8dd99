"""Fixtures for the Haystack adapter tests: corpus, document store, an "oracle" LLM.

Telemetry is switched off before Haystack is imported. The oracle reads the numbered
passages (``[n] text`` at the start of a line) from the prompt and ranks those
containing a keyword first, so the expected order follows from the corpus, not from the
code under test. Asked for anything else (a decomposition), it answers with the given
sub-questions.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence

import pytest

os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"

from rerank_rag import FakeLLM  # noqa: E402
from rerank_rag.testing import keyword_oracle  # noqa: E402

CORPUS = [
    ("d0", "Paris is the capital of France and its largest city; Paris hosts the Louvre."),
    ("d1", "Paris, a city of museums: many visitors come to Paris each year."),
    ("d2", "The Seine is a river that crosses the French capital."),
    ("d3", "Berlin is the capital of Germany; the Spree flows through it."),
    ("d4", "Rome is the capital of Italy; the Tiber flows through Rome."),
    ("d5", "Madrid is the capital of Spain and sits on the Manzanares."),
]
KEYWORD = "seine"


def oracle_text(messages: Sequence[dict], keyword: str = KEYWORD, subquestions: Sequence[str] = ()) -> str:
    return keyword_oracle(messages, keyword, subquestions)


@pytest.fixture
def oracle() -> Callable[..., str]:
    return oracle_text


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM(lambda messages: oracle_text(messages))


@pytest.fixture
def documents():
    """Documents in a first-stage order that puts the Seine passage 3rd."""
    from haystack import Document

    text = dict(CORPUS)
    order = ["d3", "d4", "d2", "d0", "d1", "d5"]
    return [Document(id=i, content=text[i], meta={"src": i}, score=1.0 - r / 10) for r, i in enumerate(order)]


@pytest.fixture
def corpus_docs():
    from haystack import Document

    return [Document(id=i, content=t) for i, t in CORPUS]


@pytest.fixture
def store(corpus_docs):
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    s = InMemoryDocumentStore()
    s.write_documents(corpus_docs)
    return s


def _run_async(build, inputs):
    from haystack import Pipeline

    if hasattr(Pipeline, "run_async"):
        return asyncio.run(build(Pipeline).run_async(inputs))
    from haystack import AsyncPipeline

    return asyncio.run(build(AsyncPipeline).run_async(inputs))


@pytest.fixture
def run_async():
    """``run_async(build, inputs)``: run ``build(pipeline_class)`` asynchronously with
    ``Pipeline.run_async`` (Haystack 3) or ``AsyncPipeline.run_async`` (Haystack 2)."""
    return _run_async


@pytest.fixture
def oracle_generator():
    """A Haystack ChatGenerator component answering like the oracle that records its
    lifecycle calls (``events``); works on Haystack 2 and 3."""
    from haystack import component
    from haystack.dataclasses import ChatMessage

    @component
    class OracleChatGenerator:
        def __init__(self, subquestions: list[str] | None = None) -> None:
            self.subquestions = list(subquestions or [])
            self.events: list[str] = []

        def warm_up(self) -> None:
            self.events.append("warm_up")

        async def warm_up_async(self) -> None:
            self.events.append("warm_up_async")

        def close(self) -> None:
            self.events.append("close")

        async def close_async(self) -> None:
            self.events.append("close_async")

        @component.output_types(replies=list[ChatMessage])
        def run(self, messages: list[ChatMessage]) -> dict:
            text = oracle_text([{"content": m.text} for m in messages], subquestions=self.subquestions)
            return {"replies": [ChatMessage.from_assistant(text)]}

    return OracleChatGenerator


@pytest.fixture
def mock_chat_generator():
    """Haystack's ``MockChatGenerator`` (Haystack 3; skipped on 2.x, which has none)."""
    from haystack.components.generators import chat

    if not hasattr(chat, "MockChatGenerator"):
        pytest.skip("MockChatGenerator needs haystack-ai 3")
    return chat.MockChatGenerator
