"""Batch reranking throughput: how close the batch engines keep a slow LLM server to full.

    .venv/bin/python benchmarks/bench_batch.py                       # the issue's setup (~40 min)
    .venv/bin/python benchmarks/bench_batch.py --queries 200 --quick # a few minutes

Setup (SIMULATED: the rerank-rag LLM simulator, not a model): an OpenAI-compatible
server on 127.0.0.1 (:class:`rerank_rag.eval.SimulatedLLM`, in its own process) that
answers every call after 300 ms and serves at most 64 calls at once (others queue);
``--queries`` synthetic queries x ``--candidates`` passages
(:func:`rerank_rag.testing.synthetic_queries`, generated lazily).

For each method (JointRank 20x4 blocks, pointwise LLM yes/no, the RankGPT 20/10
sliding window) and engine, a child process runs ``rerank_to_run`` with a global cap of
64 calls in flight and reports:

* wall time against the lower bound ``total_calls x 0.3 s / 64`` (the server's
  capacity), as ``bound / wall`` (1.0 = the server never idled). Targets: JointRank and
  pointwise >= 0.80 on the local engine, the sliding window >= 0.60;
* the Ray engine on this machine against the local engine (target: within 20%);
* the child's peak RSS (VmHWM) at 500 and at all queries (target: flat);
* with ``--faults 0.1``: 10% of calls failing (429 with Retry-After, 500, timeouts):
  every query completes; retries and fallbacks per query come from the usage report.

``--engine-only`` measures the engines' scheduling alone: the same 300 ms / 64-slot
server, but in-process (an async fake backend: no HTTP, no JSON, no simulator), so the
numbers do not depend on how much CPU the client and the server get.

Absolute times depend on the machine (the client, the server and Ray share its cores):
compare ratios. Each HTTP run also reports the CPU milliseconds per LLM call spent by
the client process and by the server process: when ``calls/s x (client + server) ms``
approaches the CPU the machine gives them, the bound cannot be reached whatever the
engine does. Prints a Markdown table; ``--out FILE`` writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = ("jointrank", "pointwise", "sliding")


# -- the simulator, in its own process ---------------------------------------------------


def _serve(conn: Any, n: int, k: int, seed: int, words: int, latency: float, cap: int, faults: float) -> None:
    from rerank_rag.eval import FaultConfig, LatencyModel, SimulatedLLM
    from rerank_rag.testing import synthetic_qrels

    qrels, corpus, topics = synthetic_qrels(n, k, seed=seed, words=words)
    fc = FaultConfig()
    if faults:
        third = faults / 3
        # 429 with Retry-After, 500, and timeouts held past the client's 5 s timeout
        fc = FaultConfig(rate_429=third, rate_500=third, rate_timeout=third, retry_after=1.0, timeout_delay=6.0)
    sim = SimulatedLLM(qrels, corpus=corpus, queries=topics, latency=LatencyModel(per_call=latency), max_concurrency=cap, faults=fc, seed=seed)
    sim.start()
    srv = sim.server
    srv.record_requests = False  # 10^5 request bodies would fill the memory
    starts = array("d")  # wall-clock time each call got a server slot (8 bytes a call)
    respond = srv.handler

    def timed(body: Any) -> Any:
        starts.append(time.time())
        return respond(body)

    srv.handler = timed
    conn.send(sim.base_url)
    while True:
        cmd = conn.recv()
        if cmd == "stats":
            st = sim.stats
            ru = resource.getrusage(resource.RUSAGE_SELF)
            st["cpu_s"] = ru.ru_utime + ru.ru_stime
            conn.send(st)
        elif isinstance(cmd, tuple) and cmd[0] == "starts":
            conn.send([t for t in starts if cmd[1] <= t <= cmd[2]])
        elif isinstance(cmd, tuple) and cmd[0] == "timeline":
            conn.send(timeline([t for t in starts if cmd[1] <= t <= cmd[2]], cmd[1], cmd[2], latency, cap))
        else:
            sim.stop()
            conn.send("stopped")
            return


def timeline(starts: list[float], t0: float, t1: float, latency: float, cap: int) -> dict[str, float]:
    """Where the wall time of one run went, from the server's side: each call holds a
    slot for ``latency`` s from the moment it got one (``starts``).

    * ``startup_s``: from the run's start to the first call (imports, Ray start-up,
      worker processes, the first query's requests);
    * ``steady_s`` and ``steady_busy``: from the first call to the last moment all
      ``cap`` slots were busy, and the mean fraction of slots busy in that span;
    * ``tail_s``: from then to the end of the last call (the last queries draining);
    * ``finish_s``: from the end of the last call to the end of the run (the run file).
    """
    if not starts:
        return {"startup_s": t1 - t0, "steady_s": 0.0, "steady_busy": 0.0, "tail_s": 0.0, "finish_s": 0.0}
    starts = sorted(starts)
    events = sorted([(t, 1) for t in starts] + [(t + latency, -1) for t in starts])
    busy = 0
    last_full = starts[0]
    area = 0.0
    prev = starts[0]
    area_at_full = 0.0
    for t, d in events:
        area += busy * (t - prev)
        prev = t
        busy += d
        if busy >= cap:
            last_full = t
            area_at_full = area
    end = starts[-1] + latency
    steady = last_full - starts[0]
    return {
        "startup_s": starts[0] - t0,
        "steady_s": steady,
        "steady_busy": area_at_full / (cap * steady) if steady > 0 else 0.0,
        "tail_s": end - last_full,
        "finish_s": t1 - end,
    }


class Server:
    def __init__(self, **kw: Any) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), kwargs=kw, daemon=True)
        self.proc.start()
        self.base_url = self.conn.recv()

    def stats(self) -> dict[str, Any]:
        self.conn.send("stats")
        return self.conn.recv()  # type: ignore[no-any-return]

    def timeline(self, t0: float, t1: float) -> dict[str, float]:
        self.conn.send(("timeline", t0, t1))
        return self.conn.recv()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.send("stop")
        self.conn.recv()
        self.proc.join(10)


# -- one run, in a child process (its own peak RSS) -------------------------------------


def _vm(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def child(a: argparse.Namespace) -> None:
    from rerank_rag import JointRanker, ListwiseRanker, LLMPointwiseRanker
    from rerank_rag.batch import rerank_to_run
    from rerank_rag.llm import OpenAICompatibleLLM, RetryPolicy
    from rerank_rag.testing import synthetic_queries

    llm = OpenAICompatibleLLM(
        "simulated-llm", base_url=a.base_url, api_key="sim", max_concurrency=a.cap, timeout=5.0,
        retry_policy=RetryPolicy(max_retries=6, initial_delay=0.5, max_delay=4.0),
    )
    ranker = {
        "jointrank": lambda: JointRanker(llm, block_size=20, replicas=4, seed=0),
        "pointwise": lambda: LLMPointwiseRanker(llm),
        "sliding": lambda: ListwiseRanker(llm, window_size=20, step=10, prompt=a.sliding_prompt),
    }[a.method]()
    queries = synthetic_queries(a.queries, a.candidates, seed=a.seed, words=a.words)
    kw: dict[str, Any] = {}
    if a.engine == "ray":
        kw = {"num_actors": a.ray_actors, "actor_num_cpus": 0.25, "init_kwargs": {"num_cpus": os.cpu_count()}}
        kw.update(json.loads(a.ray_options or "{}"))
    rss0 = _vm("VmRSS")
    epoch0 = time.time()
    t0 = time.perf_counter()
    rep = rerank_to_run(
        ranker, queries, Path(a.workdir) / f"{a.method}-{a.engine}-{a.queries}.trec", engine=a.engine,
        max_calls_in_flight=a.cap, progress="log", log_every=60, total=a.queries, restart=True, **kw,
    )
    wall = time.perf_counter() - t0
    epoch1 = time.time()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    t = rep["usage"]["totals"]
    print(json.dumps({
        "epoch": [epoch0, epoch1],
        "client_cpu_s": ru.ru_utime + ru.ru_stime,
        "method": a.method, "engine": a.engine, "queries": rep["queries"], "wall_s": wall,
        "llm_calls": t["llm_calls"], "retries": t["retries"], "fallbacks": t["fallbacks"],
        "failed_calls": t["failed_calls"], "queries_with_retries": rep["queries_with_retries"],
        "queries_with_fallbacks": rep["queries_with_fallbacks"],
        "max_retries_one_query": max((u["retries"] for u in rep["per_query"].values()), default=0),
        "rss_start_mb": rss0, "rss_peak_mb": _vm("VmHWM"), "engine_stats": rep["this_run"]["engine_stats"],
    }))


def run_child(a: argparse.Namespace, server: Server, method: str, engine: str, queries: int, log: Any) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--child", "--method", method, "--engine", engine, "--queries", str(queries),
        "--candidates", str(a.candidates), "--seed", str(a.seed), "--words", str(a.words), "--cap", str(a.cap),
        "--base-url", server.base_url, "--workdir", a.workdir, "--ray-actors", str(a.ray_actors),
        "--sliding-prompt", a.sliding_prompt, "--ray-options", a.ray_options or "{}",
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    before = server.stats()
    load0 = os.getloadavg()[0]
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    after = server.stats()
    res["bound_s"] = res["llm_calls"] * a.latency / a.cap
    res["bound_over_wall"] = res["bound_s"] / res["wall_s"]
    res["server_requests"] = after["requests"] - before["requests"]
    res["faults_injected"] = sum(after["faults"].values()) - sum(before["faults"].values())
    res["server_peak_concurrency"] = after["peak_concurrency"]
    calls = max(1, res["llm_calls"])
    res["client_cpu_ms_per_call"] = 1000 * res["client_cpu_s"] / calls
    res["server_cpu_ms_per_call"] = 1000 * (after["cpu_s"] - before["cpu_s"]) / calls
    res["load_avg_1min"] = [load0, os.getloadavg()[0]]
    print(
        f"  {method:<9} {engine:<5} {queries:>5} q: {res['wall_s']:7.1f} s, bound {res['bound_s']:6.1f} s, "
        f"bound/wall {res['bound_over_wall']:.2f}, {res['llm_calls']} calls, peak RSS {res['rss_peak_mb']:.0f} MB, "
        f"CPU ms/call client {res['client_cpu_ms_per_call']:.1f} server {res['server_cpu_ms_per_call']:.1f}",
        flush=True,
    )
    res["timeline"] = tl = server.timeline(*res["epoch"])
    print(
        f"  {'':<25}start-up {tl['startup_s']:.1f} s, steady {tl['steady_s']:.1f} s at "
        f"{tl['steady_busy']:.0%} of the slots busy, tail {tl['tail_s']:.1f} s, finish {tl['finish_s']:.1f} s",
        flush=True,
    )
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--latency", type=float, default=0.3, help="seconds per call at the server")
    p.add_argument("--cap", type=int, default=64, help="server-side concurrency cap = batch cap")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--ray", default="jointrank,sliding", help="methods also run on the Ray engine ('' for none)")
    p.add_argument("--ray-actors", type=int, default=2)
    p.add_argument("--ray-options", default="{}", help="more RayEngine options, as JSON (e.g. '{\"batch_size\": 8}')")
    p.add_argument("--rss-queries", type=int, default=500, help="also run JointRank on this many queries (RSS growth)")
    p.add_argument("--faults", type=float, default=0.1, help="fault rate of the fault run ('0' skips it)")
    p.add_argument("--fault-queries", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--words", type=int, default=60, help="words per synthetic passage")
    p.add_argument("--quick", action="store_true", help="skip the pointwise run (the longest)")
    p.add_argument("--sliding-prompt", default="rankgpt", help="prompt of the sliding window (rankgpt: one chat message per passage)")
    p.add_argument("--engine-only", action="store_true", help="in-process fake server: the engines' scheduling alone")
    p.add_argument("--http", action=argparse.BooleanOptionalAction, default=True, help="run the HTTP benchmark (default yes)")
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--workdir", default=None)
    # child mode
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    p.add_argument("--base-url", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a)
        return 0
    a.workdir = a.workdir or tempfile.mkdtemp(prefix="bench-batch-")
    Path(a.workdir).mkdir(parents=True, exist_ok=True)
    methods = [m for m in a.methods.split(",") if m and not (a.quick and m == "pointwise")]
    ray_methods = [m for m in a.ray.split(",") if m]
    log = open(Path(a.workdir) / "children.log", "w")
    print(f"SIMULATED LLM: {a.latency * 1000:.0f} ms per call, server cap {a.cap}; {a.queries} queries x {a.candidates} candidates; "
          f"{os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}); logs in {a.workdir}", flush=True)
    results: list[dict[str, Any]] = []
    if a.engine_only:
        for m in methods:
            results.append(engine_only(a, m))
    if not a.http:
        print()
        print(table(results, a))
        _write(a, results)
        return 0
    server = Server(n=a.queries, k=a.candidates, seed=a.seed, words=a.words, latency=a.latency, cap=a.cap, faults=0.0)
    try:
        for m in methods:
            results.append(run_child(a, server, m, "local", a.queries, log))
        if a.rss_queries and a.rss_queries < a.queries:
            results.append(run_child(a, server, "jointrank", "local", a.rss_queries, log))
        for m in ray_methods:
            results.append(run_child(a, server, m, "ray", a.queries, log))
    finally:
        server.close()
    if a.faults:
        fserver = Server(n=a.fault_queries, k=a.candidates, seed=a.seed, words=a.words, latency=a.latency, cap=a.cap, faults=a.faults)
        try:
            fres = run_child(a, fserver, "jointrank", "local", a.fault_queries, log)
            fres["fault_rate"] = a.faults
            results.append(fres)
        finally:
            fserver.close()
    print()
    print(table(results, a))
    _write(a, results)
    return 0


def _write(a: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    if a.out:
        Path(a.out).write_text(json.dumps({
            "label": "simulated", "setup": {k: getattr(a, k) for k in ("queries", "candidates", "latency", "cap", "ray_actors", "seed", "words", "sliding_prompt")},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "runs": results,
        }, indent=1) + "\n")


class _FakeServer:
    """An in-process backend: ``cap`` calls served at once, each after ``latency`` s."""

    max_concurrency = 10**6

    def __init__(self, latency: float, cap: int) -> None:
        import re

        self.latency, self.cap = latency, cap
        self.sem: Any = None
        self.calls = self.in_flight = self.peak = 0
        self.busy_s = 0.0
        self._ids = re.compile(r"\[(\d+)\]")

    def complete(self, messages: Any, **params: Any) -> Any:
        raise NotImplementedError("async only")

    async def acomplete(self, messages: Any, **params: Any) -> Any:
        import asyncio

        from rerank_rag.llm import Completion

        if self.sem is None:
            self.sem = asyncio.Semaphore(self.cap)
        async with self.sem:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await asyncio.sleep(self.latency)
            self.in_flight -= 1
        self.calls += 1
        text = messages[-1]["content"]
        if params.get("top_logprobs"):
            u = (len(text) % 97) / 97
            return Completion(text="Yes", top_logprobs={"Yes": -u, "No": -1.0 + u}, prompt_tokens=len(text) // 4)
        ids = list(dict.fromkeys(self._ids.findall("".join(m["content"] for m in messages))))
        return Completion(text=" > ".join(f"[{i}]" for i in reversed(ids)), prompt_tokens=len(text) // 4)


def engine_only(a: argparse.Namespace, method: str) -> dict[str, Any]:
    import asyncio

    from rerank_rag import JointRanker, ListwiseRanker, LLMPointwiseRanker
    from rerank_rag.batch import LocalEngine
    from rerank_rag.testing import synthetic_queries

    fake = _FakeServer(a.latency, a.cap)
    ranker = {
        "jointrank": lambda: JointRanker(fake, block_size=20, replicas=4, seed=0),
        "pointwise": lambda: LLMPointwiseRanker(fake),
        "sliding": lambda: ListwiseRanker(fake, window_size=20, step=10, prompt=a.sliding_prompt),
    }[method]()
    eng = LocalEngine(ranker, max_calls_in_flight=a.cap)

    async def go() -> int:
        n = 0
        async for _ in eng.astream(synthetic_queries(a.queries, a.candidates, seed=a.seed, words=a.words)):
            n += 1
        return n

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    n = asyncio.run(go())
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    res = {
        "method": method, "engine": "local (in-process server)", "queries": n, "wall_s": wall, "llm_calls": fake.calls,
        "retries": 0, "fallbacks": 0, "rss_peak_mb": _vm("VmHWM"), "server_peak_concurrency": fake.peak,
        "bound_s": fake.calls * a.latency / a.cap, "client_cpu_ms_per_call": 1000 * cpu / max(1, fake.calls),
        "peak_queries_in_flight": eng.peak_queries_in_flight,
    }
    res["bound_over_wall"] = res["bound_s"] / wall
    print(
        f"  {method:<9} engine-only {n:>5} q: {wall:7.1f} s, bound {res['bound_s']:6.1f} s, bound/wall "
        f"{res['bound_over_wall']:.2f}, {fake.calls} calls, peak {fake.peak} in flight, "
        f"{eng.peak_queries_in_flight} queries at once, CPU {res['client_cpu_ms_per_call']:.2f} ms/call",
        flush=True,
    )
    return res


def table(results: list[dict[str, Any]], a: argparse.Namespace) -> str:
    lines = [
        "SIMULATED (rerank-rag LLM simulator, not a model)",
        "",
        "| method | engine | queries | faults | LLM calls | wall s | bound s | bound/wall | retries | fallbacks | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['method']} | {r['engine']} | {r['queries']} | {r.get('fault_rate', 0):.0%} | {r['llm_calls']} | {r['wall_s']:.1f} | "
            f"{r['bound_s']:.1f} | {r['bound_over_wall']:.2f} | {r['retries']} | {r['fallbacks']} | {r['rss_peak_mb']:.0f} |"
        )
    local = {r["method"]: r for r in results if r["engine"] == "local" and r["queries"] == a.queries and not r.get("fault_rate")}
    for r in results:
        if r["engine"] == "ray" and r["method"] in local:
            init = float((r.get("engine_stats") or {}).get("ray_init_s", 0.0))
            lw = local[r["method"]]["wall_s"]
            lines.append(
                f"\nRay / local wall time, {r['method']}: {r['wall_s'] / lw:.2f} "
                f"({(r['wall_s'] - init) / lw:.2f} without the {init:.1f} s Ray start-up)"
            )
    small = [r for r in results if r["method"] == "jointrank" and r["engine"] == "local" and r["queries"] == a.rss_queries and not r.get("fault_rate")]
    if small and "jointrank" in local and a.rss_queries < a.queries:
        lines.append(f"\nPeak RSS, JointRank local: {small[0]['rss_peak_mb']:.0f} MB at {a.rss_queries} queries, "
                     f"{local['jointrank']['rss_peak_mb']:.0f} MB at {a.queries} queries")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
