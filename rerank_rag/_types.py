"""Core value types: candidates in, rankings out.

Everything here is plain stdlib (dataclasses), so ``import rerank_rag`` stays cheap.
Indices in, indices out: a :class:`Ranking` holds positions into the caller's input
sequence. Callers map back by position, never by text.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar, Union, runtime_checkable

__all__ = [
    "Candidate",
    "CandidateLike",
    "Ranking",
    "Usage",
    "Ranker",
    "as_candidates",
    "check_int",
    "check_top_n",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One passage to rank.

    Attributes:
        text: the passage text shown to the model or scorer.
        id: optional stable identifier (used for de-duplication in pipelines, never
            to map results back: results are positions).
        metadata: free-form metadata, carried along untouched.
        score: optional first-stage (retrieval) score.
    """

    text: str
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    score: float | None = None


#: What rankers accept as one candidate: a :class:`Candidate`, a plain string, or a
#: mapping with a ``"text"`` key (and optional ``"id"``, ``"metadata"``, ``"score"``).
CandidateLike = Union[Candidate, str, Mapping[str, Any]]


def _check_id(i: int, cid: Any) -> str | None:
    if cid is None or isinstance(cid, str):
        return cid
    if isinstance(cid, int) and not isinstance(cid, bool):
        return str(cid)
    raise TypeError(f"candidate {i} has an id of type {type(cid).__name__}; expected str or int")


