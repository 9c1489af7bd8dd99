"""Simulated JointRank: designs and aggregators with a synthetic block ranker.

The protocol is the JointRank reference's synthetic "oracle" experiment: the gold
relevance of ``n`` candidates is a random permutation of ``1..n`` (the candidates'
input order is therefore random), every block is ranked by a simulated block ranker,
the comparisons are aggregated, and the result is scored with nDCG@10 using gain
``2**rel`` and top-1 accuracy (is the first item the most relevant one?).

Block rankers:

* perfect (``noise=0``, ``position_bias=0``): sorts the block by true relevance;
* noisy: sorts by ``rel/n + noise * N(0, 1) + position_bias * (m-1-pos)/(m-1)``, i.e.
  Gaussian noise in units of the whole relevance range, plus a bonus for being shown
  early in the block (``pos`` = presentation position in a block of ``m``).

The same design, comparison and aggregation code as :class:`JointRanker` is used,
so these numbers are the ceilings of the real ranker. Command line::

    rerank-rag simulate --n 100 --k 20 --r 4 --design auto --aggregator pagerank \\
        --runs 200 --seed 0 [--noise 0.05] [--position-bias 0.02]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._aggregators import AGGREGATORS, DEFAULT_AGGREGATOR, get_aggregator, order_from_scores
from ._comparisons import Comparisons
from ._designs import DESIGNS, AutoDesign, BlockDesign, get_design, is_connected

__all__ = [
    "BlockRankerFn",
    "perfect_block_ranker",
    "noisy_block_ranker",
    "ndcg_at",
    "RunResult",
    "SimulationResult",
    "simulate_run",
    "simulate",
    "main",
]

#: A simulated block ranker: ``f(block) -> (order, n_listed)``.
BlockRankerFn = Callable[[Sequence[int]], tuple[list[int], int]]


def perfect_block_ranker(relevance: Sequence[float]) -> BlockRankerFn:
    """A block ranker that sorts every block by ``relevance`` (higher first), listing all."""

    def rank(block: Sequence[int]) -> tuple[list[int], int]:
        return sorted(block, key=relevance.__getitem__, reverse=True), len(block)

    return rank


def noisy_block_ranker(
    relevance: Sequence[float],
    noise: float,
    position_bias: float = 0.0,
    rng: random.Random | None = None,
) -> BlockRankerFn:
    """A block ranker that sorts by a noisy, position-biased view of the relevance.

    Observed value of the item shown at ``pos`` in a block of ``m``:
    ``rel/max_rel + noise * N(0, 1) + position_bias * (m-1-pos)/(m-1)``. Both knobs
    are in units of the whole relevance range. Each call draws fresh noise.
    """
    if noise < 0 or position_bias < 0:
        raise ValueError("noise and position_bias must be >= 0")
    rng = rng or random.Random(0)
    top = max(relevance, default=1) or 1
    gauss = rng.gauss

    def rank(block: Sequence[int]) -> tuple[list[int], int]:
        m = len(block)
        span = max(1, m - 1)
        obs = [
            relevance[x] / top
            + (noise * gauss(0.0, 1.0) if noise else 0.0)
            + position_bias * (m - 1 - p) / span
            for p, x in enumerate(block)
        ]
        order = sorted(range(m), key=obs.__getitem__, reverse=True)
        return [block[p] for p in order], m

    return rank


def ndcg_at(ranked_relevance: Sequence[int], k: int = 10) -> float:
    """nDCG@k with gain ``2**rel`` (the reference's synthetic metric).

    ``ranked_relevance`` is the relevance of every item in ranked order (all items,
    so the ideal ranking is known). Gains are scaled by ``2**-max_rel``, which leaves
    nDCG unchanged and avoids float overflow for large ``n``.
    """
    if not ranked_relevance:
        return 0.0
    top = max(ranked_relevance)
    gains = [math.ldexp(1.0, int(r) - top) for r in ranked_relevance]
    ideal = sorted(gains, reverse=True)
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
    return dcg / idcg if idcg > 0 else 0.0


@dataclass(frozen=True, slots=True)
class RunResult:
    """One simulated query."""

    ndcg10: float
    top1: float
    calls: int
    depth: int
    connected: bool


def simulate_run(
    n: int,
    k: int,
    design: BlockDesign,
    aggregator: str | Callable[[Comparisons], list[float]],
    seed: int,
    *,
    noise: float = 0.0,
    position_bias: float = 0.0,
    repair: bool = True,
) -> RunResult:
    """Simulate one query of ``n`` candidates (gold relevance seeded by ``seed``)."""
    rng = random.Random(seed)
    relevance = list(range(1, n + 1))
    rng.shuffle(relevance)
    blocks = design.build(n, k, seed=rng.randrange(2**62), repair=repair)
    if noise or position_bias:
        ranker = noisy_block_ranker(relevance, noise, position_bias, random.Random(rng.random()))
    else:
        ranker = perfect_block_ranker(relevance)
    comps = Comparisons(n, [ranker(b) for b in blocks], validate=False)
    scores = get_aggregator(aggregator)(comps)
    order, _ = order_from_scores(scores)
    ranked = [relevance[i] for i in order]
    top1 = 1.0 if ranked and ranked[0] == n else 0.0
    connected = is_connected(blocks, n)
    return RunResult(ndcg_at(ranked, 10), top1, len(blocks), 1 if blocks else 0, connected)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Means over the runs of :func:`simulate`."""

    n: int
    k: int
    replicas: int
    design: str
    aggregator: str
    runs: int
    ndcg10: float
    ndcg10_ci95: float
    top1: float
    calls: float
    depth: float
    connected: float
    seconds_per_run: float


def simulate(
    n: int = 100,
    k: int = 20,
    replicas: int = 4,
    design: str | BlockDesign = "auto",
    aggregator: str = DEFAULT_AGGREGATOR,
    runs: int = 200,
    seed: int = 0,
    *,
    noise: float = 0.0,
    position_bias: float = 0.0,
    repair: bool = True,
) -> SimulationResult:
    """Average :func:`simulate_run` over ``runs`` queries (run ``i`` uses seed ``seed+i``)."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    d = get_design(design, replicas)
    agg = get_aggregator(aggregator)
    t0 = time.perf_counter()
    results = [
        simulate_run(
            n, k, d, agg, seed + i, noise=noise, position_bias=position_bias, repair=repair
        )
        for i in range(runs)
    ]
    elapsed = time.perf_counter() - t0
    nd = [r.ndcg10 for r in results]
    mean = sum(nd) / runs
    sd = math.sqrt(sum((x - mean) ** 2 for x in nd) / runs)
    return SimulationResult(
        n=n,
        k=k,
        replicas=replicas,
        design=getattr(d, "name", type(d).__name__),
        aggregator=aggregator
        if isinstance(aggregator, str)
        else getattr(aggregator, "__name__", "?"),
        runs=runs,
        ndcg10=mean,
        ndcg10_ci95=1.96 * sd / math.sqrt(runs),
        top1=sum(r.top1 for r in results) / runs,
        calls=sum(r.calls for r in results) / runs,
        depth=sum(r.depth for r in results) / runs,
        connected=sum(r.connected for r in results) / runs,
        seconds_per_run=elapsed / runs,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rerank-rag simulate",
        description=(
            "Simulate JointRank with a synthetic block ranker (gold = random permutation of "
            "relevance 1..n, gain 2^rel) and print mean nDCG@10, top-1 accuracy, calls and "
            "depth. Comma-separated --design / --aggregator values print one row per pair."
        ),
        epilog=(
            "columns: nDCG@10 (mean, gain 2^rel) and its 95% half-width; top-1 = share of "
            "queries whose first result is the most relevant; calls = blocks per query "
            "(LLM calls of one round, repair blocks included); depth = sequential rounds; "
            "conn. = share of queries whose comparison graph was connected; ms/run = "
            "wall time per simulated query (design + ranking + aggregation)."
        ),
    )
    p.add_argument("--n", type=int, default=100, help="candidates per query (default 100)")
    p.add_argument("--k", type=int, default=20, help="block size (default 20)")
    p.add_argument("--r", type=int, default=4, help="replicas: blocks per candidate (default 4)")
    p.add_argument(
        "--design", default="auto", help=f"one or more of: {', '.join(DESIGNS)} (default auto)"
    )
    p.add_argument(
        "--aggregator",
        default=DEFAULT_AGGREGATOR,
        help=f"one or more of: {', '.join(AGGREGATORS)}, or 'all' "
        f"(default {DEFAULT_AGGREGATOR}, JointRanker's default)",
    )
    p.add_argument("--runs", type=int, default=200, help="simulated queries (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first run (default 0)")
    p.add_argument(
        "--noise",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="Gaussian noise on the true relevance, in units of the relevance range (default 0)",
    )
    p.add_argument(
        "--position-bias",
        type=float,
        default=0.0,
        help="bonus for the first-shown item of a block, fading linearly to 0 for the last "
        "(default 0)",
    )
    p.add_argument("--no-repair", action="store_true", help="do not repair disconnected designs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``rerank-rag simulate``: print a table of simulated JointRank quality and cost."""
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    designs = [d.strip() for d in args.design.split(",") if d.strip()]
    aggs = [a.strip() for a in args.aggregator.split(",") if a.strip()]
    if aggs == ["all"]:
        aggs = list(AGGREGATORS)
    try:
        for name in aggs:
            get_aggregator(name)
        for name in designs:
            get_design(name, args.r)
        if args.n < 0 or args.runs < 1 or args.noise < 0 or args.position_bias < 0:
            raise ValueError("--n must be >= 0, --runs >= 1, --noise and --position-bias >= 0")
        if args.k < 2:
            raise ValueError(f"--k (block size) must be >= 2, got {args.k}")
        if args.r < 1:
            raise ValueError(f"--r (replicas) must be >= 1, got {args.r}")
        kind = (
            "perfect"
            if not (args.noise or args.position_bias)
            else (f"noisy (sigma={args.noise:g}, position bias={args.position_bias:g})")
        )
        print(
            f"n={args.n} k={args.k} r={args.r} runs={args.runs} seed={args.seed} "
            f"block ranker: {kind}"
        )
        header = (
            f"{'design':<20} {'aggregator':<14} {'nDCG@10':>8} {'+-95%':>6} {'top-1':>6} "
            f"{'calls':>6} {'depth':>5} {'conn.':>5} {'ms/run':>8}"
        )
        print(header)
        for dname in designs:
            for aname in aggs:
                res = simulate(
                    args.n,
                    args.k,
                    args.r,
                    dname,
                    aname,
                    args.runs,
                    args.seed,
                    noise=args.noise,
                    position_bias=args.position_bias,
                    repair=not args.no_repair,
                )
                shown = dname
                design_obj = get_design(dname, args.r)
                if isinstance(design_obj, AutoDesign):
                    shown = f"auto:{design_obj.choose(args.n, args.k).name}"
                print(
                    f"{shown:<20} {aname:<14} {res.ndcg10:>8.3f} {res.ndcg10_ci95:>6.3f} "
                    f"{res.top1:>6.2f} {res.calls:>6.1f} {res.depth:>5.1f} "
                    f"{res.connected:>5.2f} {1000 * res.seconds_per_run:>8.2f}"
                )
    except (ValueError, TypeError) as exc:
        print(f"rerank-rag simulate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
