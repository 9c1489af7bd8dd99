"""Benchmark ``rerank-rag serve``: service overhead, and a 500-request burst.

1. **Overhead** (target: p50 at most 3 ms): the MiniLM pipeline (and, as a cheap
   control, BM25) ranking 20 and 100 documents, called directly
   (``PointwiseRanker.arank`` on an event loop in this process) and through the service
   (a real uvicorn server on 127.0.0.1, one keep-alive httpx client posting
   ``/v1/rerank``). Calls alternate between the two paths. MiniLM's own time varies by
   tens of milliseconds on a shared machine, which buries a difference of medians, so the
   headline number (``service_overhead_*``) subtracts, per call, the ranking's own
   duration: ``usage.wall_time`` on the direct path, the ``Server-Timing: rank`` header
   on the HTTP path (the same ranking, timed inside the server); also reported: the
   plain difference of medians, the per-pair difference, and the CPU time per pair.
2. **Burst**: 500 concurrent requests against a JointRank pipeline over the LLM
   simulator (``rerank_rag.eval._simulator.SimulatedLLM``, 300 ms per call, simulated:
   no model runs) with an in-flight cap: status counts (every request must get 200 or
   429), wall time, latency quantiles of the 200s, the slowest answer (nothing may
   hang), and the growth of the server's RSS. The server runs as ``rerank-rag serve``
   in its own process, so the 500 client connections do not share its interpreter.

Run::

    .venv/bin/python benchmarks/bench_serve.py                 # both parts
    .venv/bin/python benchmarks/bench_serve.py --calls 300 --burst 500 --json out.json

Numbers from a shared 2-core machine are noisy: the script reports quantiles, not means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

WORDS = (
    "volcano lava eruption river bank market garden hedge stone paper cloud train summer "
    "lemon cake glaze Sicily island coast north active ancient city harbour mountain"
).split()


def _docs(n: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(60)) + f" ({i})" for i in range(n)]


def _q(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def overhead(calls: int, sizes: tuple[int, ...], rankers: tuple[str, ...]) -> dict[str, Any]:
    import httpx

    from rerank_rag.pointwise import BM25Scorer, MiniLMScorer, PointwiseRanker
    from rerank_rag.serve import BackgroundServer, PipelineSpec, ServeConfig

    query = "Which volcano on the coast of Sicily is active?"
    cfg = ServeConfig(
        pipelines={name: PipelineSpec(name, name) for name in rankers}, api_keys_env=None
    )
    scorers = {"minilm": MiniLMScorer, "bm25": BM25Scorer}
    loop = asyncio.new_event_loop()
    out: dict[str, Any] = {}
    with BackgroundServer(cfg) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        for name in rankers:
            direct = PointwiseRanker(scorers[name]())
            direct.warm_up()
            for n in sizes:
                docs = _docs(n)
                body = {"model": name, "query": query, "documents": docs}
                for _ in range(5):  # warm both paths
                    loop.run_until_complete(direct.arank(query, docs))
                    client.post("/v1/rerank", json=body).raise_for_status()
                t_direct: list[float] = []
                t_http: list[float] = []
                c_direct: list[float] = []
                c_http: list[float] = []
                # per call, the time spent outside the ranker's own work: for the direct
                # path latency - usage.wall_time, for HTTP latency - the server's
                # Server-Timing "rank" duration (the same ranking, measured inside)
                x_direct: list[float] = []
                x_http: list[float] = []
                for _ in range(calls):
                    t0, c0 = time.perf_counter(), time.process_time()
                    ranking = loop.run_until_complete(direct.arank(query, docs))
                    t_direct.append(time.perf_counter() - t0)
                    c_direct.append(time.process_time() - c0)
                    x_direct.append(t_direct[-1] - ranking.usage.wall_time)
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = client.post("/v1/rerank", json=body)
                    t_http.append(time.perf_counter() - t0)
                    c_http.append(time.process_time() - c0)
                    r.raise_for_status()
                    rank_ms = float(r.headers["server-timing"].split("dur=")[1])
                    x_http.append(t_http[-1] - rank_ms / 1000)
                d50, h50 = statistics.median(t_direct), statistics.median(t_http)
                paired = statistics.median(h - d for h, d in zip(t_http, t_direct))
                cpu = statistics.median(h - d for h, d in zip(c_http, c_direct))
                out[f"{name}_{n}_docs"] = {
                    "calls": calls,
                    "direct_p50_ms": round(d50 * 1000, 2),
                    "http_p50_ms": round(h50 * 1000, 2),
                    "http_over_direct_p50": round(h50 / d50, 3),
                    # median of the per-pair differences (each HTTP call vs the direct call
                    # just before it): robust to drift on a busy machine
                    "overhead_p50_ms": round(paired * 1000, 2),
                    "overhead_p90_ms": round(_q([h - d for h, d in zip(t_http, t_direct)], 0.9) * 1000, 2),
                    # CPU time of this process (client + server + model threads), per pair:
                    # what the service costs in CPU, insensitive to waiting for a core
                    "overhead_cpu_p50_ms": round(cpu * 1000, 2),
                    # the precise one: time outside the ranking, HTTP minus direct
                    "service_overhead_p50_ms": round((statistics.median(x_http) - statistics.median(x_direct)) * 1000, 2),
                    "service_overhead_p90_ms": round((_q(x_http, 0.9) - _q(x_direct, 0.9)) * 1000, 2),
                    "target_p50_ms": 3.0,
                    "meets_target": (statistics.median(x_http) - statistics.median(x_direct)) * 1000 <= 3.0,
                }
                print(f"overhead, {name}, {n} docs: {json.dumps(out[f'{name}_{n}_docs'])}", flush=True)
    loop.close()
    return out


def _start_server(config_toml: str) -> tuple[Any, str]:
    """``rerank-rag serve`` in its own process (so the load generator does not share its
    interpreter); returns the process and its URL."""
    import re
    import subprocess
    import sys
    import tempfile
    import threading

    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    cfg.write(config_toml)
    cfg.close()
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rerank_rag", "serve", "--config", cfg.name, "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
            if m and not found.is_set():
                url.append(m.group(1))
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(120):
        proc.kill()
        raise RuntimeError("rerank-rag serve did not start")
    return proc, url[0]


def _proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def burst(n: int, cap: int, docs_per_request: int) -> dict[str, Any]:
    import signal

    import httpx

    from rerank_rag.eval._simulator import SIMULATED_LABEL, LatencyModel, SimulatedLLM

    docs = _docs(docs_per_request, seed=1)

    def grade(query: str, passage: str) -> float:
        return float(passage.count("volcano"))

    with SimulatedLLM(grade, latency=LatencyModel(per_call=0.3), noise=0.3, seed=1) as sim:
        toml = (
            f"[limits]\nmax_in_flight = {cap}\nrequest_timeout = 60.0\n"
            "[pipelines.jr]\nranker = \"jointrank\"\noptions = { block_size = 10, replicas = 2 }\n"
            f"[pipelines.jr.llm]\nbase_url = \"{sim.base_url}\"\nmodel = \"{sim.model}\"\n"
            "max_concurrency = 64\nmax_retries = 2\n"
        )
        proc, url = _start_server(toml)
        try:

            # A minimal HTTP/1.1 client on raw asyncio streams: httpx's AsyncClient pool
            # costs O(n) per request with n open connections, which at 500 connections
            # dominated the measurement (6 s for 500 trivial requests vs 0.4 s here).
            host, port = url.split("//")[1].split(":")
            body = json.dumps({"query": "volcano", "documents": docs}).encode()
            request = (
                f"POST /rerank HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode() + body

            async def one() -> tuple[int, float]:
                t0 = time.perf_counter()
                try:
                    reader, writer = await asyncio.open_connection(host, int(port))
                    writer.write(request)
                    await writer.drain()
                    data = await reader.read()
                    writer.close()
                    return int(data.split(b" ", 2)[1]), time.perf_counter() - t0
                except (OSError, ValueError, IndexError):
                    return -1, time.perf_counter() - t0

            async def run(k: int) -> list[tuple[int, float]]:
                return await asyncio.gather(*(one() for _ in range(k)))

            asyncio.run(run(4))  # warm up
            rss0 = _proc_rss_mb(proc.pid)
            t0 = time.perf_counter()
            results = asyncio.run(asyncio.wait_for(run(n), 300))
            wall = time.perf_counter() - t0
            rss1 = _proc_rss_mb(proc.pid)
            metrics = httpx.get(f"{url}/metrics").text
            stats = sim.stats
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    failed = _counter(metrics, "rerank_rag_llm_failed_calls_total")
    fallbacks = _counter(metrics, "rerank_rag_fallbacks_total")
    codes: dict[str, int] = {}
    for code, _ in results:
        codes[str(code)] = codes.get(str(code), 0) + 1
    ok = [t for code, t in results if code == 200]
    rejected = [t for code, t in results if code == 429]
    out = {
        "label": SIMULATED_LABEL,
        "requests": n,
        "in_flight_cap": cap,
        "documents_per_request": docs_per_request,
        "llm_latency_s": 0.3,
        "status_counts": codes,
        "only_200_or_429": set(codes) <= {"200", "429"},
        "wall_s": round(wall, 2),
        "slowest_s": round(max(t for _, t in results), 2),
        "ok_p50_s": round(statistics.median(ok), 3) if ok else None,
        "ok_p95_s": round(_q(ok, 0.95), 3) if ok else None,
        "rejected_p50_s": round(statistics.median(rejected), 3) if rejected else None,
        "server_rss_before_mb": round(rss0, 1),
        "server_rss_growth_mb": round(rss1 - rss0, 1),
        "llm_requests": stats.get("requests"),
        "llm_failed_calls": failed,
        "llm_fallbacks": fallbacks,
        "llm_peak_concurrency": stats.get("peak_concurrency"),
    }
    print(f"burst: {json.dumps(out)}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200, help="calls per size for the overhead part")
    ap.add_argument("--sizes", default="20,100")
    ap.add_argument(
        "--rankers", default="minilm,bm25",
        help="pipelines for the overhead part (bm25: a cheap ranker, so the service's own cost "
        "is not buried in model-time noise)",
    )
    ap.add_argument("--burst", type=int, default=500, help="concurrent requests (0: skip)")
    ap.add_argument("--cap", type=int, default=64, help="max_in_flight for the burst")
    ap.add_argument("--burst-docs", type=int, default=20)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    report: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}
    if not args.skip_overhead:
        report["overhead"] = overhead(
            args.calls, tuple(int(s) for s in args.sizes.split(",")), tuple(args.rankers.split(","))
        )
    if args.burst:
        report["burst"] = burst(args.burst, args.cap, args.burst_docs)
    report["loadavg_at_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
