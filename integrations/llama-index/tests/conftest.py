"""Fixtures for the LlamaIndex adapter tests: corpus, nodes, an "oracle" LLM, a BM25 retriever.

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
def nodes():
    """NodeWithScore list in a first-stage order that puts the Seine passage 3rd."""
    from llama_index.core.schema import NodeWithScore, TextNode

    order = ["d3", "d4", "d2", "d0", "d1", "d5"]
    text = dict(CORPUS)
    return [
        NodeWithScore(node=TextNode(id_=i, text=text[i], metadata={"src": i}), score=1.0 - r / 10)
        for r, i in enumerate(order)
    ]


@pytest.fixture
def bm25_retriever():
    """A LlamaIndex BaseRetriever over CORPUS backed by rerank-rag's in-memory BM25."""
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_rag.retrievers import BM25Retriever

    index = BM25Retriever([{"text": t, "id": i} for i, t in CORPUS])

    class BM25MemoryRetriever(BaseRetriever):
        def __init__(self, k: int = 4) -> None:
            super().__init__()
            self.k = k
            self.calls: list[str] = []

        def _retrieve(self, query_bundle):
            self.calls.append(query_bundle.query_str)
            return [
                NodeWithScore(node=TextNode(id_=c.id, text=c.text), score=c.score)
                for c in index.search(query_bundle.query_str, self.k)
            ]

    return BM25MemoryRetriever()


@pytest.fixture
def oracle_llm_cls():
    """A LlamaIndex CustomLLM answering like the oracle (its own LLM object path)."""
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback

    class OracleLLM(CustomLLM):
        subquestions: list[str] = []

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="oracle")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
            return CompletionResponse(text=oracle_text([{"content": prompt}], subquestions=self.subquestions))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            yield self.complete(prompt)

    return OracleLLM
