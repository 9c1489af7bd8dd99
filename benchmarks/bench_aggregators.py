"""Which JointRank aggregator should be the default? A sweep on DL19 under the simulator.

Every figure is SIMULATED: the block answers come from :class:`rerank_rag.eval.
SimulatedLLM` (true DL19 grades plus noise; not a model). The sweep varies what the
choice could depend on, and scores every aggregator on the *same* block answers:

* noise of the simulated judge (per-view s.d. in grade units): ``exact`` (none: the
  grades, ties in random order), ``low``, ``dl19`` (the values of the preset fitted to
  published DL19 figures), ``high``, and ``v0.1`` (the older default: less per-view
  noise, but a persistent per-passage error and noise growing with the list length);
* position bias (a bonus for being shown first in a block) off and on;
* the block prompt: ``relevant-only`` (JointRank's: the model may leave passages out)
  and ``rankgpt`` (a full permutation);
* the design: k=20, r=4 equi-replicate (20 calls) and the k=10 Latin square (20 calls);
* seeds (simulator noise and block design), reported as the spread.

For each setting and seed the 43 queries are ranked once (BM25 top-100); the
comparisons of each query are captured and handed to every aggregator, so the
aggregators differ only in aggregation. Prints one table per prompt (nDCG@10 mean
over seeds, the best per row in bold) and a summary; ``--markdown`` writes them as a
Markdown fragment, ``--json`` the raw numbers.

    .venv/bin/python benchmarks/bench_aggregators.py                    # full sweep, ~15 min
    .venv/bin/python benchmarks/bench_aggregators.py --quick            # 8 queries, 1 seed

The LLM is not reached over HTTP here: the simulator's ``respond`` is called directly
(the same answers as over HTTP, without the transport), since only quality is measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rerank_rag import Usage  # noqa: E402
from rerank_rag.jointrank import AGGREGATORS, Comparisons, JointRanker, order_from_scores  # noqa: E402
from rerank_rag.llm import Completion, FakeLLM  # noqa: E402

#: Simulated judges: per-view noise s.d. (grade units), its growth with the list
#: length, and a persistent per-(query, passage) error.
NOISE = {
    "exact": {"noise": 0.0, "noise_growth": 0.0, "doc_noise": 0.0},
    "low": {"noise": 0.7, "noise_growth": 0.00192, "doc_noise": 0.0},
    "dl19": {"noise": 1.37, "noise_growth": 0.00192, "doc_noise": 0.0},
    "high": {"noise": 2.0, "noise_growth": 0.00192, "doc_noise": 0.0},
    "v0.1": {"noise": 0.8, "noise_growth": 0.02, "doc_noise": 0.3},
}
#: JointRank settings compared (both cost 20 calls for 100 candidates, one round).
DESIGNS = {
    "k20/r4": {"block_size": 20, "replicas": 4, "design": "equi-replicate"},
    "latin k10": {"block_size": 10, "replicas": 2, "design": "latin"},
}
LABELS = {
    "pagerank": "PageRank",
    "win_rate": "win rate",
    "borda": "Borda",
    "copeland": "Copeland",
    "bradley_terry": "Bradley-Terry",
    "elo": "Elo",
}


@dataclass(frozen=True)
class Setting:
    noise: str
    position_bias: float
    prompt: str
    design: str

    def key(self) -> str:
        return f"{self.prompt}|{self.design}|{self.noise}|pb={self.position_bias:g}"


def default_data_dir() -> Path:
    env = os.environ.get("RERANK_RAG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def capture_comparisons(ds: Any, setting: Setting, seed: int) -> tuple[list[Comparisons], float]:
    """Rank every query once; return each query's comparisons and the listed share."""
    from rerank_rag.eval._simulator import SimulatedLLM

    sim = SimulatedLLM(
        ds.qrels,
        corpus=ds.corpus,
        queries={q.qid: q.text for q in ds.queries},
        position_bias=setting.position_bias,
        seed=seed,
        **NOISE[setting.noise],
    )
    captured: list[Comparisons] = []

    def capture(c: Comparisons) -> list[float]:
        captured.append(c)
        return [0.0] * c.n

    ranker = JointRanker(
        FakeLLM(), prompt=setting.prompt, aggregator=capture, seed=seed, **DESIGNS[setting.design]
    )
    listed = shown = 0
    for q in ds.queries:
        plan = ranker._plan(q.text, list(q.candidates), Usage())
        requests = next(plan)
        while True:
            answers = []
            for req in requests:
                reply = sim.respond({"model": "sim", "messages": list(req.messages), **req.params})
                answers.append(Completion(text=reply.text, top_logprobs=reply.top_logprobs))
            try:
                requests = plan.send(answers)
            except StopIteration:
                break
        c = captured[-1]
        listed += sum(t for _, t in c.rankings)
        shown += sum(len(o) for o, _ in c.rankings)
    if sim.stats["unrecognised"]:
        raise RuntimeError(f"the simulator did not recognise {sim.stats['unrecognised']} prompts")
    return captured, listed / max(1, shown)


