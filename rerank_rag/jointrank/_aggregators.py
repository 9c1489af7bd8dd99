"""Rank aggregation: one score per candidate from pairwise comparisons.

Every aggregator takes a :class:`~rerank_rag.jointrank.Comparisons` (or an iterable of
``(winner, loser)`` pairs plus ``n``) and returns a list of ``n`` floats, higher is
better. Items that took part in no comparison (e.g. every block holding them failed)
get the lowest score any compared item has (PageRank: its teleport share, the smallest
score possible, so the scores still sum to 1), so they sort last and, as ties break by
first-stage order (:func:`order_from_scores`), keep their input order among
themselves. With no comparison at all every item gets the aggregator's neutral value
(the ranking is then the first-stage order).

================  =====================================================================
aggregator        score
================  =====================================================================
pagerank          stationary probability of a random walk loser -> winner (damping
                  0.85, uniform teleport); sums to 1. The JointRank paper's choice.
win_rate          mean, over the opponents an item met, of its share of wins against
                  that opponent; in [0, 1].
borda             mean normalised Borda points per block: ``(m-1-pos)/(m-1)`` for a
                  listed item at ``pos`` in a block of ``m``, 0 for an omitted one; in
                  [0, 1]. ``normalize=False``: total comparisons won. JointRanker's
                  default (:data:`DEFAULT_AGGREGATOR`).
copeland          pairwise majorities won minus lost, divided by the opponents met; in
                  [-1, 1]. ``normalize=False``: the raw count.
bradley_terry     log-strength of a Bradley-Terry model with a prior (each item also
                  won and lost ``prior`` games against a virtual opponent of strength 1),
                  so consistent comparisons do not diverge or collapse; 0 = the
                  virtual opponent's level.
elo               Elo rating after playing the comparisons in block order (start 1000,
                  K=4, scale 400, as evalica's defaults); order-dependent.
================  =====================================================================

Cost (``b`` blocks of ``k`` over ``n`` items, ``r`` blocks per item, ``C`` comparisons):
Borda is ``O(r·n)``; win rate and Copeland read the win/loss tallies (``O(r·n)``)
and correct only the pairs compared more than once
(:meth:`~rerank_rag.jointrank.Comparisons.repeated`); PageRank is solved as the
linear system ``(I - d P^T) x = 1`` with Gauss-Seidel sweeps (losers first), one
``O(C)`` pass each, exact in one sweep on consistent comparisons; Elo is one pass.
All of these are pure Python. Bradley-Terry
(:mod:`rerank_rag.jointrank._bradley_terry`) uses numpy's Newton solver when numpy
is installed and the query has enough comparisons, pure-Python sweeps otherwise.
``benchmarks/bench_jointrank.py`` prints the time of each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._agg_base import Aggregator, ComparisonsLike, as_comparisons, finish, getter
from ._bradley_terry import bradley_terry
from ._comparisons import Comparisons

__all__ = [
    "pagerank",
    "win_rate",
    "borda",
    "copeland",
    "bradley_terry",
    "elo",
    "AGGREGATORS",
    "Aggregator",
    "get_aggregator",
    "aggregator_name",
    "order_from_scores",
    "DEFAULT_AGGREGATOR",
]

#: The aggregator :class:`~rerank_rag.jointrank.JointRanker` uses unless told otherwise.
#: Chosen from a simulated DL19 sweep (``benchmarks/bench_aggregators.py``): over 40
#: settings (judge noise, position bias, relevant-only and RankGPT prompts, k20/r4 and
#: Latin k10) Borda had the best mean nDCG@10 and never trailed the best by more than
#: 0.016, while PageRank was last in 39 of 40 (about 5 points behind); Borda also costs
#: ``O(r·n)`` in pure Python. PageRank stays available by name.
DEFAULT_AGGREGATOR = "borda"


def _losers_first(c: Comparisons) -> list[int]:
    """An order in which every item comes after the items it beat, where possible.

    Kahn's algorithm on the block rankings' chains (each listed item depends on the
    next item of its block; the last listed one on the omitted ones), which carry the
    same reachability as all the pairwise comparisons at ``O(r·n)`` instead of
    ``O(r·n·k)``. Cycles (inconsistent comparisons) are broken by taking the item with
    the lowest share of wins. For consistent comparisons this is a topological order,
    in which one Gauss-Seidel sweep solves PageRank exactly.
    """
    import heapq

    n = c.n
    w, l = c.wins, c.losses
    frac = [w[i] / (w[i] + l[i]) if w[i] + l[i] else 0.0 for i in range(n)]
    waits = [0] * n
    waiting_on: list[list[int]] = [[] for _ in range(n)]
    for order, t in c.rankings:
        m = len(order)
        t = min(t, m)
        for p in range(t - 1):
            j, below = order[p], order[p + 1]
            waits[j] += 1
            waiting_on[below].append(j)
        if 0 < t < m:
            j = order[t - 1]
            waits[j] += m - t
            for below in order[t:]:
                waiting_on[below].append(j)
    ready = [(frac[i], i) for i in range(n) if waits[i] == 0]
    heapq.heapify(ready)
    by_frac = sorted(range(n), key=frac.__getitem__)
    forced = 0
    done = [False] * n
    out: list[int] = []
    while len(out) < n:
        if ready:
            _, i = heapq.heappop(ready)
            if done[i]:
                continue
        else:  # a cycle: take the weakest remaining item
            while done[by_frac[forced]]:
                forced += 1
            i = by_frac[forced]
        done[i] = True
        out.append(i)
        for j in waiting_on[i]:
            waits[j] -= 1
            if waits[j] == 0 and not done[j]:
                heapq.heappush(ready, (frac[j], j))
    return out


def pagerank(
    comparisons: ComparisonsLike,
    n: int | None = None,
    *,
    damping: float = 0.85,
    tol: float = 1e-8,
    max_iter: int = 1000,
) -> list[float]:
    """PageRank over the comparison graph (JointRank's default aggregator).

    The walk moves from a loser to a winner with probability proportional to how often
    that winner beat it (an item that never lost jumps uniformly), and teleports
    uniformly with probability ``1 - damping``: evalica's ``pagerank`` as used by the
    JointRank reference. Score = stationary probability; the scores sum to 1.

    Solved as the linear system ``(I - d·Pᵀ) x = 1`` (then normalised), which has the
    same solution, by Gauss-Seidel sweeps in losers-first order: one sweep is exact
    for consistent comparisons; with cycles, a sweep-ratio (Aitken-style) extrapolation
    removes the slowly decaying mode. Stops when a sweep changes the solution by at
    most ``tol`` (relative L1); ``max_iter`` caps the sweeps.
    """
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"damping must be in [0, 1), got {damping}")
    c = as_comparisons(comparisons, n)
    n = c.n
    if n == 0:
        return []
    beaten, losses = c.beaten, c.losses
    inv_loss = [1.0 / v if v else 0.0 for v in losses]
    x = [1.0] * n
    y = inv_loss[:]  # y[i] = x[i] / losses[i]: what item i hands to each item that beat it
    rows = [(j, getter(beaten[j]), inv_loss[j]) for j in _losers_first(c) if beaten[j]]
    prev_delta = prev_ratio = 0.0
    for _ in range(max_iter):
        old = x[:]
        delta = 0.0
        for j, get, il in rows:
            new = 1.0 + damping * sum(get(y))
            d = new - x[j]
            if d:
                delta += abs(d)
                x[j] = new
                y[j] = new * il
        if delta <= tol * sum(x):
            break
        ratio = delta / prev_delta if prev_delta else 0.0
        if 0.0 < ratio < 0.95 and prev_ratio and abs(ratio - prev_ratio) < 0.02 * ratio:
            # the error shrinks by ~ratio per sweep: jump to the limit of that geometric tail
            f = ratio / (1.0 - ratio)
            for j, _get, il in rows:
                x[j] += f * (x[j] - old[j])
                y[j] = x[j] * il
            prev_delta = prev_ratio = 0.0
            continue
        prev_ratio, prev_delta = ratio, delta
    total = sum(x)
    # an item in no comparison keeps x = 1, the smallest value any item can have (its
    # teleport share only), so it already sorts last and the scores still sum to 1
    return [v / total for v in x]


def win_rate(comparisons: ComparisonsLike, n: int | None = None) -> list[float]:
    """Average win rate (evalica's ``average_win_rate``).

    Score = mean over the opponents an item met of ``W[i,j] / (W[i,j] + W[j,i])``, in
    [0, 1] (not wins / games: every opponent weighs the same).

    Computed from the per-item win and loss counts (a pair compared once adds a share
    of 1 or 0 and one opponent) plus a correction for the few pairs compared more than
    once (:meth:`Comparisons.repeated`), so the cost is ``O(r·n)`` plus the repeated
    pairs, not one dictionary entry per comparison.
    """
    c = as_comparisons(comparisons, n)
    wins, losses = c.wins, c.losses
    whole = list(wins)  # the integer part of each item's sum of shares
    part = [0.0] * c.n  # the fractional part (shares of split pairs)
    opp = [w + l for w, l in zip(wins, losses)]
    for x, y, a, b in c.repeated():
        t = a + b
        opp[x] -= t - 1
        opp[y] -= t - 1
        if a and b:  # a split pair: shares a/t and b/t instead of a and b wins
            whole[x] -= a
            whole[y] -= b
            part[x] += a / t
            part[y] += b / t
        elif a:
            whole[x] -= a - 1
        else:
            whole[y] -= b - 1
    out = [(w + f) / o if o else 0.5 for w, f, o in zip(whole, part, opp)]
    return finish(out, c.compared(), 0.5)


def borda(
    comparisons: ComparisonsLike, n: int | None = None, *, normalize: bool = True
) -> list[float]:
    """Borda count over the block rankings.

    With ``normalize=True`` (default): mean over the blocks an item was ranked in of
    ``(m-1-pos)/(m-1)`` (listed at ``pos`` in a block of ``m``; 0 when omitted), in
    [0, 1], so items that appear in more blocks are not favoured. With
    ``normalize=False``: total comparisons won (classic summed Borda points).
    Blocks that listed nothing carry no information and are skipped.
    """
    c = as_comparisons(comparisons, n)
    if not normalize:
        return finish([float(v) for v in c.wins], c.compared(), 0.0)
    total = [0.0] * c.n
    count = [0] * c.n
    for order, n_listed in c.rankings:
        m = len(order)
        if m < 2 or n_listed == 0:
            continue
        for p, item in enumerate(order):
            if p < n_listed:
                total[item] += (m - 1 - p) / (m - 1)
            count[item] += 1
    scores = [t / k if k else 0.0 for t, k in zip(total, count)]
    return finish(scores, c.compared(), 0.5)


def copeland(
    comparisons: ComparisonsLike, n: int | None = None, *, normalize: bool = True
) -> list[float]:
    """Copeland score: pairwise majorities won minus lost (a tied pair counts 0).

    ``normalize=True`` (default) divides by the number of opponents met, giving a
    value in [-1, 1]; ``normalize=False`` returns the raw count. Computed like
    :func:`win_rate`: wins minus losses, corrected for the pairs compared more than once.
    """
    c = as_comparisons(comparisons, n)
    wins, losses = c.wins, c.losses
    raw = [w - l for w, l in zip(wins, losses)]
    opp = [w + l for w, l in zip(wins, losses)]
    for x, y, a, b in c.repeated():
        opp[x] -= a + b - 1
        opp[y] -= a + b - 1
        s = (a > b) - (a < b)
        raw[x] -= a - b - s
        raw[y] -= b - a + s
    if normalize:
        out = [r / o if o else 0.0 for r, o in zip(raw, opp)]
    else:
        out = [float(r) for r in raw]
    return finish(out, c.compared(), 0.0)


def elo(
    comparisons: ComparisonsLike,
    n: int | None = None,
    *,
    initial: float = 1000.0,
    k_factor: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
) -> list[float]:
    """Elo ratings after playing every comparison once, block by block, in order.

    Starts at ``initial``; after ``w`` beats ``l``, both ratings move by
    ``k_factor * (1 - E_w)`` with ``E_w = 1 / (1 + base**((r_l - r_w) / scale))``.
    Defaults match evalica's (K=4). Order-dependent, unlike the other aggregators.
    """
    c = as_comparisons(comparisons, n)
    r = [float(initial)] * c.n
    for order, n_listed in c.rankings:
        m = len(order)
        for p in range(min(n_listed, m - 1)):
            w = order[p]
            rw = r[w]
            for l in order[p + 1 :]:
                delta = k_factor / (1.0 + base ** ((rw - r[l]) / scale))
                rw += delta
                r[l] -= delta
            r[w] = rw
    return finish(r, c.compared(), float(initial))


#: Aggregators by name (``JointRanker(aggregator=...)``, ``rerank-rag simulate``).
AGGREGATORS: dict[str, Aggregator] = {
    "pagerank": pagerank,
    "win_rate": win_rate,
    "borda": borda,
    "copeland": copeland,
    "bradley_terry": bradley_terry,
    "elo": elo,
}

_ALIASES = {
    "wr": "win_rate",
    "winrate": "win_rate",
    "bt": "bradley_terry",
    "bradley": "bradley_terry",
}


def get_aggregator(aggregator: str | Aggregator) -> Aggregator:
    """An aggregator function from a name in :data:`AGGREGATORS` (or a callable)."""
    if callable(aggregator):
        return aggregator
    if not isinstance(aggregator, str):
        raise TypeError(f"aggregator must be a name or a callable, got {type(aggregator).__name__}")
    key = aggregator.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    fn = AGGREGATORS.get(key)
    if fn is None:
        raise ValueError(
            f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}"
        )
    return fn


def aggregator_name(aggregator: str | Aggregator) -> str:
    """How an aggregator is shown in ``repr`` and ``to_config``: the name as given, a
    callable's ``__name__`` (or its type's name)."""
    if isinstance(aggregator, str):
        return aggregator
    return getattr(aggregator, "__name__", type(aggregator).__name__)


def _tie_key(s: float) -> float:
    # 12 significant digits: scores equal up to float noise tie, and ties keep input order
    return float(f"{s:.12g}") if math.isfinite(s) else s


def order_from_scores(scores: Sequence[float]) -> tuple[list[int], list[float]]:
    """Order by score descending, ties (to 12 significant digits) in input order.

    Returns ``(order, scores_in_order)``; the returned scores are rounded to 12
    significant digits, so they are non-increasing and tie exactly where the order
    fell back to the input order. NaN sorts last.
    """
    keyed = [_tie_key(float(s)) for s in scores]
    order = sorted(
        range(len(keyed)),
        key=lambda i: (1, 0.0) if math.isnan(keyed[i]) else (0, -keyed[i]),
    )
    return order, [keyed[i] for i in order]
