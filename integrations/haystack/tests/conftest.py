"""Fixtures for the Haystack adapter tests: corpus, document store, an "oracle" LLM.

Telemetry is switched off before Haystack is imported. The oracle reads the numbered
passages (``[n] text`` at the start of a line) from the prompt and ranks those
containing a keyword first, so the expected order follows from the corpus, not from the
code under test. Asked for anything else (a decomposition), it answers with the given
sub-questions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import pytest

os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"

from rerank_rag import FakeLLM
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
