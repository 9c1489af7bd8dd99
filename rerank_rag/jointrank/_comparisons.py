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

Comparisons are kept per block (for order-dependent aggregators like Elo); the
aggregators read per-item tallies computed once, in ``O(r·n)`` or with C-level list
operations, never one Python object per comparison:

* ``wins`` / ``losses``: comparisons won and lost, per item (from block positions);
* ``beaten`` / ``beaters``: per item, the items it beat / that beat it, repeats kept
  (slices of the block rankings);
* :meth:`Comparisons.repeated`: the pairs compared more than once, with both win
  counts. Most pairs meet in one block only, where the outcome is already in
  ``wins``/``losses``; counting methods (win rate, Copeland) only need a correction for
  the few that met again. They are found by intersecting blocks pairwise
  (``O(b²)`` set intersections for ``b`` blocks), or, for many tiny blocks (pairwise
  verdicts), by counting the comparisons directly.

``beats[w][l]`` (times ``w`` beat ``l``, a sparse win matrix) is still available.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from math import isqrt
from operator import add

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

    __slots__ = ("n", "rankings", "_beats", "_wins", "_losses", "_beaten", "_beaters", "_repeated")

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
        self._beaters: list[list[int]] | None = None
        self._repeated: list[tuple[int, int, int, int]] | None = None

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
    def beaters(self) -> list[list[int]]:
        """``beaters[l]``: every item that beat ``l``, once per comparison (repeats kept)."""
        if self._beaters is None:
            beaters: list[list[int]] = [[] for _ in range(self.n)]
            for order, n_listed in self.rankings:
                m = len(order)
                t = min(n_listed, m)
                for q in range(1, m):
                    beaters[order[q]].extend(order[: q if q < t else t])
            self._beaters = beaters
        return self._beaters

    def repeated(self) -> list[tuple[int, int, int, int]]:
        """``(x, y, wins of x over y, wins of y over x)``, ``x < y``, for every pair
        compared more than once (in several blocks, or repeated pairwise verdicts).

        Every other compared pair was compared exactly once, so its outcome is fully
        described by ``wins`` and ``losses``. The order is deterministic (it depends
        on the rankings only).
        """
        if self._repeated is None:
            live = [(o, min(t, len(o))) for o, t in self.rankings if t > 0 and len(o) > 1]
            b = len(live)
            # few large blocks: intersect them (b < 1024 keeps the packed counts below
            # 2**20 each); many small ones (pairwise verdicts): count the comparisons
            if b < 1024 and b * (b - 1) * 2 <= len(self):
                self._repeated = self._repeated_by_block_pairs(live)
            else:
                self._repeated = self._repeated_by_counting(live)
        return self._repeated

    def _repeated_by_block_pairs(
        self, live: list[tuple[tuple[int, ...], int]]
    ) -> list[tuple[int, int, int, int]]:
        # Two items meet again only inside the intersection of two blocks. A pair shared
        # by s blocks turns up in s(s-1)/2 block pairs, and each block's outcome in s-1
        # of them, so the sums below are (s-1) times the true win counts.
        n, nb = self.n, len(live)
        # position of each item in its block; omitted items share the position n_listed
        pos = [dict(zip(o, chain(range(t), repeat(t)))) for o, t in live]
        member_of: list[list[int]] = [[] for _ in range(n)]
        for bi, (o, _t) in enumerate(live):
            for x in o:
                member_of[x].append(bi)
        common: dict[int, list[int]] = {}  # block pair -> the items in both, ascending
        for x, bl in enumerate(member_of):
            for i in range(len(bl) - 1):
                base = bl[i] * nb
                for bj in bl[i + 1 :]:
                    got = common.get(base + bj)
                    if got is None:
                        common[base + bj] = [x]
                    else:
                        got.append(x)
        # per pair: wins of x (bits 40+), wins of y (bits 20+), block pairs seen (bits 0+)
        acc: dict[int, int] = {}
        get = acc.get
        f1, f2 = 1 << 20, 1 << 40
        for ab, xs in common.items():
            if len(xs) < 2:
                continue
            pa, pb = pos[ab // nb], pos[ab % nb]
            pas = [pa[x] for x in xs]
            pbs = [pb[x] for x in xs]
            for i in range(len(xs) - 1):
                ax, bx, base = pas[i], pbs[i], xs[i] * n
                for ay, by, y in zip(pas[i + 1 :], pbs[i + 1 :], xs[i + 1 :]):
                    key = base + y
                    acc[key] = (
                        get(key, 0)
                        + ((ax < ay) + (bx < by)) * f2
                        + ((ay < ax) + (by < bx)) * f1
                        + 1
                    )
        out = []
        mask = f1 - 1
        for key, code in acc.items():
            u, v, pairs = code >> 40, (code >> 20) & mask, code & mask
            if pairs > 1:  # shared by s > 2 blocks: divide by s - 1
                s1 = (isqrt(1 + 8 * pairs) - 1) // 2
                u //= s1
                v //= s1
            if u + v > 1:
                x, y = divmod(key, n)
                out.append((x, y, u, v))
        return out

    def _repeated_by_counting(
        self, live: list[tuple[tuple[int, ...], int]]
    ) -> list[tuple[int, int, int, int]]:
        n = self.n
        keys: list[int] = []
        for o, t in live:
            if len(o) == 2:
                keys.append(o[0] * n + o[1])
                continue
            for p in range(min(t, len(o) - 1)):
                keys.extend(map(add, repeat(o[p] * n), o[p + 1 :]))
        counts = Counter(keys)
        out = []
        for key, a in counts.items():
            x, y = divmod(key, n)
            if x < y:
                b = counts.get(y * n + x, 0)
            elif y * n + x in counts:
                continue  # counted from the (y, x) side
            else:
                x, y, a, b = y, x, 0, a
            if a + b > 1:
                out.append((x, y, a, b))
        return out

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
