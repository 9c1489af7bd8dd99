"""The methods ``rerank-rag eval --method`` knows, and how each is built.

Every builder returns a ranker (``rank`` / ``arank`` over a query and its first-stage
candidates). Rankers are imported lazily, inside the builders, so ``import
rerank_rag.eval`` stays cheap and a missing optional dependency only matters for the
method that needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._ranker import BaseRanker
from .._types import Candidate, Usage

__all__ = ["MethodSpec", "METHODS", "build_method", "FirstStageRanker", "method_help"]


class FirstStageRanker(BaseRanker):
    """Keeps the input (first-stage) order; scores ``1 - rank / n``. No model call."""

    def __repr__(self) -> str:
        return "FirstStageRanker()"

    def _rank_sync(self, query: str, cands: list[Candidate], usage: Usage) -> tuple[list[int], list[float]]:
        n = len(cands)
        return list(range(n)), [1.0 - r / n for r in range(n)]

    async def _rank_async(self, query: str, cands: list[Candidate], usage: Usage) -> tuple[list[int], list[float]]:
        return self._rank_sync(query, cands, usage)


@dataclass(frozen=True)
class MethodSpec:
    """One evaluable method.

    Attributes:
        name: the ``--method`` value.
        help: one line for ``--help``.
        needs_llm: whether it calls an LLM (``--llm`` is then used).
        build: ``build(options, llm) -> ranker``; ``options`` holds the CLI options
            (window, step, prompt, block_size, replicas, design, aggregator, seed,
            model_path, max_passage_tokens).
        config: ``config(options) -> dict`` of the settings that matter, for reports.
    """

    name: str
    help: str
    needs_llm: bool
    build: Callable[[Any, Any], Any]
    config: Callable[[Any], dict[str, Any]] = field(default=lambda o: {})


def _opt(options: Any, name: str, default: Any = None) -> Any:
    if isinstance(options, Mapping):
        return options.get(name, default)
    return getattr(options, name, default)


def _first_stage(options: Any, llm: Any) -> Any:
    return FirstStageRanker()


def _bm25(options: Any, llm: Any) -> Any:
    from ..pointwise import BM25Scorer, PointwiseRanker

    return PointwiseRanker(BM25Scorer())


def _minilm(options: Any, llm: Any) -> Any:
    from ..pointwise import MiniLMScorer, PointwiseRanker

    return PointwiseRanker(MiniLMScorer())


def _bi_encoder(options: Any, llm: Any) -> Any:
    from ..pointwise import BiEncoderScorer, PointwiseRanker

    return PointwiseRanker(BiEncoderScorer(_opt(options, "model_path")))


def _cross_encoder(options: Any, llm: Any) -> Any:
    from ..pointwise import CrossEncoderScorer, PointwiseRanker

    path = _opt(options, "model_path")
    if not path:
        raise ValueError(
            "--method cross-encoder needs --model-path (a local sentence-transformers "
            "CrossEncoder folder; none ships on PyPI, so none is bundled)"
        )
    return PointwiseRanker(CrossEncoderScorer(path))


def _llm_pointwise(options: Any, llm: Any) -> Any:
    from ..pointwise import LLMPointwiseRanker

    return LLMPointwiseRanker(llm, max_passage_tokens=_opt(options, "max_passage_tokens", 300))


def _listwise(mode: str) -> Callable[[Any, Any], Any]:
    def build(options: Any, llm: Any) -> Any:
        from ..listwise import ListwiseRanker

        return ListwiseRanker(
            llm,
            prompt=_opt(options, "prompt") or "rankgpt",
            mode=mode,
            window_size=_opt(options, "window", 20),
            step=_opt(options, "step", 10),
            max_passage_tokens=_opt(options, "max_passage_tokens", 300),
        )

    return build


def _default_aggregator() -> str:
    from ..jointrank import DEFAULT_AGGREGATOR

    return DEFAULT_AGGREGATOR


def _jointrank(options: Any, llm: Any) -> Any:
    from ..jointrank import JointRanker

    return JointRanker(
        llm,
        prompt=_opt(options, "prompt") or "relevant-only",
        block_size=_opt(options, "block_size", 20),
        replicas=_opt(options, "replicas", 4),
        design=_opt(options, "design", "auto"),
        aggregator=_opt(options, "aggregator") or _default_aggregator(),
        seed=_opt(options, "seed", 0),
        max_passage_tokens=_opt(options, "max_passage_tokens", 300),
    )


def _pairwise(method: str) -> Callable[[Any, Any], Any]:
    def build(options: Any, llm: Any) -> Any:
        from ..pairwise import PairwiseRanker

        return PairwiseRanker(llm, method=method, max_passage_tokens=_opt(options, "max_passage_tokens", 300))

    return build


def _setwise(options: Any, llm: Any) -> Any:
    from ..setwise import SetwiseRanker

    return SetwiseRanker(llm, max_passage_tokens=_opt(options, "max_passage_tokens", 300))


def _tourrank(options: Any, llm: Any) -> Any:
    from ..tournament import TourRanker

    return TourRanker(
        llm, seed=_opt(options, "seed", 0), max_passage_tokens=_opt(options, "max_passage_tokens", 300)
    )


def _tdpart(options: Any, llm: Any) -> Any:
    from ..tdpart import TDPartRanker

    return TDPartRanker(
        llm, prompt=_opt(options, "prompt") or "rankgpt", max_passage_tokens=_opt(options, "max_passage_tokens", 300)
    )


def _not_here(options: Any, llm: Any) -> Any:
    raise ValueError("--method decompose is evaluated on multi-hop data only: --dataset musique or --multihop FILE")


def _cfg_listwise(mode: str) -> Callable[[Any], dict[str, Any]]:
    def cfg(o: Any) -> dict[str, Any]:
        d = {"mode": mode, "prompt": _opt(o, "prompt") or "rankgpt", "max_passage_tokens": _opt(o, "max_passage_tokens", 300)}
        if mode == "sliding":
            d.update(window=_opt(o, "window", 20), step=_opt(o, "step", 10))
        return d

    return cfg


METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in (
        MethodSpec("first-stage", "keep the first-stage order (no reranking)", False, _first_stage),
        MethodSpec("bm25", "BM25 over the candidates (pointwise, pure Python)", False, _bm25),
        MethodSpec("minilm", "MiniLM int8 bi-encoder, the offline default scorer", False, _minilm),
        MethodSpec(
            "bi-encoder", "sentence-transformers bi-encoder (--model-path; default all-MiniLM-L6-v2)",
            False, _bi_encoder, lambda o: {"model_path": _opt(o, "model_path")},
        ),
        MethodSpec(
            "cross-encoder", "sentence-transformers cross-encoder (--model-path, required)",
            False, _cross_encoder, lambda o: {"model_path": _opt(o, "model_path")},
        ),
        MethodSpec("llm-pointwise", "LLM yes/no relevance per passage (first-token logprobs)", True, _llm_pointwise),
        MethodSpec(
            "sliding", "listwise sliding window, RankGPT (--window, --step, --prompt)",
            True, _listwise("sliding"), _cfg_listwise("sliding"),
        ),
        MethodSpec(
            "single", "listwise single pass: all candidates in one call (--prompt)",
            True, _listwise("single"), _cfg_listwise("single"),
        ),
        MethodSpec(
            "jointrank",
            "JointRank blocks in one parallel round (--block-size, --replicas, --design, --aggregator)",
            True,
            _jointrank,
            lambda o: {
                "prompt": _opt(o, "prompt") or "relevant-only",
                "block_size": _opt(o, "block_size", 20),
                "replicas": _opt(o, "replicas", 4),
                "design": _opt(o, "design", "auto"),
                "aggregator": _opt(o, "aggregator") or _default_aggregator(),
                "seed": _opt(o, "seed", 0),
            },
        ),
        MethodSpec("prp-heapsort", "pairwise PRP, heapsort for the top 10 (both orders per pair)", True, _pairwise("heapsort")),
        MethodSpec("prp-allpairs", "pairwise PRP, all pairs in one round (n(n-1) calls)", True, _pairwise("allpair")),
        MethodSpec("setwise", "setwise heapsort, most relevant of 4 per call, top 10", True, _setwise),
        MethodSpec("tourrank", "TourRank, 2 tournaments in parallel (--seed)", True, _tourrank),
        MethodSpec("tdpart", "top-down partitioning around a pivot (--prompt)", True, _tdpart),
        MethodSpec(
            "decompose",
            "question decomposition + retrieval + rerank (--dataset musique or --multihop; --decomposer, --reranker)",
            False,
            _not_here,
        ),
    )
}

#: Aliases accepted by ``--method``.
ALIASES = {
    "firststage": "first-stage",
    "none": "first-stage",
    "biencoder": "bi-encoder",
    "crossencoder": "cross-encoder",
    "sliding-window": "sliding",
    "listwise": "sliding",
    "listwise-sliding": "sliding",
    "single-pass": "single",
    "listwise-single": "single",
    "full": "single",
    "joint": "jointrank",
    "prp": "prp-heapsort",
    "pairwise": "prp-heapsort",
    "tournament": "tourrank",
    "decomposition": "decompose",
}


def resolve_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` for ``name`` (or an alias); ``ValueError`` lists the names."""
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    spec = METHODS.get(key)
    if spec is None:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return spec


def build_method(name: str, options: Any = None, llm: Any = None) -> Any:
    """Build the ranker of method ``name`` (see :data:`METHODS`)."""
    spec = resolve_method(name)
    if spec.needs_llm and llm is None:
        raise ValueError(f"method {spec.name!r} needs an LLM (--llm sim|openai|local)")
    return spec.build(options or {}, llm)


def method_help() -> str:
    """The method list for ``--help``."""
    width = max(len(n) for n in METHODS)
    lines = ["methods:"]
    for m in METHODS.values():
        tag = " [LLM]" if m.needs_llm else ""
        lines.append(f"  {m.name:<{width}}  {m.help}{tag}")
    return "\n".join(lines)
