"""The quality-cost frontier of every reranking method on TREC DL19 (BM25 top-100).

**Every LLM figure is SIMULATED**: the LLM is :class:`rerank_rag.eval.SimulatedLLM` at
its default judgement settings (true DL19 grades plus noise; not a model), with the
latency model below. For each method and main setting, over seeds 0-2 (simulator noise,
and the method's own seed where it has one), it reports nDCG@10, MRR@10, LLM calls,
sequential depth, prompt and completion tokens per query, and the wall time per query
under the latency model, as a table and as a plot (quality against wall time and
against tokens, with the Pareto frontier of each).

Wall time per query = the ranker's own CPU time + for every sequential round of calls,
the time to serve that round's calls with at most ``--concurrency`` in flight (20, the
default of :class:`~rerank_rag.llm.OpenAICompatibleLLM`), each call taking the latency
model's time for its prompt and completion tokens. Queries are timed one at a time.
The LLM is called in process (the simulator's ``respond``), not over HTTP, so a sweep of
~1.5 million simulated calls takes minutes instead of days; ``--check-http N`` runs the
first N queries of every LLM method once more through the real OpenAI client and the
simulator's HTTP server and checks that the rankings and token counts are identical.

Adding a method is one entry in :data:`METHODS`.

    .venv/bin/python benchmarks/bench_frontier.py                        # ~30-40 min on 2 busy cores
    .venv/bin/python benchmarks/bench_frontier.py --queries 5 --seeds 0 --skip all-pairs
    .venv/bin/python benchmarks/bench_frontier.py --update-docs          # docs/benchmarks.md + plot
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rerank_rag import FakeLLM, Usage  # noqa: E402
from rerank_rag.llm import Completion  # noqa: E402

#: Seconds per call, per prompt token and per completion token: the latency model of the
#: DL19 table (``bench_dl19.py``), used when the simulator's default preset has none.
HOSTED_LATENCY = {"per_call": 0.25, "per_input_token": 0.0001, "per_output_token": 0.01}


@dataclass(frozen=True)
class Method:
    """One row of the frontier.

    Attributes:
        label: the row name.
        family: for the plot's colours and the table's grouping.
        build: ``build(llm, seed) -> ranker`` (``None`` for the first stage).
        kind: ``"llm"`` (simulated LLM calls), ``"local"`` (a local model: run for real,
            timed on this machine, seed-independent) or ``"first-stage"``.
        max_seeds: run only the first this many seeds (for the very expensive rows).
    """

    label: str
    family: str
    build: Callable[[Any, int], Any] | None
    kind: str = "llm"
    max_seeds: int | None = None


def _jr(**kw: Any) -> Callable[[Any, int], Any]:
    def build(llm: Any, seed: int) -> Any:
        from rerank_rag import JointRanker

        return JointRanker(llm, seed=seed, **kw)

    return build


def _lw(**kw: Any) -> Callable[[Any, int], Any]:
    def build(llm: Any, seed: int) -> Any:
        from rerank_rag import ListwiseRanker

        return ListwiseRanker(llm, **kw)

    return build


def _make(cls_name: str, **kw: Any) -> Callable[[Any, int], Any]:
    """A ranker from the top-level package by class name (``seed`` passed if it takes one)."""

    def build(llm: Any, seed: int) -> Any:
        import inspect

        import rerank_rag

        cls = getattr(rerank_rag, cls_name)
        extra = {"seed": seed} if "seed" in inspect.signature(cls).parameters else {}
        return cls(llm, **extra, **kw)

    return build


def _minilm(llm: Any, seed: int) -> Any:
    from rerank_rag import MiniLMScorer, PointwiseRanker

    return PointwiseRanker(MiniLMScorer())


METHODS: list[Method] = [
    Method("BM25 first stage (no reranking)", "first stage", None, kind="first-stage"),
    Method("MiniLM int8 bi-encoder (local model)", "pointwise", _minilm, kind="local"),
    Method("LLM pointwise yes/no (first-token logprobs)", "pointwise", _make("LLMPointwiseRanker")),
    Method("Listwise single pass (100 in one call)", "listwise", _lw(mode="single")),
    Method("Listwise sliding window 20/10 (RankGPT)", "listwise", _lw()),
    Method("Listwise sliding window 20/10 (first-token)", "listwise", _lw(prompt="first-token")),
    Method("JointRank k20/r4 (Borda, default)", "JointRank", _jr()),
    Method("JointRank k20/r4 (PageRank, the paper's)", "JointRank", _jr(aggregator="pagerank")),
    Method("JointRank Latin k10 (Borda)", "JointRank", _jr(block_size=10, replicas=2, design="latin")),
    Method("PRP all-pairs (win rate)", "pairwise", _make("PairwiseRanker", method="allpair")),
    Method("PRP heapsort top-10", "pairwise", _make("PairwiseRanker")),
    Method("PRP bubblesort top-10", "pairwise", _make("PairwiseRanker", method="bubblesort")),
    Method("Setwise heapsort c=3, top-10", "setwise", _make("SetwiseRanker")),
    Method("Setwise bubblesort c=3, top-10", "setwise", _make("SetwiseRanker", method="bubblesort")),
    Method("TourRank-1 (groups of 20)", "tournament", _make("TourRanker", tournaments=1)),
    Method("TourRank-2 (groups of 20)", "tournament", _make("TourRanker", tournaments=2)),
    Method("TourRank-5 (groups of 20)", "tournament", _make("TourRanker", tournaments=5)),
    Method("TDPart (block 20, head 10)", "top-down", _make("TDPartRanker")),
]

COLOURS = {
    "first stage": "#777777",
    "pointwise": "#8c564b",
    "listwise": "#1f77b4",
    "JointRank": "#d62728",
    "pairwise": "#9467bd",
    "setwise": "#2ca02c",
    "tournament": "#ff7f0e",
    "top-down": "#17becf",
}


def default_data_dir() -> Path:
    env = os.environ.get("RERANK_RAG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


# --------------------------------------------------------------------- the simulator


def make_sim(ds: Any, seed: int) -> Any:
    """The simulator at its default judgement settings, with a latency model."""
    from rerank_rag.eval._simulator import LatencyModel, SimulatedLLM

    probe = SimulatedLLM(ds.qrels, corpus={}, queries={})
    latency = getattr(probe, "latency", None)
    if latency is None or not any(
        (latency.per_call, latency.per_input_token, latency.per_output_token)
    ):
        latency = LatencyModel(**HOSTED_LATENCY)
    return SimulatedLLM(
        ds.qrels,
        corpus=ds.corpus,
        queries={q.qid: q.text for q in ds.queries},
        seed=seed,
        latency=latency,
    )


def makespan(durations: Sequence[float], slots: int | None) -> float:
    """Time to serve calls in order with at most ``slots`` in flight (FIFO)."""
    if not durations:
        return 0.0
    if slots is None or slots >= len(durations):
        return max(durations)
    free = [0.0] * slots
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def run_query(ranker: Any, query: Any, sim: Any, slots: int | None) -> dict[str, Any]:
    """Drive one ranker's plan for one query against the simulator, in process."""
    usage = Usage()
    cands = list(query.candidates)
    plan = ranker._plan(query.text, cands, usage)
    rounds = calls = prompt_tokens = completion_tokens = 0
    wall = 0.0
    cpu = 0.0
    t0 = time.process_time()
    try:
        batch = next(plan)
        while True:
            reqs = list(batch)
            cpu += time.process_time() - t0
            outs: list[Any] = []
            delays = []
            for req in reqs:
                reply = sim.respond({"model": "sim", "messages": list(req.messages), **req.params})
                if reply.status != 200 or reply.reset:
                    raise RuntimeError(f"simulator fault without fault injection: {reply}")
                outs.append(
                    Completion(
                        text=reply.text,
                        prompt_tokens=reply.prompt_tokens or 0,
                        completion_tokens=reply.completion_tokens or 0,
                        top_logprobs=reply.top_logprobs,
                    )
                )
                delays.append(reply.delay)
                prompt_tokens += reply.prompt_tokens or 0
                completion_tokens += reply.completion_tokens or 0
            if reqs:
                rounds += 1
                calls += len(reqs)
                wall += makespan(delays, slots)
            t0 = time.process_time()
            batch = plan.send(outs)
    except StopIteration as stop:
        result = stop.value
    cpu += time.process_time() - t0
    order = list(result[0])
    return {
        "order": [cands[i].id for i in order],
        "calls": calls,
        "depth": rounds,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "wall_s": wall + cpu,
        "cpu_s": cpu,
    }