def per_query_metrics(ds: Any, comps: Sequence[Comparisons], name: str) -> dict[str, list[float]]:
    from rerank_rag.eval import evaluate

    agg = AGGREGATORS[name]
    run = {}
    for q, c in zip(ds.queries, comps):
        order, _ = order_from_scores(agg(c))
        run[q.qid] = [q.candidates[i].id for i in order]
    res = evaluate(run, ds.qrels, ["ndcg@10", "mrr@10"], threshold=2)
    qids = [q.qid for q in ds.queries]
    return {m: [res.per_query[m][qid] for qid in qids] for m in ("ndcg@10", "mrr@10")}


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    from rerank_rag.eval import load_dl19

    ds = load_dl19(args.data_dir, depth=100).limit(args.queries)
    settings = [
        Setting(noise, pb, prompt, design)
        for prompt in args.prompts
        for design in args.designs
        for noise in args.noise
        for pb in args.position_bias
    ]
    out: dict[str, Any] = {"settings": {}, "queries": len(ds.queries), "seeds": args.seeds}
    t_start = time.perf_counter()
    for i, st in enumerate(settings, 1):
        cell: dict[str, Any] = {"per_seed": {a: [] for a in args.aggregators}, "paired": {}}
        per_query: dict[str, list[float]] = {a: [] for a in args.aggregators}
        listed_share = []
        for seed in args.seeds:
            comps, share = capture_comparisons(ds, st, seed)
            listed_share.append(share)
            for a in args.aggregators:
                m = per_query_metrics(ds, comps, a)
                cell["per_seed"][a].append(statistics.fmean(m["ndcg@10"]))
                per_query[a].extend(m["ndcg@10"])
                cell.setdefault("mrr", {}).setdefault(a, []).append(statistics.fmean(m["mrr@10"]))
        cell["listed_share"] = statistics.fmean(listed_share)
        base = per_query.get("pagerank")
        for a in args.aggregators:
            if base is None:
                break
            diffs = [x - y for x, y in zip(per_query[a], base)]
            sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
            cell["paired"][a] = {
                "mean_minus_pagerank": statistics.fmean(diffs),
                "ci95": 1.96 * sd / math.sqrt(len(diffs)),
            }
        out["settings"][st.key()] = cell
        best = max(args.aggregators, key=lambda a: statistics.fmean(cell["per_seed"][a]))
        print(
            f"[{i}/{len(settings)}] {st.key():<40} listed {cell['listed_share']:.2f}  "
            + "  ".join(
                f"{a[:8]} {statistics.fmean(cell['per_seed'][a]):.4f}" for a in args.aggregators
            )
            + f"  best {best}  ({time.perf_counter() - t_start:.0f} s)",
            flush=True,
        )
    out["elapsed_s"] = time.perf_counter() - t_start
    return out


def _mean(xs: Sequence[float]) -> float:
    return statistics.fmean(xs)


