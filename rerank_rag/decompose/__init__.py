"""Question decomposition + concurrent retrieval + merge + rerank.

Ammann, Golde & Akbik (2025), "Question Decomposition for Retrieval-Augmented
Generation" (ACL SRW): an LLM splits a question into at most m standalone
sub-questions, every query (the original always included) retrieves its top-k
concurrently, the result lists are merged with de-duplication, and the pool is
reranked against the original question (one pass, failures recorded on the way:
see :mod:`rerank_rag.decompose._pipeline`).

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
    DEFAULT_MAX_SUBQUESTIONS,
    DEFAULT_PROMPT,
    GATE_PROMPT,
    Decomposer,
    Decomposition,
)
from ._merge import Hit, PooledCandidate, candidate_key, merge_results, passage_text_key
from ._parse import dedupe_subquestions, parse_subquestions, question_key
from ._pipeline import DecomposeRetrieveRerank, RetrievalError
from ._result import PipelineResult, RetrievalUsage, SkippedQuery, StageFailure

__all__ = [
    "Decomposer",
    "Decomposition",
    "DecomposeRetrieveRerank",
    "PipelineResult",
    "RetrievalUsage",
    "StageFailure",
    "SkippedQuery",
    "RetrievalError",
    "Hit",
    "PooledCandidate",
    "merge_results",
    "candidate_key",
    "passage_text_key",
    "question_key",
    "parse_subquestions",
    "dedupe_subquestions",
    "DEFAULT_PROMPT",
    "GATE_PROMPT",
    "DEFAULT_MAX_SUBQUESTIONS",
]