# --------------------------------------------------------------------- the sweep


def evaluate_run(ds: Any, run: dict[str, list[str]]) -> dict[str, float]:
    from rerank_rag.eval import evaluate

    res = evaluate(run, ds.qrels, ["ndcg@10", "mrr@10"], threshold=2)
    return {"ndcg@10": res.means["ndcg@10"], "mrr@10": res.means["mrr@10"]}


def run_method(ds: Any, m: Method, seeds: Sequence[int], slots: int | None) -> dict[str, Any]:
    per_seed = []
    todo = seeds[: m.max_seeds] if m.kind == "llm" else seeds[:1]
    for seed in todo:
        run: dict[str, list[str]] = {}
        cost = {"calls": 0.0, "depth": 0.0, "prompt_tokens": 0.0, "completion_tokens": 0.0}
        walls: list[float] = []
        cpus: list[float] = []
        if m.kind == "first-stage":
            for q in ds.queries:
                run[q.qid] = [c.id for c in q.candidates]
                walls.append(0.0)
        elif m.kind == "local":
            assert m.build is not None
            ranker = m.build(None, seed)
            ranker.rank(ds.queries[0].text, list(ds.queries[0].candidates))  # load the model
            for q in ds.queries:
                t0 = time.perf_counter()
                res = ranker.rank(q.text, list(q.candidates))
                walls.append(time.perf_counter() - t0)
                run[q.qid] = [q.candidates[i].id for i in res.order]
        else:
            assert m.build is not None
            sim = make_sim(ds, seed)
            ranker = m.build(FakeLLM(), seed)
            for q in ds.queries:
                r = run_query(ranker, q, sim, slots)
                run[q.qid] = r["order"]
                for k in cost:
                    cost[k] += r[k]
                walls.append(r["wall_s"])
                cpus.append(r["cpu_s"])
        nq = len(ds.queries)
        entry = evaluate_run(ds, run)
        entry.update({k: v / nq for k, v in cost.items()})
        entry["wall_s"] = statistics.fmean(walls)
        entry["cpu_ms"] = 1000 * statistics.fmean(cpus) if cpus else None
        entry["seed"] = seed
        per_seed.append(entry)
    return {"method": m.label, "family": m.family, "kind": m.kind, "per_seed": per_seed}


