"""``rerank-rag eval``: evaluate a method on DL19, SciFact or MuSiQue.

Prints a table (nDCG@10, MRR@10, recall, LLM calls, tokens, depth, wall time) and
optionally writes a JSON report and a TREC run. With ``--llm sim`` every figure comes
from :class:`~rerank_rag.eval.SimulatedLLM` (an LLM *simulator* that ranks by true
relevance plus noise) and is labelled "simulated" in the table and the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._data import DataNotFoundError, RerankDataset, default_data_dir
from ._methods import MethodSpec, method_help, resolve_method
from ._metrics import evaluate
from ._progress import Progress

__all__ = ["main", "build_parser", "run_eval", "format_report_table", "rank_dataset"]

DATASETS = ("dl19", "scifact", "musique")
LLMS = ("sim", "openai", "local")

EPILOG = (
    method_help()
    + """

LLM backends (for methods marked [LLM]):
  sim     the built-in LLM simulator (ranks by the qrels + noise; every number it
          produces is SIMULATED; see --sim-* options)
  openai  any OpenAI-compatible server: --base-url URL --model NAME
          (API key from the environment variable named by --api-key-env)
  local   the offline default model served by llama.cpp (rerank-rag[local])

examples:
  rerank-rag eval --dataset dl19 --data-dir ../shared/data --method first-stage
  rerank-rag eval --dataset dl19 --data-dir ../shared/data --method jointrank --llm sim \\
      --block-size 20 --replicas 4 --out report.json
  rerank-rag eval --dataset musique --data-dir ../shared/data --method decompose --decomposer gold
