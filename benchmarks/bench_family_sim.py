"""First-stage evidence (InsertRank), first-stage fusion and dynamic cut-off on TREC DL19,
under the LLM simulator. **Every LLM figure printed here is SIMULATED.**

    .venv/bin/python benchmarks/bench_family_sim.py                 # everything, ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_family_sim.py --parts fusion --queries 10

DL19 (43 queries, BM25 top-100), :class:`rerank_rag.eval.SimulatedLLM` with the settings
of ``benchmarks/bench_dl19.py`` (per-view noise 0.8 growing by 0.02 per extra passage
shown, persistent per-passage error 0.3), no latency (only quality is measured here).

1. **Fusion** (``FirstStageFusion``): each method ranks every query once; the complete
   rankings are then fused with the BM25 ranking (reciprocal rank, and convex mixes of
   min-max normalised scores with the BM25 scores), with and without a position bias
   in the simulator (``position_bias`` grade units for the first passage shown, falling
   linearly to 0 for the last). The same for a single call over the top 20 / 50 / 100
   ("Drowning in Documents": quality falls as the rerank depth grows).
2. **Evidence** (``FirstStageEvidence``, InsertRank): the stock simulator finds passages
   by their text and does not read the note, so it cannot show an effect. Here it runs
   with a relevance *function* (its documented function mode) that sees the whole
   passage line, note included: the simulated judgement of a passage is its grade
   plus ``lam`` x its min-max normalised BM25 score read from the note
   (``first-stage score: 12.41``). ``lam`` is how much the simulated model trusts the
   number: 0 (ignores it) to 1 grade unit. This is an assumption about models, not a
   measurement of one; it shows what reading the evidence can buy at best, next to the
   token cost and next to fusing the same BM25 signal after the fact (free).
3. **Cut-off** (``DynamicCutoff``): how many candidates a relevant-only TDPart keeps
   per query, and the precision / recall of the kept set against the qrels.

Seeds 0-2 (the simulator's noise); means with the spread (min-max over seeds).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rerank_rag import (  # noqa: E402
    DynamicCutoff,
    FirstStageEvidence,
    JointRanker,
    ListwiseRanker,
    Ranking,
    SetwiseRanker,
    TDPartRanker,
    TourRanker,
)
from rerank_rag.compose import fuse  # noqa: E402
from rerank_rag.eval import evaluate, load_dl19  # noqa: E402
from rerank_rag.eval._simulator import SimulatedLLM, normalise  # noqa: E402

SIM = {"noise": 0.8, "noise_growth": 0.02, "doc_noise": 0.3}
METHODS: dict[str, Callable[[Any], Any]] = {
    "Sliding window 20/10 (RankGPT)": lambda llm: ListwiseRanker(llm),
    "JointRank k20/r4 (relevant-only, PageRank)": lambda llm: JointRanker(llm, design="equi-replicate"),
    "Setwise heapsort c=3, top-10": lambda llm: SetwiseRanker(llm, block_size=4),
    "TourRank-2 (groups of 20)": lambda llm: TourRanker(llm, tournaments=2),
    "TDPart (block 20, depth 10)": lambda llm: TDPartRanker(llm),
}
FUSIONS = [
    ("RRF k=60, w=0.5", "rrf", 0.5),
    ("RRF k=60, w=0.8", "rrf", 0.8),
    ("convex w=0.9", "convex", 0.9),
    ("convex w=0.7", "convex", 0.7),
    ("convex w=0.5", "convex", 0.5),
]


def spread(values: list[float]) -> str:
    m = statistics.mean(values)
    if len(values) < 2:
        return f"{m:.4f}"
    return f"{m:.4f} ({min(values):.3f}-{max(values):.3f})"


def ndcg(run: dict[str, list[str]], ds: Any) -> float:
    return evaluate(run, {q.qid: ds.qrels.get(q.qid, {}) for q in ds.queries}, ["ndcg@10"], threshold=2).means["ndcg@10"]


def rank_all(ds: Any, ranker: Any, parallel: int = 4) -> tuple[dict[str, Ranking], dict[str, float]]:
    def one(q: Any) -> tuple[str, Ranking]:
        return q.qid, ranker.rank(q.text, q.candidates)

    with ThreadPoolExecutor(parallel) as pool:
        out = dict(pool.map(one, ds.queries))
    n = len(out)
    usage = {
        k: sum(getattr(r.usage, k) for r in out.values()) / n
        for k in ("llm_calls", "depth", "prompt_tokens", "completion_tokens", "fallbacks")
    }
    return out, usage


def to_run(ds: Any, rankings: dict[str, Ranking]) -> dict[str, list[str]]:
    return {q.qid: [q.candidates[i].id for i in rankings[q.qid].order] for q in ds.queries}


def corpus_sim(ds: Any, seed: int, bias: float) -> SimulatedLLM:
    return SimulatedLLM(
        ds.qrels, corpus=ds.corpus, queries={q.qid: q.text for q in ds.queries},
        seed=seed, position_bias=bias, **SIM,
    )  # fmt: skip


# -- 1. fusion ----------------------------------------------------------------------------


def part_fusion(ds: Any, seeds: list[int], biases: list[float], only: list[str]) -> dict[str, Any]:
    rows: dict[tuple[str, float], dict[str, list[float]]] = {}
    cost: dict[str, dict[str, float]] = {}
    depth_rows: dict[tuple[int, float], dict[str, list[float]]] = {}
    for bias in biases:
        for seed in seeds:
            with corpus_sim(ds, seed, bias) as sim:
                llm = sim.client(max_concurrency=32, timeout=120.0)
                for name, make in METHODS.items():
                    if only and not any(s in name.lower() for s in only):
                        continue
                    t0 = time.perf_counter()
                    rankings, usage = rank_all(ds, make(llm))
                    cost[name] = usage
                    cell = rows.setdefault((name, bias), {})
                    cell.setdefault("LLM alone", []).append(ndcg(to_run(ds, rankings), ds))
                    for label, method, w in FUSIONS:
                        fused = {
                            q.qid: fuse(rankings[q.qid], q.candidates, method=method, weight=w)
                            for q in ds.queries
                        }
                        cell.setdefault(label, []).append(ndcg(to_run(ds, fused), ds))
                    print(
                        f"bias {bias} seed {seed} {name[:40]:<40} alone {cell['LLM alone'][-1]:.4f} "
                        f"rrf {cell[FUSIONS[0][0]][-1]:.4f} ({time.perf_counter() - t0:.0f} s)",
                        flush=True,
                    )
                # depth: one call over the top-d candidates (the rest follow in BM25 order)
                for d in (20, 50, 100):
                    sub = ds.limit(None)
                    ranker = ListwiseRanker(llm, mode="single")
                    rankings = {}
                    for q in sub.queries:
                        head = q.candidates[:d]
                        r = ranker.rank(q.text, head)
                        order = list(r.order) + list(range(d, len(q.candidates)))
                        n = len(order)
                        rankings[q.qid] = Ranking(tuple(order), tuple(1.0 - k / n for k in range(n)), r.usage)
                    cell = depth_rows.setdefault((d, bias), {})
                    cell.setdefault("LLM alone", []).append(ndcg(to_run(ds, rankings), ds))
                    for label, method, w in FUSIONS[:2]:
                        fused = {q.qid: fuse(rankings[q.qid], q.candidates, method=method, weight=w) for q in ds.queries}
                        cell.setdefault(label, []).append(ndcg(to_run(ds, fused), ds))
                llm.close()
    return {"rows": rows, "cost": cost, "depth": depth_rows}


# -- 2. evidence --------------------------------------------------------------------------

_NOTE = re.compile(r"\s*\((?:BM25|first-stage) score: ([-0-9.e+]+)\)\s*$")


class EvidenceJudge:
    """``relevance(query_text, passage_line)`` for the simulator's function mode: the
    passage's qrels grade plus ``lam`` x its normalised BM25 score read from the note."""

    def __init__(self, ds: Any, lam: float) -> None:
        self.lam = lam
        self.qrels = ds.qrels
        self.by_query: dict[str, tuple[str, list[tuple[str, str]], float, float]] = {}
        for q in ds.queries:
            scores = [c.score for c in q.candidates]
            docs = [(normalise(c.text), c.id) for c in q.candidates]
            self.by_query[normalise(q.text)] = (q.qid, docs, min(scores), max(scores))
        self.misses = 0

    def __call__(self, query_text: str, line: str) -> float:
        entry = self.by_query.get(normalise(query_text))
        if entry is None:
            self.misses += 1
            return 0.0
        qid, docs, lo, hi = entry
        m = _NOTE.search(line)
        text = line[: m.start()] if m else line
        key = normalise(text)[:200]
        docid = next((d for norm, d in docs if norm.startswith(key)), None)
        if docid is None:
            self.misses += 1
            return 0.0
        grade = float(self.qrels.get(qid, {}).get(docid, 0))
        if m and self.lam:
            grade += self.lam * (float(m.group(1)) - lo) / ((hi - lo) or 1.0)
        return grade