def summary(row: dict[str, Any], key: str) -> tuple[float, float, float]:
    vals = [s[key] for s in row["per_seed"]]
    return statistics.fmean(vals), min(vals), max(vals)


def check_http(ds: Any, methods: Sequence[Method], queries: int, slots: int | None) -> None:
    """The in-process calls give the same rankings and tokens as the real HTTP path."""
    from rerank_rag.eval._simulator import SimulatedLLM

    seed = 0
    direct_sim = make_sim(ds, seed)
    with SimulatedLLM(
        ds.qrels,
        corpus=ds.corpus,
        queries={q.qid: q.text for q in ds.queries},
        seed=seed,
        latency=direct_sim.latency.__class__(),  # same judgements, no sleeping over HTTP
    ) as http_sim:
        llm = http_sim.client(max_concurrency=20, timeout=120.0)
        for m in methods:
            if m.kind != "llm" or m.build is None:
                continue
            for q in ds.queries[:queries]:
                direct = run_query(m.build(FakeLLM(), seed), q, direct_sim, slots)
                res = m.build(llm, seed).rank(q.text, list(q.candidates))
                order = [q.candidates[i].id for i in res.order]
                same = (
                    order == direct["order"]
                    and res.usage.prompt_tokens == direct["prompt_tokens"]
                    and res.usage.completion_tokens == direct["completion_tokens"]
                    and res.usage.llm_calls == direct["calls"]
                    and res.usage.depth == direct["depth"]
                )
                if not same:
                    raise SystemExit(f"--check-http: {m.label!r} differs over HTTP on {q.qid}")
            print(f"  http check ok: {m.label}", flush=True)
        llm.close()


