"""Fit the ``dl19`` simulator preset to published DL19 figures, and print the residuals.

Targets (TREC DL19, BM25 top-100, nDCG@10), from ``rerank_rag.eval._sim_config.DL19_TARGETS``:
single pass over 100 passages 0.5768 and JointRank 0.7088 (JointRank paper, gpt-4.1-mini),
RankGPT sliding window 20/10 0.7345 (rank_llm's reproduction, gpt-4o-mini).

The simulator scores a passage shown among ``m`` as ``grade + N(0, sd(m)^2) +
position_bias * (1 - pos / (m - 1))`` with ``sd(m)^2 = noise^2 (1 + noise_growth (m - 1))``
(``doc_noise`` is kept at 0). Every sliding window and JointRank block shows 20
passages, the single pass 100, so the three targets pin down ``sd(20)``, ``sd(100)`` and
``position_bias``:

1. ``sd(20)`` and ``position_bias``: the sliding window and JointRank (both only ever
   show 20 passages) are measured on a grid of both, a quadratic surface is fitted to
   each method's nDCG@10 (least squares, which also averages out the simulation noise),
   and the point where both surfaces meet their targets is solved for;
2. ``sd(100)``: the same with a quadratic curve of the single pass over ``sd(100)``;
3. ``noise`` and ``noise_growth`` from ``sd(20)`` and ``sd(100)`` exactly.

Each grid point averages ``--seeds`` simulator seeds (the same seeds at every point); the
final figures are then measured on those seeds and on as many fresh
ones (held out), through the in-process simulator (same answers as over HTTP, no
latency). Every figure is SIMULATED.

    .venv/bin/python benchmarks/calibrate_simulator.py              # about 15 min on 2 cores
    .venv/bin/python benchmarks/calibrate_simulator.py --check      # only the residuals of the preset
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METHODS = {
    "single": ("single", {"prompt": "rankgpt"}),
    # the published figure is the paper's JointRank: k20/r4, relevant-only, PageRank (pinned:
    # JointRanker's default aggregator is Borda since the aggregator sweep)
    "jointrank": ("jointrank", {"aggregator": "pagerank"}),
    "sliding": ("sliding", {"prompt": "rankgpt", "window": 20, "step": 10}),
}


def default_data_dir() -> Path:
    env = os.environ.get("RERANK_RAG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


class Evaluator:
    def __init__(self, data_dir: Path) -> None:
        from rerank_rag.eval import load_dl19

        self.ds = load_dl19(data_dir, depth=100)
        self.topics = {q.qid: q.text for q in self.ds.queries}
        self.calls = 0

    def ndcg(self, method: str, seed: int, **settings: float) -> float:
        from rerank_rag.eval import evaluate, rank_dataset
        from rerank_rag.eval._methods import build_method
        from rerank_rag.eval._simulator import SimulatedLLM

        name, options = METHODS[method]
        sim = SimulatedLLM(self.ds.qrels, corpus=self.ds.corpus, queries=self.topics, preset="dl19",
                           doc_noise=0.0, seed=seed, **settings)  # fmt: skip
        ranker = build_method(name, dict(options, seed=seed), sim.in_process_llm())
        rows = rank_dataset(ranker, self.ds)
        if any(r["error"] for r in rows) or sim.stats["unrecognised"]:
            raise RuntimeError(f"{method}: failed queries or unrecognised prompts: {sim.stats}")
        self.calls += 1
        run = {r["qid"]: r["docids"] for r in rows}
        return evaluate(run, self.ds.qrels, ["ndcg@10"], threshold=2).means["ndcg@10"]

    def mean(self, method: str, seeds: list[int], **settings: float) -> float:
        return statistics.fmean(self.ndcg(method, s, **settings) for s in seeds)


def quadratic_fit(xs: list[tuple[float, ...]], ys: list[float]) -> Any:
    """Least-squares quadratic in 1 or 2 variables; returns ``f(*x)`` (vectorised) and the RMS residual."""
    import numpy as np

    X = np.asarray(xs, dtype=float)

    def features(*cols: Any) -> Any:
        cols = [np.asarray(c, dtype=float) for c in cols]
        one = np.ones_like(cols[0])
        if len(cols) == 1:
            (a,) = cols
            return np.stack([one, a, a * a], axis=-1)
        a, b = cols
        return np.stack([one, a, b, a * a, b * b, a * b], axis=-1)

    A = features(*X.T)
    coef, *_ = np.linalg.lstsq(A, np.asarray(ys), rcond=None)
    rms = float(np.sqrt(np.mean((A @ coef - np.asarray(ys)) ** 2)))
    return (lambda *x: features(*x) @ coef), rms


def split_noise(sd20: float, sd100: float) -> tuple[float, float]:
    """``(noise, noise_growth)`` with ``noise^2 (1 + g (m - 1)) = sd(m)^2`` at m = 20 and 100."""
    a, b = sd20**2, sd100**2
    noise2 = (99 * a - 19 * b) / 80
    if noise2 <= 0:
        raise ValueError(f"sd(100)={sd100:.3f} grows too fast over sd(20)={sd20:.3f} for this noise model")
    return math.sqrt(noise2), (a / noise2 - 1) / 19


SD20_GRID = [1.1, 1.2, 1.3, 1.4, 1.5]
PB_GRID = [0.0, 0.15, 0.3, 0.45]
SD100_FACTORS = [1.0, 1.05, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8]  # sd(100) / sd(20): the single pass is never less noisy


def fit(ev: Evaluator, targets: dict[str, float], seeds: list[int], log: Any,
        reuse: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    import numpy as np

    if reuse is not None:  # the 20-passage grid of an earlier run (same seeds: same numbers)
        pts = [tuple(p) for p in reuse["points"]]
        got = {"sliding": list(reuse["sliding"]), "jointrank": list(reuse["jointrank"])}
        log(f"reusing the sd20 x position_bias grid ({len(pts)} points)")
    else:
        pts, got = [], {"sliding": [], "jointrank": []}
        for sd20 in SD20_GRID:
            for pb in PB_GRID:
                pts.append((sd20, pb))
                for m in got:
                    got[m].append(ev.mean(m, seeds, noise=sd20, noise_growth=0.0, position_bias=pb))
                log(f"  sd20={sd20:.2f} pb={pb:.2f}: sliding {got['sliding'][-1]:.4f} jointrank {got['jointrank'][-1]:.4f}")
    surf = {m: quadratic_fit(pts, got[m]) for m in got}
    sd_axis = sorted({p[0] for p in pts})
    pb_axis = sorted({p[1] for p in pts})
    sd, pb = np.meshgrid(np.linspace(sd_axis[0], sd_axis[-1], 601), np.linspace(0.0, pb_axis[-1], 451))
    loss = sum((surf[m][0](sd, pb) - targets[m]) ** 2 for m in got)
    i = np.unravel_index(np.argmin(loss), loss.shape)
    sd20, pb_best = float(sd[i]), float(pb[i])
    log(f"surfaces (RMS misfit sliding {surf['sliding'][1]:.4f}, jointrank {surf['jointrank'][1]:.4f}): "
        f"sd20={sd20:.4f} position_bias={pb_best:.4f}")  # fmt: skip
    sd100_grid = [sd20 * f for f in SD100_FACTORS]
    single = [ev.mean("single", seeds, noise=s, noise_growth=0.0, position_bias=pb_best) for s in sd100_grid]
    for s100, v in zip(sd100_grid, single):
        log(f"  sd100={s100:.3f}: single {v:.4f}")
    curve, rms = quadratic_fit([(s,) for s in sd100_grid], single)
    grid = np.linspace(sd100_grid[0], sd100_grid[-1], 2801)
    sd100 = float(grid[np.argmin((curve(grid) - targets["single"]) ** 2)])
    log(f"curve (RMS misfit {rms:.4f}): sd100={sd100:.4f}")
    noise, growth = split_noise(sd20, sd100)
    return {"noise": noise, "noise_growth": growth, "position_bias": pb_best, "sd20": sd20, "sd100": sd100,
            "grid20": {"points": pts, **got}, "grid100": {"points": sd100_grid, "single": single},
            "surface_rms": {"sliding": surf["sliding"][1], "jointrank": surf["jointrank"][1], "single": rms}}  # fmt: skip


def residuals(ev: Evaluator, settings: dict[str, float], targets: dict[str, float], seeds: list[int]) -> dict[str, Any]:
    out = {}
    for m in METHODS:
        vals = [ev.ndcg(m, s, **settings) for s in seeds]
        mean = statistics.fmean(vals)
        out[m] = {"mean": mean, "sd_over_seeds": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                  "target": targets[m], "residual": mean - targets[m], "per_seed": vals}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--seeds", type=int, default=6, help="simulator seeds per grid point (default 6)")
    p.add_argument("--check-seeds", type=int, default=10, help="seeds for the residuals, fit and held out each (default 10)")
    p.add_argument("--reuse-grid", type=Path, default=None, help="take the 20-passage grid from an earlier --json")
    p.add_argument("--check", action="store_true", help="only measure the residuals of the current dl19 preset")
    p.add_argument("--json", type=Path, default=None, help="write the fit and residuals here")
    args = p.parse_args(argv)
    if not (args.data_dir / "trec-dl19").is_dir():
        print(f"calibrate_simulator: DL19 data not found at {args.data_dir} (set --data-dir or RERANK_RAG_DATA)")
        return 0
    from rerank_rag.eval._sim_config import DL19_TARGETS, get_preset

    targets = {m: v for m, (v, _) in DL19_TARGETS.items()}
    ev = Evaluator(args.data_dir)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    fit_seeds = list(range(args.seeds))
    held_out = list(range(1000, 1000 + args.check_seeds))
    if args.check:
        pr = get_preset("dl19")
        settings = {"noise": pr.noise, "noise_growth": pr.noise_growth, "position_bias": pr.position_bias}
        fitted: dict[str, Any] = dict(settings)
    else:
        log(f"fitting on seeds {fit_seeds}")
        reuse = json.loads(args.reuse_grid.read_text())["fitted"]["grid20"] if args.reuse_grid else None
        fitted = fit(ev, targets, fit_seeds, log, reuse)
        settings = {k: fitted[k] for k in ("noise", "noise_growth", "position_bias")}
    log(f"settings: {json.dumps({k: round(v, 4) for k, v in settings.items()})}; measuring residuals")
    res_fit = residuals(ev, settings, targets, list(range(args.check_seeds)))
    res_out = residuals(ev, settings, targets, list(range(1000, 1000 + args.check_seeds)))
    print()
    print("SIMULATED (preset dl19 fit): DL19 BM25 top-100, nDCG@10, 43 queries")
    print(f"| method | published | seeds 0-{args.check_seeds - 1} (mean +- sd) | residual | held-out seeds 1000-{999 + args.check_seeds} (mean +- sd) | residual |")
    print("|---|---|---|---|---|---|")
    for m in METHODS:
        a, b = res_fit[m], res_out[m]
        print(f"| {m} | {targets[m]:.4f} | {a['mean']:.4f} +- {a['sd_over_seeds']:.4f} | {a['residual']:+.4f} "
              f"| {b['mean']:.4f} +- {b['sd_over_seeds']:.4f} | {b['residual']:+.4f} |")  # fmt: skip
    print(f"\nnoise={settings['noise']:.4f} noise_growth={settings['noise_growth']:.4f} "
          f"position_bias={settings['position_bias']:.4f} doc_noise=0 "
          f"({ev.calls} simulated evaluations, {time.perf_counter() - t0:.0f} s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"fitted": fitted, "targets": targets, "fit_seeds": fit_seeds,
                                         "held_out_seeds": held_out, "fit": res_fit, "held_out": res_out},
                                        indent=1))  # fmt: skip
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