"""
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rerank-rag eval",
        description="Evaluate a reranking method on DL19, SciFact or MuSiQue.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-dir", help="folder holding trec-dl19/, beir-scifact/, musique-100/ (default: $RERANK_RAG_DATA or ../shared/data)")
    p.add_argument("--method", required=True, help="see the list below")
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--run-out", help="write the reranked TREC run here (dl19, scifact)")
    p.add_argument("--queries", type=int, default=None, help="evaluate only the first N queries")
    p.add_argument("--depth", type=int, default=100, help="first-stage candidates reranked per query (default 100)")
    p.add_argument("--first-stage", default="bm25", choices=("bm25", "dense"), help="DL19 first stage (dense = Contriever run)")
    p.add_argument("--recall-k", type=int, default=20, help="cutoff of the reported recall (default 20)")
    p.add_argument("--parallel", type=int, default=1, help="queries ranked at once (default 1: per-query latency is clean)")
    p.add_argument("--seed", type=int, default=0, help="seed for JointRank designs and the simulator")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    g = p.add_argument_group("method options")
    g.add_argument("--prompt", default=None, help="rankgpt | relevant-only | first-token (default: rankgpt for listwise, relevant-only for jointrank)")
    g.add_argument("--window", type=int, default=20, help="sliding window size (default 20)")
    g.add_argument("--step", type=int, default=10, help="sliding window step (default 10)")
    g.add_argument("--block-size", type=int, default=20, help="JointRank block size k (default 20)")
    g.add_argument("--replicas", type=int, default=4, help="JointRank blocks per candidate r (default 4)")
    g.add_argument("--design", default="auto", help="JointRank design: auto, equi-replicate, replicate, latin, triangular, random")
    g.add_argument("--aggregator", default="pagerank", help="JointRank aggregator: pagerank, win_rate, borda, copeland, bradley_terry, elo")
    g.add_argument("--max-passage-tokens", type=int, default=300)
    g.add_argument("--model-path", default=None, help="bi-encoder / cross-encoder model folder")
    g.add_argument("--decomposer", default="gold", choices=("none", "gold", "llm"), help="MuSiQue decompose: none | gold | llm")
    g.add_argument("--reranker", default="minilm", help="MuSiQue decompose: minilm | biencoder | bm25 | none")
    g.add_argument("--musique-first-stage", default="bm25", choices=("bm25", "biencoder"))

    g = p.add_argument_group("LLM")
    g.add_argument("--llm", default="sim", choices=LLMS, help="sim (default) | openai | local")
    g.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (--llm openai)")
    g.add_argument("--model", default=None, help="model name (--llm openai) or local model (--llm local, default smollm2)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--llm-concurrency", type=int, default=8, help="concurrent LLM calls per client (default 8)")
    g.add_argument("--timeout", type=float, default=60.0, help="per-call timeout in seconds")
    g.add_argument("--max-retries", type=int, default=4)

    g = p.add_argument_group("simulator (--llm sim)")
    g.add_argument("--sim-noise", type=float, default=0.8, help="per-view noise s.d. in grade units (default 0.8)")
    g.add_argument("--sim-noise-growth", type=float, default=0.02, help="variance growth per extra passage shown (default 0.02)")
    g.add_argument("--sim-doc-noise", type=float, default=0.3, help="persistent per-passage error s.d. (default 0.3)")
    g.add_argument("--sim-position-bias", type=float, default=0.0)
    g.add_argument("--sim-latency", default="0.3,0.0002,0.015", help="seconds per call, per input token, per output token (default 0.3,0.0002,0.015)")
    g.add_argument("--sim-concurrency", type=int, default=None, help="server-side concurrency limit (default none)")
    g.add_argument("--sim-fault-rate", type=float, default=0.0, help="total injected fault rate, spread over 429/500/timeout/reset/empty/truncated")
    return p


# -- LLM setup -------------------------------------------------------------------------


def _sim_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from ._simulator import FaultConfig, LatencyModel

    try:
        parts = [float(x) for x in str(args.sim_latency).split(",")]
    except ValueError:
        raise ValueError(f"--sim-latency must be three numbers 'per_call,per_input_token,per_output_token', got {args.sim_latency!r}") from None
    if len(parts) != 3:
        raise ValueError("--sim-latency must be three numbers: per_call,per_input_token,per_output_token")
    timeout_delay = max(args.timeout * 1.5, 1.0)
    return {
        "noise": args.sim_noise,
        "noise_growth": args.sim_noise_growth,
        "doc_noise": args.sim_doc_noise,
        "position_bias": args.sim_position_bias,
        "latency": LatencyModel(*parts),
        "max_concurrency": args.sim_concurrency,
        "faults": FaultConfig.uniform(args.sim_fault_rate, retry_after=1, timeout_delay=timeout_delay),
        "seed": args.seed,
    }


def _open_llm(
    args: argparse.Namespace, stack: contextlib.ExitStack, ds: RerankDataset | None, fallback: Any = None
) -> tuple[Any, dict[str, Any], Any]:
    """Start the requested backend; returns ``(llm, description, simulator or None)``."""
    if args.llm == "sim":
        from ._simulator import SimulatedLLM

        kw = _sim_kwargs(args)
        if ds is not None:
            sim = SimulatedLLM(
                ds.qrels, corpus=ds.corpus, queries={q.qid: q.text for q in ds.queries}, fallback=fallback, **kw
            )
        else:
            sim = SimulatedLLM(lambda q, p: 0.0, fallback=fallback, **kw)
        stack.enter_context(sim)
        llm = sim.client(max_concurrency=args.llm_concurrency, timeout=args.timeout, max_retries=args.max_retries)
        stack.callback(llm.close)
        return llm, {"kind": "sim", "label": "simulated", "simulator": sim.config()}, sim
    if args.llm == "openai":
        if not args.base_url or not args.model:
            raise ValueError("--llm openai needs --base-url URL and --model NAME")
        from ..llm._openai import OpenAICompatibleLLM

        key = os.environ.get(args.api_key_env) if args.api_key_env else None
        llm = OpenAICompatibleLLM(
            args.model,
            base_url=args.base_url,
            api_key=key,
            max_concurrency=args.llm_concurrency,
            timeout=args.timeout,
            max_retries=args.max_retries,
            seed=args.seed,
        )
        stack.callback(llm.close)
        return llm, {"kind": "openai", "model": args.model, "base_url": args.base_url}, None
    # local
    try:
        from ..local import LocalLLMServer
    except ImportError as exc:  # pragma: no cover - depends on the local module
        raise RuntimeError(f"--llm local needs rerank_rag.local ({exc}); install 'rerank-rag[local]'") from exc
    server = LocalLLMServer(model=args.model or "smollm2")
    stack.enter_context(server)
    llm = server.llm
    return llm, {"kind": "local", "model": args.model or "smollm2"}, None


# -- the evaluation loop -----------------------------------------------------------------


async def _rank_all(
    ranker: Any, ds: RerankDataset, parallel: int, progress: Progress | None
) -> list[dict[str, Any]]:
    sem = asyncio.Semaphore(max(1, parallel))
    results: list[dict[str, Any] | None] = [None] * len(ds.queries)

    async def one(i: int) -> None:
        q = ds.queries[i]
        async with sem:
            t0 = time.perf_counter()
            error = None
            try:
                ranking = await ranker.arank(q.text, list(q.candidates))
                order = list(ranking.order)
                usage = ranking.usage.as_dict()
            except Exception as exc:  # noqa: BLE001 - one failed query must not end the run
                error = f"{type(exc).__name__}: {exc}"
                order = list(range(len(q.candidates)))
                usage = {}
            wall = time.perf_counter() - t0
        seen = set(order)
        order += [j for j in range(len(q.candidates)) if j not in seen]  # keep lists complete
        results[i] = {
            "qid": q.qid,
            "docids": [str(q.candidates[j].id) for j in order],
            "scores": None,
            "usage": usage,
            "wall_time": wall,
            "error": error,
        }
        if progress is not None:
            progress.update(1)

    try:
        await asyncio.gather(*(one(i) for i in range(len(ds.queries))))
    finally:
        # close the backend's async HTTP clients on this loop, before asyncio.run ends it
        aclose = getattr(getattr(ranker, "llm", None), "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    return [r for r in results if r is not None]


def rank_dataset(ranker: Any, ds: RerankDataset, *, parallel: int = 1, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Rank every query of ``ds`` with ``ranker.arank``; one dict per query (docids best
    first, usage, wall time, error). A query whose ranking raised keeps its first-stage
    order and records the error."""
    return asyncio.run(_rank_all(ranker, ds, parallel, progress))


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _pct(xs: Sequence[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p * (len(s) - 1))))]