# --------------------------------------------------------------------- output


def _pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points not beaten by a cheaper-or-equal point with higher quality."""
    front = []
    best = -1.0
    for x, y, label in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y, label))
            best = y
    return front


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    llm_rows = [r for r in rows if r["kind"] == "llm"]
    time_front = {p[2] for p in _pareto([(summary(r, "wall_s")[0], summary(r, "ndcg@10")[0], r["method"]) for r in llm_rows])}
    tok_front = {
        p[2]
        for p in _pareto(
            [
                (summary(r, "prompt_tokens")[0] + summary(r, "completion_tokens")[0], summary(r, "ndcg@10")[0], r["method"])
                for r in llm_rows
            ]
        )
    }
    lines = [
        "## Quality-cost frontier: every method on DL19",
        "",
        "> **Simulated.** LLM rows come from `SimulatedLLM` at its default judgement settings "
        f"({meta['sim']}); the first-stage and MiniLM rows are measured. "
        "Generated by `python benchmarks/bench_frontier.py --update-docs` "
        f"on {meta['date']}, commit {meta['commit']}, {meta['cpus']} CPUs (load average "
        f"{meta['load']}); run time {meta['minutes']:.0f} min.",
        "",
        f"TREC DL19, {meta['queries']} queries, BM25 top-100 reranked, passages truncated to 300 "
        f"tokens. Seeds {', '.join(map(str, meta['seeds']))} (simulator noise, and the method's "
        "own seed where it has one): nDCG@10 is the mean with the min-max over seeds; the cost "
        "columns are means per query. **s/query** is the wall time per query under the latency "
        f"model ({meta['latency']}) with at most {meta['slots']} calls in flight (the client's "
        "default), plus the ranker's own CPU time; *depth* = sequential rounds of calls. "
        "**T** marks the frontier for a latency budget (no method is both faster and better), "
        "**K** the frontier for a token budget. MiniLM's s/query is its measured time on this "
        "shared machine.",
        "",
        "How methods compare depends on the simulator's judgement model: here each call's noise "
        "hardly depends on how many passages it shows, so methods that look at every passage "
        "many times (PRP all-pairs, TourRank with more tournaments, JointRank's four "
        "replicas) gain, and sorts that decide a position from one or two comparisons (PRP "
        "and setwise heapsort and bubblesort) lose. Check with your model before choosing.",
        "",
        "| method | nDCG@10 | MRR@10 | LLM calls | depth | prompt tokens | completion tokens | s/query | frontier |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        nd, lo, hi = summary(r, "ndcg@10")
        if len(r["per_seed"]) > 1:
            spread = f" ({lo:.3f}-{hi:.3f})"
        elif r["kind"] == "llm" and len(meta["seeds"]) > 1:
            spread = f" (seed {r['per_seed'][0]['seed']} only)"
        else:
            spread = ""
        mrr = summary(r, "mrr@10")[0]
        if r["kind"] == "llm":
            marks = "".join(x for x, s in (("T", time_front), ("K", tok_front)) if r["method"] in s)
            cost = (
                f"{summary(r, 'calls')[0]:,.0f} | {summary(r, 'depth')[0]:.1f} | "
                f"{summary(r, 'prompt_tokens')[0]:,.0f} | {summary(r, 'completion_tokens')[0]:,.0f} | "
                f"{summary(r, 'wall_s')[0]:.2f}"
            )
            label = f"{r['method']} *(simulated)*"
        else:
            marks = ""
            wall = summary(r, "wall_s")[0]
            cost = f"0 | 0 | 0 | 0 | {wall:.2f}" if wall else "0 | 0 | 0 | 0 | 0"
            label = f"{r['method']} *(measured)*"
        lines.append(f"| {label} | {nd:.4f}{spread} | {mrr:.4f} | {cost} | {marks} |")
    def walk(key: Callable[[dict[str, Any]], float], unit: Callable[[float], str]) -> str:
        pts = [(key(r), summary(r, "ndcg@10")[0], r["method"]) for r in llm_rows]
        return " → ".join(f"{label} ({y:.3f} at {unit(x)})" for x, y, label in _pareto(pts))

    lines += [
        "",
        "Which to pick (cheapest first, each step buys quality; simulated):",
        "",
        "* **latency budget**: " + walk(lambda r: summary(r, "wall_s")[0], lambda x: f"{x:.2f} s"),
        "* **token budget**: "
        + walk(
            lambda r: summary(r, "prompt_tokens")[0] + summary(r, "completion_tokens")[0],
            lambda x: f"{x / 1000:,.0f}k tokens",
        ),
        "",
        "![nDCG@10 against wall time and against tokens per query (simulated LLM)](img/frontier_dl19.png)",
        "",
    ]
    return "\n".join(lines)


def _short(label: str) -> str:
    """The label without its parenthesised details (kept for TourRank's and JointRank's)."""
    head, _, rest = label.partition(" (")
    if head.startswith(("JointRank", "Listwise sliding")) and rest:
        return f"{head} ({rest.split(',')[0].rstrip(')')})"
    return head


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6), sharey=True)
    llm_rows = [r for r in rows if r["kind"] == "llm"]
    refs = [r for r in rows if r["kind"] != "llm"]
    for ax, key, title in (
        (axes[0], "wall_s", "wall time per query (s, log scale; simulated latency, 20 in flight)"),
        (axes[1], "tokens", "prompt + completion tokens per query (log scale)"),
    ):
        pts = []
        for r in llm_rows:
            if key == "tokens":
                x = summary(r, "prompt_tokens")[0] + summary(r, "completion_tokens")[0]
            else:
                x = summary(r, key)[0]
            y, lo, hi = summary(r, "ndcg@10")
            pts.append((x, y, r["method"]))
            ax.errorbar(
                x, y, yerr=[[y - lo], [hi - y]], fmt="o", ms=6, capsize=2,
                color=COLOURS.get(r["family"], "black"), label=r["family"],
            )  # fmt: skip
            ax.annotate(_short(r["method"]), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6.5)
        front = _pareto(pts)
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", lw=0.8, alpha=0.6)
        for r in refs:  # no LLM cost: a reference line (MiniLM's measured time is in the table)
            y = summary(r, "ndcg@10")[0]
            ax.axhline(y, color=COLOURS.get(r["family"], "grey"), lw=0.8, ls="--")
            ax.text(0.01, y, _short(r["method"]), fontsize=6.5, va="bottom", ha="left",
                    transform=ax.get_yaxis_transform())
        ax.set_xscale("log")
        ax.set_xlabel(title, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("nDCG@10 (DL19, simulated LLM)")
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    axes[1].legend(uniq.values(), uniq.keys(), fontsize=7, loc="lower right")
    fig.suptitle("Quality-cost frontier on DL19 (BM25 top-100); black step = Pareto frontier; SIMULATED LLM", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


# --------------------------------------------------------------------- main


def _git_commit() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--queries", type=int, default=None, help="first N queries only")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--concurrency", type=int, default=20, help="calls in flight per query (0: unlimited)")
    p.add_argument("--only", default="", help="comma-separated substrings of method labels to run")
    p.add_argument("--skip", default="", help="comma-separated substrings of method labels to skip")
    p.add_argument("--check-http", type=int, default=0, metavar="N", help="also check N queries per method over HTTP")
    p.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    p.add_argument("--from-json", type=Path, default=None, help="re-render the table and plot from a --json file")
    p.add_argument("--resume", action="store_true", help="keep the methods already in the --json file")
    p.add_argument("--update-docs", action="store_true", help="write the section of docs/benchmarks.md and the plot")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "frontier_dl19.png")
    args = p.parse_args(argv)
    slots = args.concurrency or None

    if args.from_json:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        rows, meta = saved["rows"], saved["meta"]
    else:
        if not (args.data_dir / "trec-dl19").exists():
            print(f"DL19 data not found under {args.data_dir} (set RERANK_RAG_DATA)", file=sys.stderr)
            return 2
        from rerank_rag.eval import load_dl19

        ds = load_dl19(args.data_dir, depth=100).limit(args.queries)
        only = [s.strip().lower() for s in args.only.split(",") if s.strip()]
        skip = [s.strip().lower() for s in args.skip.split(",") if s.strip()]
        methods = [
            m for m in METHODS
            if (not only or any(s in m.label.lower() for s in only))
            and not any(s in m.label.lower() for s in skip)
        ]  # fmt: skip
        load = " ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"load average {load}; {len(methods)} methods, {len(ds.queries)} queries, seeds {args.seeds}", flush=True)
        if args.check_http:
            check_http(ds, methods, args.check_http, slots)
        t_start = time.perf_counter()
        rows = []
        done: dict[str, Any] = {}
        if args.resume and args.json and args.json.exists():
            done = {r["method"]: r for r in json.loads(args.json.read_text(encoding="utf-8"))["rows"]}
        # cheap rows first, so an interrupted run has them; the table keeps METHODS' order
        expensive = ("all-pairs", "minilm", "bubblesort")
        for m in sorted(methods, key=lambda m: any(e in m.label.lower() for e in expensive)):
            if m.label in done:
                rows.append(done[m.label])
                print(f"{m.label:<48} (from {args.json})", flush=True)
                continue
            t0 = time.perf_counter()
            try:
                row = run_method(ds, m, args.seeds, slots)
            except ImportError as exc:  # an optional local model that is not installed
                print(f"skipped {m.label}: {exc}", flush=True)
                continue
            rows.append(row)
            if args.json:  # after every method, so an interrupted run can --resume
                args.json.write_text(json.dumps({"rows": rows, "meta": {}}, indent=1), encoding="utf-8")
            nd = summary(row, "ndcg@10")
            print(
                f"{m.label:<48} nDCG@10 {nd[0]:.4f} ({nd[1]:.3f}-{nd[2]:.3f})  calls {summary(row, 'calls')[0]:8.1f}  "
                f"depth {summary(row, 'depth')[0]:6.1f}  s/q {summary(row, 'wall_s')[0]:7.2f}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        position = {m.label: i for i, m in enumerate(METHODS)}
        rows.sort(key=lambda r: position.get(r["method"], len(METHODS)))
        sim = make_sim(ds, 0)
        cfg = sim.config()
        lat = cfg["latency"]
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": _git_commit(),
            "cpus": os.cpu_count(),
            "load": load,
            "minutes": (time.perf_counter() - t_start) / 60,
            "queries": len(ds.queries),
            "seeds": args.seeds if len(args.seeds) else [0],
            "slots": slots or "unlimited",
            "sim": (
                f"per-view noise s.d. {cfg['noise']:g} grade units, variance growth {cfg['noise_growth']:g} "
                f"per extra passage shown, persistent per-passage error {cfg['doc_noise']:g}, "
                f"position bias {cfg['position_bias']:g}"
                + (f", preset `{cfg['preset']}`" if cfg.get("preset") else "")
            ),
            "latency": (
                f"{lat['per_call']:g} s per call + {1000 * lat['per_input_token']:g} ms per prompt token + "
                f"{1000 * lat['per_output_token']:g} ms per completion token"
            ),
        }
    md = markdown(rows, meta)
    print()
    print(md)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "meta": meta}, indent=1), encoding="utf-8")
    if args.update_docs:
        from _doc_sections import replace_section

        plot(rows, args.plot)
        replace_section(REPO / "docs" / "benchmarks.md", "frontier", md)
        print(f"wrote docs/benchmarks.md (section frontier) and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
