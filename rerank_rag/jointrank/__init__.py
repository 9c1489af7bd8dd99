"""JointRank: rank many candidates in one parallel round of overlapping blocks.

    >>> from rerank_rag import FakeLLM
    >>> from rerank_rag.jointrank import JointRanker
    >>> def answer(messages):  # a stand-in LLM: the snippet about Paris is the best
    ...     return "[1] > [2]" if "[1] Paris" in messages[-1]["content"] else "[2] > [1]"
    >>> ranker = JointRanker(FakeLLM(answer), block_size=2, replicas=1)
    >>> ranker.rank("capital of France?", ["Berlin is ...", "Paris is ..."]).order
    (1, 0)

Building blocks, all public:

* designs (:mod:`._designs`): :class:`EquiReplicateDesign`, :class:`ReplicateDesign`,
  :class:`LatinSquareDesign`, :class:`TriangularDesign`, :class:`RandomDesign`,
  :class:`AutoDesign` / :func:`auto_design`, :func:`coverage_stats`,
  :func:`is_connected`, :func:`repair_connectivity`;
* comparisons (:mod:`._comparisons`): :class:`Comparisons`, :func:`block_comparisons`;
* aggregators (:mod:`._aggregators`): :func:`pagerank`, :func:`win_rate`,
  :func:`borda`, :func:`copeland`, :func:`bradley_terry`, :func:`elo`,
  :data:`AGGREGATORS`, :data:`DEFAULT_AGGREGATOR` (Borda), :func:`order_from_scores`;
* simulation (:mod:`._simulate`, ``rerank-rag simulate``): :func:`simulate`,
  :func:`perfect_block_ranker`, :func:`noisy_block_ranker`.

Importing this package loads no third-party module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._aggregators import (
    AGGREGATORS,
    DEFAULT_AGGREGATOR,
    Aggregator,
    borda,
    bradley_terry,
    copeland,
    elo,
    get_aggregator,
    order_from_scores,
    pagerank,
    win_rate,
)
from ._comparisons import BlockRanking, Comparisons, block_comparisons
from ._designs import (
    DESIGNS,
    AutoDesign,
    BlockDesign,
    Coverage,
    EquiReplicateDesign,
    LatinSquareDesign,
    RandomDesign,
    ReplicateDesign,
    TriangularDesign,
    auto_design,
    connected_components,
    coverage_stats,
    get_design,
    is_connected,
    repair_connectivity,
)
from ._ranker import JointRanker

if TYPE_CHECKING:  # pragma: no cover
    from ._simulate import (
        SimulationResult,
        noisy_block_ranker,
        perfect_block_ranker,
        simulate,
        simulate_run,
    )

# the simulation module (also the ``rerank-rag simulate`` command) loads on first use
_LAZY = {
    "simulate",
    "simulate_run",
    "SimulationResult",
    "perfect_block_ranker",
    "noisy_block_ranker",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _simulate

        return getattr(_simulate, name)
    raise AttributeError(f"module 'rerank_rag.jointrank' has no attribute {name!r}")


__all__ = [
    "JointRanker",
    # designs
    "BlockDesign",
    "EquiReplicateDesign",
    "ReplicateDesign",
    "LatinSquareDesign",
    "TriangularDesign",
    "RandomDesign",
    "AutoDesign",
    "auto_design",
    "get_design",
    "DESIGNS",
    "Coverage",
    "coverage_stats",
    "connected_components",
    "is_connected",
    "repair_connectivity",
    # comparisons
    "BlockRanking",
    "Comparisons",
    "block_comparisons",
    # aggregators
    "Aggregator",
    "AGGREGATORS",
    "DEFAULT_AGGREGATOR",
    "get_aggregator",
    "order_from_scores",
    "pagerank",
    "win_rate",
    "borda",
    "copeland",
    "bradley_terry",
    "elo",
    # simulation
    "simulate",
    "simulate_run",
    "SimulationResult",
    "perfect_block_ranker",
    "noisy_block_ranker",
]
