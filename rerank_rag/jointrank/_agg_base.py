"""Helpers shared by the aggregators: input coercion and the score floor."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter

from ._comparisons import Comparisons

ComparisonsLike = Comparisons | Iterable[tuple[int, int]]
#: An aggregator: ``f(comparisons) -> list of n scores`` (higher is better).
Aggregator = Callable[[Comparisons], list[float]]


def as_comparisons(comparisons: ComparisonsLike, n: int | None) -> Comparisons:
    """A :class:`Comparisons` from itself or from ``(winner, loser)`` pairs."""
    if isinstance(comparisons, Comparisons):
        if n is not None and n != comparisons.n:
            raise ValueError(f"n={n} does not match the comparisons' n={comparisons.n}")
        return comparisons
    pairs = [(int(w), int(l)) for w, l in comparisons]
    if n is None:
        n = 1 + max((max(w, l) for w, l in pairs), default=-1)
    return Comparisons.from_pairs(n, pairs)


def finish(scores: list[float], compared: Sequence[bool], neutral: float) -> list[float]:
    """Uncompared items get the lowest compared score (``neutral`` if none compared)."""
    vals = [s for s, c in zip(scores, compared) if c]
    floor = min(vals) if vals else neutral
    return [s if c else floor for s, c in zip(scores, compared)]


def getter(keys: list[int]) -> Callable[[Sequence[float]], tuple[float, ...]]:
    """``f(values) -> tuple of values[k] for k in keys`` (C-level for 2+ keys)."""
    if len(keys) == 1:
        k0 = keys[0]
        return lambda v: (v[k0],)
    return itemgetter(*keys)