def _check_metadata(i: int, metadata: Any) -> Mapping[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(
            f"candidate {i} has metadata of type {type(metadata).__name__}; expected a mapping"
        )
    return metadata


def _check_score(i: int, score: Any) -> float | None:
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise TypeError(
            f"candidate {i} has a score of type {type(score).__name__}; expected a number"
        )
    value = float(score)
    if math.isnan(value):
        raise ValueError(f"candidate {i} has a NaN score")
    return value


def as_candidates(candidates: Sequence[CandidateLike] | Iterator[CandidateLike]) -> list[Candidate]:
    """Validate and normalise a candidate list.

    One rule: a value of the wrong *type* raises ``TypeError``, a value of the right
    type that cannot be used raises ``ValueError``; both name the candidate's index.

    Raises:
        TypeError: ``candidates`` is a single string; a candidate is not a ``str``,
            :class:`Candidate` or mapping (``None`` included); its text is not a string;
            its ``id`` is not a str or int; its ``metadata`` is not a mapping; its
            ``score`` is not a number.
        ValueError: a mapping without a ``"text"`` key; a NaN score.
    """
    if isinstance(candidates, (str, bytes)):
        raise TypeError("candidates must be a sequence of passages, not a single string")
    out: list[Candidate] = []
    for i, c in enumerate(candidates):
        if isinstance(c, Candidate):
            text, cid, metadata, score = c.text, c.id, c.metadata, c.score
        elif isinstance(c, str):
            out.append(Candidate(text=c))
            continue
        elif isinstance(c, Mapping):
            if "text" not in c:
                raise ValueError(f"candidate {i} is a mapping without a 'text' key")
            text, cid, metadata, score = c["text"], c.get("id"), c.get("metadata"), c.get("score")
        else:
            raise TypeError(
                f"candidate {i} has type {type(c).__name__}; expected str, Candidate or a "
                "mapping with 'text'"
            )
        if not isinstance(text, str):
            raise TypeError(
                f"candidate {i} has text of type {type(text).__name__}; text must be a string"
            )
        cid = _check_id(i, cid)
        metadata = _check_metadata(i, metadata)
        score = _check_score(i, score)
        if isinstance(c, Candidate) and cid is c.id and metadata is c.metadata and score is c.score:
            out.append(c)  # nothing changed (same objects, not just equal ones): keep it
            continue
        out.append(Candidate(text=text, id=cid, metadata=metadata, score=score))
    return out


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as a plain ``int``: any integer type (``numpy.int64`` too, through
    ``operator.index``), never a bool or a float. Wrong type -> ``TypeError``; below
    ``minimum`` -> ``ValueError``. The one rule for every integer parameter."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    return out


def check_top_n(top_n: int | None, n: int) -> int:
    """Return how many results to keep; ``None`` means all. ``top_n <= 0`` raises.

    Any integer type is accepted (``numpy.int64`` too); bools and floats are not."""
    if top_n is None:
        return n
    if isinstance(top_n, bool):
        raise TypeError("top_n must be an int or None, got bool")
    try:
        k = operator.index(top_n)
    except TypeError:
        raise TypeError(f"top_n must be an int or None, got {type(top_n).__name__}") from None
    if k <= 0:
        raise ValueError(f"top_n must be positive, got {k}")
    return min(k, n)


@dataclass(slots=True)
class Usage:
    """What a ranking cost.

    Attributes:
        llm_calls: LLM requests that reached the backend (cache hits excluded).
        prompt_tokens / completion_tokens: as reported by the backend (or estimated).
        depth: sequential rounds of LLM calls (1 for one parallel round, 9 for a
            20/10 sliding window over 100 candidates).
        wall_time: seconds spent in ``rank``/``arank``.
        cache_hits: requests answered from the response cache.
        retries: transport retries made by the backend (429, 5xx, timeouts, ...).
        fallbacks: windows/blocks/stages that fell back to a documented default
            (previous order, first-stage order) after a failed or unparsable call.
        failed_calls: LLM requests that ended in an error after the backend's retries.
        parse_repairs: responses that needed repair (missing ids appended, duplicates
            or out-of-range ids dropped).
        resends: requests a ranker sent again because the answer was unusable (JointRank
            block retries; they are also counted in ``llm_calls``). Errors the backend
            already retried (429, 5xx, timeouts) are never re-sent by a ranker.
        kept: results kept by a dynamic cut-off
            (:class:`~rerank_rag.compose.DynamicCutoff`); 0 when no cut-off ran.

    Requests that reached the backend in all: ``llm_calls + retries``.
    """

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    depth: int = 0
    wall_time: float = 0.0
    cache_hits: int = 0
    retries: int = 0
    fallbacks: int = 0
    failed_calls: int = 0
    parse_repairs: int = 0
    resends: int = 0
    kept: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def merge(self, other: Usage, *, sequential: bool = True) -> Usage:
        """Add ``other`` into ``self`` (in place) and return ``self``.

        With ``sequential=True`` depths add up (stages ran one after the other);
        otherwise the larger depth is kept (stages ran side by side). Wall time is
        not added: the caller measures its own.
        """
        for f in fields(self):
            if f.name in ("depth", "wall_time"):
                continue
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.depth = self.depth + other.depth if sequential else max(self.depth, other.depth)
        return self

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["total_tokens"] = self.total_tokens
        return d


@dataclass(frozen=True, slots=True)
class Ranking:
    """The result of ``rank``: positions into the input, best first.

    Attributes:
        order: indices into the candidate sequence given to ``rank`` (each at most once).
        scores: one score per entry of ``order``, non-increasing. What a score means
            is documented by each ranker.
        usage: what the ranking cost.
        relevance: ``None``, or one calibrated relevance value in ``[0, 1]`` per entry
            of ``order``, non-increasing (monotone with the order). Where a ranker
            judges relevance (the relevant-only prompt, LLM yes/no, a scorer with a
            calibrated threshold) a value ``>= 0.5`` means "judged relevant"; each
            ranker documents its mapping. Rank-only rankers map positions. This is
            what HTTP clients threshold on and what dynamic cut-off keeps.
    """

    order: tuple[int, ...]
    scores: tuple[float, ...]
    usage: Usage = field(default_factory=Usage)
    relevance: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.order) != len(self.scores):
            raise ValueError("order and scores must have the same length")
        if self.relevance is not None:
            if len(self.relevance) != len(self.order):
                raise ValueError("relevance must have one value per entry of order")
            prev = 1.0
            for v in self.relevance:
                if not (0.0 <= v <= 1.0):
                    raise ValueError(f"relevance values must lie in [0, 1], got {v!r}")
                if v > prev + 1e-12:
                    raise ValueError("relevance must be non-increasing along the order")
                prev = v

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return iter(zip(self.order, self.scores))

    def select(self, items: Sequence[T]) -> list[T]:
        """Pick ``items`` (the caller's own objects, same order as the input) by position."""
        return [items[i] for i in self.order]

    @classmethod
    def from_scores(
        cls,
        scores: Sequence[float],
        top_n: int | None = None,
        usage: Usage | None = None,
    ) -> Ranking:
        """Sort by score descending; ties (and NaN, sorted last) keep input order."""

        def key(i: int) -> tuple[int, float, int]:
            s = scores[i]
            if s is None or (isinstance(s, float) and math.isnan(s)):
                return (1, 0.0, i)
            return (0, -float(s), i)

        order = sorted(range(len(scores)), key=key)
        k = check_top_n(top_n, len(order))
        order = order[:k]
        return cls(
            order=tuple(order),
            scores=tuple(float(scores[i]) if scores[i] is not None else float("nan") for i in order),
            usage=usage or Usage(),
        )

    @classmethod
    def from_order(
        cls, order: Sequence[int], top_n: int | None = None, usage: Usage | None = None
    ) -> Ranking:
        """Positional scores for an order-only ranker: ``1 - rank / n`` (1.0 for the best)."""
        n = len(order)
        k = check_top_n(top_n, n)
        return cls(
            order=tuple(order[:k]),
            scores=tuple(1.0 - r / n for r in range(k)),
            usage=usage or Usage(),
        )


@runtime_checkable
class Ranker(Protocol):
    """What every rerank-rag ranker offers."""

    def rank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking: ...

    async def arank(
        self, query: str, candidates: Sequence[CandidateLike], top_n: int | None = None
    ) -> Ranking: ...
