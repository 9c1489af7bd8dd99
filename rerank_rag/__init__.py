"""rerank-rag: better context for RAG apps.

Rankers take a query and candidates and return a :class:`Ranking` of positions
(indices into the input) with scores and usage. The core is framework-free and cheap to
import: heavy modules (openai, numpy, models, frameworks) load only when used.

    >>> from rerank_rag import ListwiseRanker, FakeLLM
    >>> ranker = ListwiseRanker(FakeLLM(lambda messages: "[2] > [1]"))
    >>> ranker.rank("capital of France?", ["Berlin is ...", "Paris is ..."]).order
    (1, 0)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    CacheError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
    MissingDependencyError,
    ParseError,
    RankingFailedError,
    RerankRagError,
)
from ._protocols import Scorer, WindowParse, WindowPrompt
from ._types import Candidate, CandidateLike, Ranker, Ranking, Usage, as_candidates
from .llm._base import Completion, LLMBackend, LLMRequest
from .llm._fake import FakeLLM

__version__ = "0.2.0"

# Lazily imported public names: attribute -> defining module.
_LAZY: dict[str, str] = {
    # LLM backends
    "OpenAICompatibleLLM": "rerank_rag.llm._openai",
    "RetryPolicy": "rerank_rag.llm._retry",
    "MemoryCache": "rerank_rag.llm._cache",
    "SQLiteCache": "rerank_rag.llm._cache",
    "CachedLLM": "rerank_rag.llm._cache",
    "as_backend": "rerank_rag.llm._adapt",
    # listwise
    "ListwiseRanker": "rerank_rag.listwise",
    "RankGPTPrompt": "rerank_rag.listwise",
    "RelevantOnlyPrompt": "rerank_rag.listwise",
    "FirstTokenPrompt": "rerank_rag.listwise",
    "parse_permutation": "rerank_rag.listwise",
    "window_spans": "rerank_rag.listwise",
    "get_prompt": "rerank_rag.listwise",
    # JointRank
    "JointRanker": "rerank_rag.jointrank",
    # pairwise, setwise, tournament, top-down partitioning
    "PairwiseRanker": "rerank_rag.pairwise",
    "SetwiseRanker": "rerank_rag.setwise",
    "PickBestPrompt": "rerank_rag.setwise",
    "TourRanker": "rerank_rag.tournament",
    "TDPartRanker": "rerank_rag.tdpart",
    # composable wrappers over any ranker
    "DynamicCutoff": "rerank_rag.compose",
    "FirstStageFusion": "rerank_rag.compose",
    "FirstStageEvidence": "rerank_rag.compose",
    # pointwise
    "PointwiseRanker": "rerank_rag.pointwise",
    "BM25Scorer": "rerank_rag.pointwise",
    "CrossEncoderScorer": "rerank_rag.pointwise",
    "BiEncoderScorer": "rerank_rag.pointwise",
    "MiniLMScorer": "rerank_rag.pointwise",
    "LLMPointwiseRanker": "rerank_rag.pointwise",
    # question decomposition
    "Decomposer": "rerank_rag.decompose",
    "DecomposeRetrieveRerank": "rerank_rag.decompose",
    "RetrievalError": "rerank_rag.decompose",
    # local model server (extra: local)
    "LocalLLMServer": "rerank_rag.local._server",
    # first stage
    "BM25Retriever": "rerank_rag.retrievers",
    "as_retriever": "rerank_rag.retrievers",
}

__all__ = [
    "Candidate",
    "CandidateLike",
    "Completion",
    "FakeLLM",
    "LLMBackend",
    "LLMRequest",
    "Ranker",
    "Ranking",
    "Scorer",
    "Usage",
    "WindowParse",
    "WindowPrompt",
    "as_candidates",
    "CacheError",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMServerError",
    "LLMTimeoutError",
    "MissingDependencyError",
    "ParseError",
    "RankingFailedError",
    "RerankRagError",
    *_LAZY,
]

if TYPE_CHECKING:  # pragma: no cover
    from .compose import DynamicCutoff, FirstStageEvidence, FirstStageFusion
    from .decompose import DecomposeRetrieveRerank, Decomposer, RetrievalError
    from .jointrank import JointRanker
    from .listwise import (
        FirstTokenPrompt,
        ListwiseRanker,
        RankGPTPrompt,
        RelevantOnlyPrompt,
        get_prompt,
        parse_permutation,
        window_spans,
    )
    from .llm._adapt import as_backend
    from .llm._cache import CachedLLM, MemoryCache, SQLiteCache
    from .llm._openai import OpenAICompatibleLLM
    from .llm._retry import RetryPolicy
    from .local._server import LocalLLMServer
    from .pairwise import PairwiseRanker
    from .setwise import PickBestPrompt, SetwiseRanker
    from .tdpart import TDPartRanker
    from .tournament import TourRanker
    from .retrievers import BM25Retriever, as_retriever
    from .pointwise import (
        BiEncoderScorer,
        BM25Scorer,
        CrossEncoderScorer,
        LLMPointwiseRanker,
        MiniLMScorer,
        PointwiseRanker,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rerank_rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