def _sd(xs: Sequence[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def summarise(res: dict[str, Any], aggs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per prompt (and overall): mean nDCG@10, mean rank, settings won, worst gap."""
    groups: dict[str, list[dict[str, Any]]] = {"all settings": list(res["settings"].values())}
    for key, cell in res["settings"].items():
        groups.setdefault(f"{key.split('|')[0]} prompt", []).append(cell)
    summary = {}
    for gname, cells in groups.items():
        stats: dict[str, Any] = {a: {"mean": [], "rank": [], "wins": 0, "gap": []} for a in aggs}
        for cell in cells:
            means = {a: _mean(cell["per_seed"][a]) for a in aggs}
            best = max(means.values())
            ranked = sorted(aggs, key=lambda a: -means[a])
            for a in aggs:
                stats[a]["mean"].append(means[a])
                stats[a]["rank"].append(ranked.index(a) + 1)
                stats[a]["gap"].append(best - means[a])
            stats[ranked[0]]["wins"] += 1
        summary[gname] = {
            a: {
                "mean_ndcg10": _mean(s["mean"]),
                "mean_rank": _mean(s["rank"]),
                "settings_best": s["wins"],
                "worst_gap_to_best": max(s["gap"]),
                "settings": len(cells),
            }
            for a, s in stats.items()
        }
    return summary


def markdown(res: dict[str, Any], aggs: Sequence[str], prompts: Sequence[str]) -> str:
    lines = []
    seeds = ", ".join(str(s) for s in res["seeds"])
    lines.append(
        f"DL19 ({res['queries']} queries, BM25 top-100), **simulated** block answers, seeds "
        f"{seeds} (simulator noise and block design); nDCG@10 averaged over seeds, ± the "
        "standard deviation over seeds; the best aggregator of each row in bold. "
        "*listed* = share of the shown passages the block answers listed (the rest were "
        "left out as irrelevant)."
    )
    lines.append("")
    head = "| design | judge | pos. bias | listed | " + " | ".join(LABELS.get(a, a) for a in aggs) + " |"
    for prompt in prompts:
        lines.append(f"**{prompt} prompt**")
        lines.append("")
        lines.append(head)
        lines.append("|" + "---|" * (4 + len(aggs)))
        for key, cell in res["settings"].items():
            p, design, noise, pb = key.split("|")
            if p != prompt:
                continue
            means = {a: _mean(cell["per_seed"][a]) for a in aggs}
            best = max(means.values())
            cells = []
            for a in aggs:
                txt = f"{means[a]:.4f} ± {_sd(cell['per_seed'][a]):.3f}"
                cells.append(f"**{txt}**" if means[a] == best else txt)
            lines.append(
                f"| {design} | {noise} | {pb.split('=')[1]} | {cell['listed_share']:.2f} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    summary = summarise(res, aggs)
    lines.append(
        "Summary: mean nDCG@10 over the settings, mean rank among the six (1 = best), "
        "settings where the aggregator was best, and its largest shortfall from the "
        "best of a setting."
    )
    lines.append("")
    lines.append("| settings | aggregator | mean nDCG@10 | mean rank | best in | worst gap |")
    lines.append("|---|---|---|---|---|---|")
    for gname, per in summary.items():
        for a in sorted(aggs, key=lambda a: per[a]["mean_rank"]):
            s = per[a]
            lines.append(
                f"| {gname} | {LABELS.get(a, a)} | {s['mean_ndcg10']:.4f} | {s['mean_rank']:.2f} | "
                f"{s['settings_best']}/{s['settings']} | {s['worst_gap_to_best']:.4f} |"
            )
    lines.append("")
    return "\n".join(lines)


def synthetic(runs: int, aggs: Sequence[str]) -> str:
    """The reference's synthetic protocol (``rerank-rag simulate``): distinct relevance
    1..n, gain 2^rel, a block ranker with Gaussian noise in units of the range."""
    from rerank_rag.jointrank import simulate

    lines = [
        f"Synthetic protocol (`rerank-rag simulate`, {runs} runs): gold = a random "
        "permutation of 1..100 (no ties), gain 2^rel, every block fully ranked by "
        "relevance + N(0, s²) in units of the whole range; nDCG@10.",
        "",
        "| design | s | " + " | ".join(LABELS.get(a, a) for a in aggs) + " |",
        "|" + "---|" * (2 + len(aggs)),
    ]
    for dname, (k, r, design) in (("k20/r4", (20, 4, "auto")), ("latin k10", (10, 2, "latin"))):
        for noise in (0.0, 0.05, 0.1, 0.2):
            vals = {a: simulate(100, k, r, design, a, runs, 0, noise=noise).ndcg10 for a in aggs}
            best = max(vals.values())
            cells = [f"**{vals[a]:.3f}**" if vals[a] == best else f"{vals[a]:.3f}" for a in aggs]
            lines.append(f"| {dname} | {noise:g} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--queries", type=int, default=None, help="first N queries only")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--noise", type=_names, default=list(NOISE), help=f"of {', '.join(NOISE)}")
    p.add_argument("--position-bias", type=_floats, default=[0.0, 0.5])
    p.add_argument("--prompts", type=_names, default=["relevant-only", "rankgpt"])
    p.add_argument("--designs", type=_names, default=list(DESIGNS), help=f"of {', '.join(DESIGNS)}")
    p.add_argument("--aggregators", type=_names, default=list(AGGREGATORS))
    p.add_argument("--synthetic-runs", type=int, default=200, help="runs of the synthetic table (0: skip)")
    p.add_argument("--quick", action="store_true", help="8 queries, seed 0, dl19 judge only")
    p.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    p.add_argument("--from-json", type=Path, default=None, help="render a --json file instead of sweeping")
    p.add_argument(
        "--update-docs", action="store_true",
        help="write the tables into docs/benchmarks.md (section aggregator-sweep)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.quick:
        args.queries, args.seeds, args.noise, args.synthetic_runs = 8, [0], ["dl19"], 20
    for name in args.noise:
        if name not in NOISE:
            p.error(f"unknown --noise {name!r}; choose from {', '.join(NOISE)}")
    for name in args.designs:
        if name not in DESIGNS:
            p.error(f"unknown --designs {name!r}; choose from {', '.join(DESIGNS)}")
    if args.from_json:
        res = json.loads(args.from_json.read_text(encoding="utf-8"))
        args.aggregators = list(next(iter(res["settings"].values()))["per_seed"])
        args.prompts = list(dict.fromkeys(k.split("|")[0] for k in res["settings"]))
    else:
        if not (args.data_dir / "trec-dl19").exists():
            print(f"DL19 data not found under {args.data_dir} (set RERANK_RAG_DATA)", file=sys.stderr)
            return 2
        print(
            f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
            f"{len(args.prompts) * len(args.designs) * len(args.noise) * len(args.position_bias)} "
            f"settings x {len(args.seeds)} seeds",
            flush=True,
        )
        res = sweep(args)
        res["simulator_noise"] = {k: NOISE[k] for k in args.noise}
        res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        res["load"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    md = markdown(res, args.aggregators, args.prompts)
    if args.synthetic_runs:
        md += "\n" + synthetic(args.synthetic_runs, args.aggregators)
    print()
    print(md)
    if "elapsed_s" in res:
        print(f"sweep took {res['elapsed_s']:.0f} s")
    if args.markdown:
        args.markdown.write_text(md, encoding="utf-8")
    if args.json and not args.from_json:
        res["summary"] = summarise(res, args.aggregators)
        args.json.write_text(json.dumps(res, indent=1), encoding="utf-8")
    if args.update_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _doc_sections import replace_section

        judges = "; ".join(
            f"`{k}`: noise {v['noise']:g}, growth {v['noise_growth']:g}, per-passage error "
            f"{v['doc_noise']:g}"
            for k, v in res.get("simulator_noise", NOISE).items()
        )
        head = (
            "Generated by `python benchmarks/bench_aggregators.py --update-docs`"
            + (f" on {res['date']} (load average {res['load']}, 2 shared CPUs; sweep "
               f"{res['elapsed_s'] / 60:.0f} min)" if "date" in res else "")
            + f". Simulated judges ({judges}); position bias in grade units for the "
            "first passage shown, falling linearly to 0 for the last."
        )  # fmt: skip
        replace_section(REPO / "docs" / "benchmarks.md", "aggregator-sweep", head + "\n\n" + md)
        print("wrote docs/benchmarks.md (section aggregator-sweep)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
