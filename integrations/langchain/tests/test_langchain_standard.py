"""LangChain's own standard retriever suite (``langchain-tests``) against our retrievers.

``RetrieversIntegrationTests`` checks ``k`` as a constructor field and as an ``invoke``
keyword (the number of documents returned), and that ``invoke`` / ``ainvoke`` return
``Document`` lists. Everything runs offline: a BM25 first stage over the test corpus and
the keyword-oracle LLM.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")
pytest.importorskip("pytest_asyncio")  # the suite's async test needs it

from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from langchain_rerank_rag import DecomposeRetriever, ListwiseRerank, RerankingRetriever  # noqa: E402
from rerank_rag import FakeLLM  # noqa: E402

# The suite mixes sync and async tests and must not be edited: mark them all for
# pytest-asyncio (strict mode) and drop its note about the marked sync ones.
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning"),
]

SUBS = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]


class _Offline:
    """Gives the standard tests an offline first stage and LLM."""

    @pytest.fixture(autouse=True)
    def _parts(self, bm25_factory, oracle) -> None:
        self._bm25 = bm25_factory
        self._llm = FakeLLM(lambda messages: oracle(messages, subquestions=SUBS))

    @property
    def retriever_query_example(self) -> str:
        return "Which river flows through the city that hosts the Louvre?"


class TestRerankingRetrieverStandard(_Offline, RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[RerankingRetriever]:
        return RerankingRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "base_retriever": self._bm25(k=6),
            "base_compressor": ListwiseRerank(llm=self._llm),
            "k": 2,
        }


class TestDecomposeRetrieverStandard(_Offline, RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[DecomposeRetriever]:
        return DecomposeRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "base_retriever": self._bm25(),
            "llm": self._llm,
            "reranker": ListwiseRerank(llm=self._llm),
            "fetch_k": 2,
            "k": 2,
        }