def part_evidence(ds: Any, seeds: list[int], lams: list[float]) -> dict[str, Any]:
    makers = {
        "Sliding window 20/10 (RankGPT)": lambda llm: ListwiseRanker(llm),
        "JointRank k20/r4 (relevant-only, PageRank)": lambda llm: JointRanker(llm, design="equi-replicate"),
    }
    rows: dict[tuple[str, str], list[float]] = {}
    tokens: dict[tuple[str, str], float] = {}
    for name, make in makers.items():
        for seed in seeds:
            variants = [("no note", None, 0.0)] + [(f"note, lam={lam:g}", "score", lam) for lam in lams]
            for label, show, lam in variants:
                judge = EvidenceJudge(ds, lam)
                with SimulatedLLM(judge, seed=seed, **SIM) as sim:
                    llm = sim.client(max_concurrency=32, timeout=120.0)
                    ranker = make(llm)
                    if show:
                        ranker = FirstStageEvidence(ranker, show=show, label="BM25")
                    rankings, usage = rank_all(ds, ranker)
                    llm.close()
                score = ndcg(to_run(ds, rankings), ds)
                rows.setdefault((name, label), []).append(score)
                tokens[(name, label)] = usage["prompt_tokens"]
                if label == "no note":
                    for flabel, method, w in (FUSIONS[0], FUSIONS[2], FUSIONS[3]):
                        fused = {q.qid: fuse(rankings[q.qid], q.candidates, method=method, weight=w) for q in ds.queries}
                        rows.setdefault((name, f"no note + {flabel}"), []).append(ndcg(to_run(ds, fused), ds))
                print(f"evidence seed {seed} {name[:30]:<30} {label:<14} nDCG@10 {score:.4f} "
                      f"prompt tokens/q {usage['prompt_tokens']:.0f} misses {judge.misses}", flush=True)
    return {"rows": rows, "tokens": tokens}


