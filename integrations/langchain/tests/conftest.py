"""Fixtures for the LangChain adapter tests: a small corpus and an "oracle" LLM.

The oracle reads the numbered passages (``[n] text`` at the start of a line) from the
prompt and ranks those containing a keyword first, so the expected order follows from
the corpus, not from the code under test. Asked for anything else (a decomposition), it
answers with the given sub-questions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from rerank_rag import FakeLLM
from rerank_rag.testing import keyword_oracle

CORPUS = [
    ("d0", "Paris is the capital of France and its largest city; Paris hosts the Louvre."),
    ("d1", "Paris, a city of museums: many visitors come to Paris each year."),
    ("d2", "The Seine is a river that crosses the French capital."),
    ("d3", "Berlin is the capital of Germany; the Spree flows through it."),
    ("d4", "Rome is the capital of Italy; the Tiber flows through Rome."),
    ("d5", "Madrid is the capital of Spain and sits on the Manzanares."),
]
QUERY = "Which river flows through Paris?"
KEYWORD = "seine"


def oracle_text(messages: Sequence[dict], keyword: str = KEYWORD, subquestions: Sequence[str] = ()) -> str:
    return keyword_oracle(messages, keyword, subquestions)


@pytest.fixture
def corpus() -> list[tuple[str, str]]:
    return list(CORPUS)


@pytest.fixture
def oracle() -> Callable[..., str]:
    return oracle_text


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM(lambda messages: oracle_text(messages))


def make_bm25_retriever(k: int = 4):
    """A LangChain BaseRetriever over CORPUS backed by rerank-rag's in-memory BM25.

    Like LangChain's own retrievers it takes ``k`` at construction and per call
    (``invoke(q, k=2)``); ``calls`` records every query it received.
    """
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from rerank_rag.retrievers import BM25Retriever

    index = BM25Retriever([{"text": t, "id": i} for i, t in CORPUS])

    class BM25MemoryRetriever(BaseRetriever):
        k: int = 4
        calls: list = []

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
        ) -> list[Document]:
            self.calls.append(query)
            if not query.strip():  # like a vector store: any string gets an answer
                return [Document(page_content=t, id=i) for i, t in CORPUS[: k or self.k]]
            return [
                Document(page_content=c.text, id=c.id, metadata={"source": c.id, "bm25": c.score})
                for c in index.search(query, k or self.k)
            ]

        async def _aget_relevant_documents(
            self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
            k: int | None = None,
        ) -> list[Document]:
            return self._get_relevant_documents(query, run_manager=run_manager, k=k)

    return BM25MemoryRetriever(k=k)


@pytest.fixture
def bm25_retriever():
    return make_bm25_retriever()


@pytest.fixture
def oracle_chat_model():
    """A LangChain chat model (SimpleChatModel subclass) answering like the oracle."""
    from langchain_core.language_models import SimpleChatModel

    class OracleChatModel(SimpleChatModel):
        subquestions: list[str] = []

        @property
        def _llm_type(self) -> str:
            return "oracle-chat"

        def _call(self, messages, stop=None, run_manager=None, **kwargs) -> str:
            msgs = [{"content": m.text} for m in messages]
            return oracle_text(msgs, subquestions=self.subquestions)

    return OracleChatModel


@pytest.fixture
def bm25_factory():
    """``make_bm25_retriever`` for tests that build retrievers themselves."""
    return make_bm25_retriever
