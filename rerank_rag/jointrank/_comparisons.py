"""Pairwise comparisons from block rankings.

A block ranking is the order the block ranker gave one block, best first, split into
the *listed* items (those the ranker named) and the *omitted* ones (those it left out:
judged irrelevant by a "relevant-only" prompt, outside the top logprobs in the FIRST
mode, or cut off). From it we emit:

* every listed item beats every listed item after it;
* every listed item beats every omitted item;
* **omitted items are not compared among themselves.**

The last rule is a deliberate departure from the JointRank reference, which backfills
omitted items in *presentation* order and then compares them like listed ones. The
ranker said nothing about how they relate to each other, so such comparisons would
only encode the order in which they were shown: random noise with our shuffled
blocks, and the first-stage order (the LLM's own position bias, again) in the
reference's unshuffled Latin and triangular designs. A block whose output lists
nothing (e.g. "no relevant snippets") therefore yields no comparison at all.

Comparisons are kept per block (for order-dependent aggregators like Elo) and tallied
once into a sparse win matrix (``beats[w][l]`` = times ``w`` beat ``l``) for the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["BlockRanking", "Comparisons", "block_comparisons"]

#: One block's result: the block's items best first (listed items, then omitted
#: ones), and how many leading items were listed.
BlockRanking = tuple[Sequence[int], int]


def block_comparisons(order: Sequence[int], n_listed: int | None = None) -> list[tuple[int, int]]:
    """``(winner, loser)`` pairs from one block ranking (see the module docstring).

    Args:
        order: the block's items, best first: listed items, then omitted ones.
        n_listed: how many leading items were listed (default: all).
    """
    m = len(order)
    n_listed = m if n_listed is None else n_listed
    return [(order[p], order[q]) for p in range(min(n_listed, m)) for q in range(p + 1, m)]


class Comparisons:
    """All comparisons of one query: block rankings over ``n`` items.

    Args:
        n: number of items (candidates); items are ``0..n-1``.
        rankings: block rankings ``(order, n_listed)`` (see :data:`BlockRanking`);
            ``n_listed`` may be omitted (a bare order means every item was listed).
        validate: check that every ranking holds distinct in-range items (``False``
            only for callers that built ``(order, n_listed)`` pairs themselves).

    The win matrix is computed once, on first use.
    """

    __slots__ = ("n", "rankings", "_beats", "_wins", "_losses", "_beaten")

    def __init__(
        self,
        n: int,
        rankings: Iterable[BlockRanking | Sequence[int]] = (),
        *,
        validate: bool = True,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        self.n = n
        rs: list[tuple[tuple[int, ...], int]] = []
        if not validate:  # internal callers that built (order, n_listed) pairs themselves
            rs = [(tuple(o), t) for o, t in rankings]  # type: ignore[misc, arg-type]
            rankings = ()
        for r in rankings:
            if (
                isinstance(r, tuple)
                and len(r) == 2
                and isinstance(r[1], int)
                and not isinstance(r[0], int)
            ):
                order, n_listed = tuple(r[0]), r[1]
            else:
                order = tuple(r)  # type: ignore[arg-type]
                n_listed = len(order)
            if len(set(order)) != len(order):
                raise ValueError(f"block ranking {order} repeats an item")
            for x in order:
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < n:
                    raise ValueError(f"block ranking item {x!r} is not an index in range(0, {n})")
            if not 0 <= n_listed <= len(order):
                raise ValueError(f"n_listed={n_listed} out of range for a block of {len(order)}")
            rs.append((order, n_listed))
        self.rankings: list[tuple[tuple[int, ...], int]] = rs
        self._beats: list[Counter[int]] | None = None
        self._wins: list[int] | None = None
        self._losses: list[int] | None = None
        self._beaten: list[list[int]] | None = None

    @classmethod
    def from_pairs(cls, n: int, pairs: Iterable[tuple[int, int]]) -> Comparisons:
        """Comparisons from ``(winner, loser)`` pairs (each becomes a 2-item block)."""
        return cls(n, [((w, l), 1) for w, l in pairs])

    def _tally(self) -> None:
        n = self.n
        wins = [0] * n
        losses = [0] * n
        for order, n_listed in self.rankings:
            m = len(order)
            for p in range(min(n_listed, m - 1)):
                wins[order[p]] += m - 1 - p
            # a listed item at p lost p times; an omitted one lost n_listed times
            for p in range(m):
                losses[order[p]] += p if p < n_listed else n_listed
        self._wins, self._losses = wins, losses

    @property
    def beaten(self) -> list[list[int]]:
        """``beaten[w]``: every item ``w`` beat, once per comparison (repeats kept).

        The flat form of the win matrix; building it only copies slices, so it is the
        fast path for PageRank.
        """
        if self._beaten is None:
            beaten: list[list[int]] = [[] for _ in range(self.n)]
            for order, n_listed in self.rankings:
                for p in range(min(n_listed, len(order) - 1)):
                    beaten[order[p]].extend(order[p + 1 :])
            self._beaten = beaten
        return self._beaten

    @property
    def beats(self) -> list[Counter[int]]:
        """``beats[w][l]``: how many times ``w`` beat ``l`` (sparse win matrix)."""
        if self._beats is None:
            self._beats = [Counter(b) for b in self.beaten]
        return self._beats

    @property
    def wins(self) -> list[int]:
        """Comparisons won, per item."""
        if self._wins is None:
            self._tally()
        return self._wins  # type: ignore[return-value]

    @property
    def losses(self) -> list[int]:
        """Comparisons lost, per item."""
        if self._losses is None:
            self._tally()
        return self._losses  # type: ignore[return-value]

    def compared(self) -> list[bool]:
        """Per item: True when it took part in at least one comparison."""
        w, l = self.wins, self.losses
        return [w[i] + l[i] > 0 for i in range(self.n)]

    def pairs(self) -> Iterator[tuple[int, int]]:
        """Every ``(winner, loser)`` comparison, block by block, in block order."""
        for order, n_listed in self.rankings:
            m = len(order)
            for p in range(min(n_listed, m)):
                w = order[p]
                for q in range(p + 1, m):
                    yield w, order[q]

    def __len__(self) -> int:
        """Total number of comparisons (repeated pairs counted again)."""
        total = 0
        for order, n_listed in self.rankings:
            m = len(order)
            t = min(n_listed, m)
            total += t * m - t * (t + 1) // 2
        return total

    def __repr__(self) -> str:
        return f"Comparisons(n={self.n}, blocks={len(self.rankings)}, comparisons={len(self)})"