# -- 3. cut-off ---------------------------------------------------------------------------


def part_cutoff(ds: Any, seeds: list[int]) -> dict[str, Any]:
    out: dict[str, list[float]] = {}
    for seed in seeds:
        with corpus_sim(ds, seed, 0.0) as sim:
            llm = sim.client(max_concurrency=32, timeout=120.0)
            for ceiling in (None, 10):
                ranker = DynamicCutoff(TDPartRanker(llm, prompt="relevant-only"), floor=1, ceiling=ceiling)
                rankings, usage = rank_all(ds, ranker)
                kept, prec1, prec2, rec = [], [], [], []
                for q in ds.queries:
                    r = rankings[q.qid]
                    ids = [q.candidates[i].id for i in r.order]
                    grades = ds.qrels.get(q.qid, {})
                    rel = {d for d, g in grades.items() if g >= 2}
                    pool = {c.id for c in q.candidates} & rel
                    hit = sum(1 for d in ids if d in rel)
                    kept.append(r.usage.kept)
                    prec1.append(sum(1 for d in ids if grades.get(d, 0) >= 1) / len(ids) if ids else 0.0)
                    prec2.append(hit / len(ids) if ids else 0.0)
                    rec.append(hit / len(pool) if pool else 1.0)
                tag = f"ceiling={ceiling}"
                out.setdefault(f"{tag} kept", []).append(statistics.mean(kept))
                out.setdefault(f"{tag} kept min", []).append(min(kept))
                out.setdefault(f"{tag} kept max", []).append(max(kept))
                out.setdefault(f"{tag} precision1", []).append(statistics.mean(prec1))
                out.setdefault(f"{tag} precision", []).append(statistics.mean(prec2))
                out.setdefault(f"{tag} recall", []).append(statistics.mean(rec))
                print(f"cut-off seed {seed} {tag}: kept {statistics.mean(kept):.1f} (min {min(kept)}, max {max(kept)}) "
                      f"precision {statistics.mean(prec1):.3f} / {statistics.mean(prec2):.3f} "
                      f"recall {statistics.mean(rec):.3f}", flush=True)
            llm.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--biases", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--lams", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--parts", nargs="+", default=["fusion", "evidence", "cutoff"])
    ap.add_argument("--only", nargs="*", default=[], help="fusion: methods whose name contains one of these")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    ds = load_dl19(args.data_dir, depth=100).limit(args.queries)
    base = ndcg(ds.first_stage_run(), ds)
    print(f"DL19: {len(ds.queries)} queries; BM25 nDCG@10 {base:.4f} (measured); everything below is SIMULATED")
    report: dict[str, Any] = {"label": "simulated", "bm25_ndcg@10": base, "seeds": args.seeds, "sim": SIM}
    t0 = time.perf_counter()
    if "fusion" in args.parts:
        res = part_fusion(ds, args.seeds, args.biases, args.only)
        print("\n| method | position bias | LLM alone | " + " | ".join(f for f, _, _ in FUSIONS) + " | calls/q | depth |")
        print("|---|---|---|" + "---|" * len(FUSIONS) + "---|---|")
        for (name, bias), cell in res["rows"].items():
            c = res["cost"][name]
            print(f"| {name} | {bias:g} | {spread(cell['LLM alone'])} | "
                  + " | ".join(spread(cell[f]) for f, _, _ in FUSIONS)
                  + f" | {c['llm_calls']:.0f} | {c['depth']:.1f} |")
        print("\n| single call over the top-d | position bias | LLM alone | " + " | ".join(f for f, _, _ in FUSIONS[:2]) + " |")
        print("|---|---|---|---|---|")
        for (d, bias), cell in res["depth"].items():
            print(f"| d={d} | {bias:g} | {spread(cell['LLM alone'])} | "
                  + " | ".join(spread(cell[f]) for f, _, _ in FUSIONS[:2]) + " |")
        report["fusion"] = {f"{k[0]} | bias {k[1]}": v for k, v in res["rows"].items()}
        report["fusion_depth"] = {f"d={k[0]} | bias {k[1]}": v for k, v in res["depth"].items()}
        report["cost"] = res["cost"]
    if "evidence" in args.parts:
        res = part_evidence(ds, args.seeds, args.lams)
        print("\n| method | variant | nDCG@10 | prompt tokens/q |")
        print("|---|---|---|---|")
        for (name, label), vals in res["rows"].items():
            tok = res["tokens"].get((name, label.split(" + ")[0]), 0)
            print(f"| {name} | {label} | {spread(vals)} | {tok:,.0f} |")
        report["evidence"] = {f"{k[0]} | {k[1]}": v for k, v in res["rows"].items()}
    if "cutoff" in args.parts:
        res = part_cutoff(ds, args.seeds)
        print("\n| TDPart relevant-only + DynamicCutoff(floor=1) | kept/q | precision (grade>=1) | precision (grade>=2) | recall (grade>=2) |")
        print("|---|---|---|---|---|")
        for tag in ("ceiling=None", "ceiling=10"):
            print(f"| {tag} | {spread(res[f'{tag} kept'])} (min {min(res[f'{tag} kept min']):.0f}, "
                  f"max {max(res[f'{tag} kept max']):.0f}) | {spread(res[f'{tag} precision1'])} | "
                  f"{spread(res[f'{tag} precision'])} | {spread(res[f'{tag} recall'])} |")
        report["cutoff"] = res
    print(f"\n(run time {time.perf_counter() - t0:.0f} s; every LLM figure is SIMULATED)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
