"""Question decomposition + concurrent retrieval + merge + rerank.

Ammann, Golde & Akbik (2025), "Question Decomposition for Retrieval-Augmented
Generation" (ACL SRW): an LLM splits a question into at most m standalone
sub-questions, every query (the original always included) retrieves its top-k
concurrently, the result lists are merged with de-duplication, and the pool is
reranked against the original question.

    >>> from rerank_rag import FakeLLM
    >>> from rerank_rag.decompose import Decomposer, DecomposeRetrieveRerank
    >>> from rerank_rag.retrievers import BM25Retriever
    >>> corpus = ["Paris is the capital of France.", "The Eiffel Tower is in Paris."]
    >>> llm = FakeLLM(lambda m: "1. What is the capital of France?\\n2. Where is the Eiffel Tower?")
    >>> pipe = DecomposeRetrieveRerank(BM25Retriever(corpus), None, decomposer=Decomposer(llm))
    >>> result = pipe.run("Is the Eiffel Tower in the capital of France?")
    >>> len(result.queries), len(result.candidates)
    (3, 2)

Importing this package is cheap (standard library only).
"""

from __future__ import annotations

from ._decomposer import (
    DEFAULT_PROMPT,
    GATE_PROMPT,
    Decomposer,
    Decomposition,
    dedupe_subquestions,
    parse_subquestions,
)
from ._merge import Hit, PooledCandidate, candidate_key, merge_results
from ._pipeline import (
    DecomposeRetrieveRerank,
    PipelineResult,
    RetrievalError,
    RetrievalUsage,
    SkippedQuery,
)

__all__ = [
    "Decomposer",
    "Decomposition",
    "DecomposeRetrieveRerank",
    "PipelineResult",
    "RetrievalUsage",
    "SkippedQuery",
    "RetrievalError",
    "Hit",
    "PooledCandidate",
    "merge_results",
    "candidate_key",
    "parse_subquestions",
    "dedupe_subquestions",
    "DEFAULT_PROMPT",
    "GATE_PROMPT",
]