def run_eval(
    ds: RerankDataset,
    method: str | MethodSpec,
    *,
    ranker: Any = None,
    llm: Any = None,
    options: Any = None,
    parallel: int = 1,
    recall_k: int = 20,
    progress: Progress | None = None,
    llm_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate one method on a loaded dataset; returns the JSON-able report.

    Args:
        ds: the dataset (queries with first-stage candidates, qrels).
        method: a method name from :data:`~rerank_rag.eval.METHODS` (or its spec).
        ranker: use this ranker instead of building one from ``method``.
        llm: the backend for LLM methods.
        options: method options (an argparse namespace or a mapping).
        parallel: queries ranked concurrently.
        recall_k: cutoff of the reported recall.
        progress: an optional :class:`Progress`.
        llm_info: description of the LLM (``{"kind": "sim", "label": "simulated", ...}``).
    """
    spec = method if isinstance(method, MethodSpec) else resolve_method(method)
    if ranker is None:
        if spec.needs_llm and llm is None:
            raise ValueError(f"method {spec.name!r} needs an LLM")
        ranker = spec.build(options or {}, llm)
    t0 = time.perf_counter()
    rows = rank_dataset(ranker, ds, parallel=parallel, progress=progress)
    total_wall = time.perf_counter() - t0
    metrics = ["ndcg@10", "mrr@10", f"recall@{recall_k}", "judged@10"]
    run = {r["qid"]: r["docids"] for r in rows}
    qrels = {q.qid: ds.qrels.get(q.qid, {}) for q in ds.queries}
    res = evaluate(run, qrels, metrics, threshold=ds.threshold)
    base = evaluate(ds.first_stage_run(), qrels, metrics, threshold=ds.threshold)
    n = max(1, len(rows))
    usage_keys = ("llm_calls", "prompt_tokens", "completion_tokens", "total_tokens", "depth", "retries", "fallbacks", "failed_calls", "parse_repairs", "cache_hits")
    totals = {k: sum(int(r["usage"].get(k, 0) or 0) for r in rows) for k in usage_keys}
    walls = [r["wall_time"] for r in rows]
    simulated = bool(llm_info and llm_info.get("kind") == "sim" and spec.needs_llm)
    per_query = []
    for r in rows:
        pq = {"qid": r["qid"], "wall_time": r["wall_time"], "error": r["error"]}
        for m in metrics:
            pq[m] = res.per_query[m].get(r["qid"], 0.0)
        for k in ("llm_calls", "total_tokens", "depth", "failed_calls", "fallbacks"):
            pq[k] = r["usage"].get(k, 0)
        per_query.append(pq)
    report: dict[str, Any] = {
        "tool": "rerank-rag eval",
        "label": "simulated" if simulated else "measured",
        "simulated": simulated,
        "dataset": ds.name,
        "first_stage": ds.first_stage,
        "queries": len(rows),
        "depth": max((len(q.candidates) for q in ds.queries), default=0),
        "relevance_threshold": ds.threshold,
        "method": spec.name,
        "method_config": spec.config(options or {}),
        "ranker": repr(ranker),
        "llm": (llm_info or {"kind": None}) if spec.needs_llm else {"kind": None},
        "metrics": res.means,
        "first_stage_metrics": base.means,
        "usage": {
            "totals": totals,
            "per_query": {k: totals[k] / n for k in usage_keys},
        },
        "timing": {
            "total_s": total_wall,
            "per_query_mean_s": _mean(walls),
            "per_query_p50_s": _pct(walls, 0.5),
            "per_query_p95_s": _pct(walls, 0.95),
            "parallel_queries": parallel,
        },
        "errors": sum(1 for r in rows if r["error"]),
        "per_query": per_query,
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    report["_run"] = run  # removed before JSON output unless asked
    return report


def format_report_table(reports: Sequence[dict[str, Any]], *, title: str | None = None) -> str:
    """A Markdown table of one or several :func:`run_eval` reports."""
    if not reports:
        return ""
    rk = next((k for k in reports[0]["metrics"] if k.startswith("recall@")), "recall@20")
    sim = any(r.get("simulated") for r in reports)
    lines = []
    if title:
        lines.append(title)
    if sim:
        lines.append("SIMULATED: LLM figures below come from the rerank-rag LLM simulator, not a model.")
    lines.append(
        f"| method | nDCG@10 | MRR@10 | {rk.replace('recall', 'R')} | LLM calls/q | tokens/q | depth | s/query | total s |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        m, u, t = r["metrics"], r["usage"]["per_query"], r["timing"]
        name = r.get("name") or r["method"]
        if r.get("simulated"):
            name += " (simulated)"
        lines.append(
            f"| {name} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m[rk]:.4f} | {u['llm_calls']:.1f} "
            f"| {u['total_tokens']:.0f} | {u['depth']:.1f} | {t['per_query_mean_s']:.3f} | {t['total_s']:.1f} |"
        )
    r0 = reports[0]
    lines.append("")
    lines.append(
        f"{r0['dataset']}: {r0['queries']} queries, first stage {r0['first_stage']} top-{r0['depth']} "
        f"(first-stage nDCG@10 {r0['first_stage_metrics']['ndcg@10']:.4f}); relevance threshold "
        f"{r0['relevance_threshold']} for MRR/recall."
    )
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------


def _load(args: argparse.Namespace, data_dir: Path) -> RerankDataset:
    if args.dataset == "dl19":
        from ._data import load_dl19

        ds = load_dl19(data_dir, first_stage=args.first_stage, depth=args.depth)
    else:
        from ._data import load_scifact

        ds = load_scifact(data_dir, depth=args.depth)
    return ds.limit(args.queries)


def _write_json(path: str, report: dict[str, Any]) -> None:
    out = {k: v for k, v in report.items() if not k.startswith("_")}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _run_musique(args: argparse.Namespace, data_dir: Path, argv: Sequence[str]) -> int:
    from ..decompose._musique import evaluate_musique, format_table

    spec = resolve_method(args.method)
    if spec.name != "decompose":
        print("rerank-rag eval: on --dataset musique use --method decompose (with --decomposer none|gold|llm)", file=sys.stderr)
        return 2
    bar = Progress(args.queries or 100, label="musique", enabled=None if not args.quiet else False)
    with contextlib.ExitStack() as stack:
        llm, info, sim = None, {"kind": None}, None
        if args.decomposer == "llm":
            fallback = None
            if args.llm == "sim":
                from ._data import load_musique
                from ._methods import musique_sim_decomposer

                records, _ = load_musique(data_dir)
                fallback = musique_sim_decomposer(records)
            llm, info, sim = _open_llm(args, stack, None, fallback=fallback)
        result = evaluate_musique(
            data_dir,
            decomposer=args.decomposer,
            reranker=args.reranker,
            first_stage=args.musique_first_stage,
            llm=llm,
            limit=args.queries,
            progress=lambda i, n, row: bar.update(1),
        )
        bar.close()
        if sim is not None:
            info = dict(info, stats=sim.stats)
    simulated = info.get("kind") == "sim"
    result["llm"] = info
    result["simulated"] = simulated
    result["label"] = result["label"] + (" (simulated decomposer)" if simulated else "")
    result["command"] = "rerank-rag eval " + " ".join(argv)
    if simulated:
        print("SIMULATED: the decomposer is the rerank-rag LLM simulator (gold sub-questions, bridge answers unknown).")
    print(format_table(result))
    if args.out:
        _write_json(args.out, result)
        print(f"report written to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rerank-rag eval``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        spec = resolve_method(args.method)
    except ValueError as exc:
        parser.error(str(exc))
    for name in ("queries", "depth", "parallel", "recall_k", "llm_concurrency"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if data_dir is None or not data_dir.exists():
        print(
            "rerank-rag eval: no data folder; pass --data-dir PATH (the folder holding trec-dl19/, "
            "beir-scifact/, musique-100/) or set RERANK_RAG_DATA",
            file=sys.stderr,
        )
        return 2
    try:
        if args.dataset == "musique":
            return _run_musique(args, data_dir, argv)
        if spec.name == "decompose":
            print("rerank-rag eval: --method decompose runs on --dataset musique", file=sys.stderr)
            return 2
        ds = _load(args, data_dir)
        with contextlib.ExitStack() as stack:
            llm, info = None, None
            sim = None
            if spec.needs_llm:
                llm, info, sim = _open_llm(args, stack, ds)
            ranker = spec.build(args, llm)
            bar = Progress(len(ds.queries), label=f"{ds.name} {spec.name}", enabled=None if not args.quiet else False)
            report = run_eval(
                ds, spec, ranker=ranker, options=args, parallel=args.parallel,
                recall_k=args.recall_k, progress=bar, llm_info=info,
            )
            bar.close()
            if sim is not None:
                report["llm"]["stats"] = sim.stats
    except DataNotFoundError as exc:
        print(f"rerank-rag eval: {exc}", file=sys.stderr)
        return 2
    except (ValueError, ImportError, RuntimeError) as exc:
        print(f"rerank-rag eval: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    report["command"] = "rerank-rag eval " + " ".join(argv)
    report["seed"] = args.seed
    print(format_report_table([report]))
    if report["errors"]:
        print(f"warning: {report['errors']} queries failed and kept their first-stage order (see per_query errors)")
    if args.run_out:
        from ._trec import write_run

        write_run(args.run_out, report["_run"], tag=f"rerank-rag-{spec.name}")
        print(f"run written to {args.run_out}")
    if args.out:
        _write_json(args.out, report)
        print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
