"""Rank a dataset with a method, score it, and report: the engine of ``rerank-rag eval``.

:func:`rank_dataset` ranks every query (concurrently when asked) and never drops one: a
query whose ranking raised keeps its first-stage order and records the error.
:func:`run_eval` adds the metrics, usage and timing into a JSON-able report, and
:func:`format_report_table` prints reports side by side, labelling every simulated
figure with the simulator preset it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

from .._errors import is_permanent
from ._data import RerankDataset
from ._methods import MethodSpec, resolve_method
from ._metrics import AVERAGING, evaluate, nearest_rank_percentile, parse_metric
from ._progress import Progress

__all__ = ["rank_dataset", "run_eval", "format_report_table", "USAGE_KEYS"]

USAGE_KEYS = (
    "llm_calls", "prompt_tokens", "completion_tokens", "total_tokens", "depth", "retries",
    "fallbacks", "failed_calls", "parse_repairs", "cache_hits", "resends", "kept",
)  # fmt: skip


async def _rank_all(ranker: Any, ds: RerankDataset, parallel: int, progress: Progress | None) -> list[dict[str, Any]]:
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
                if is_permanent(exc):
                    raise  # a wrong key, an unknown model, a missing module: every other query would fail too
                error = f"{type(exc).__name__}: {exc}"
                order = list(range(len(q.candidates)))
                usage = {}
            wall = time.perf_counter() - t0
        seen = set(order)
        order += [j for j in range(len(q.candidates)) if j not in seen]  # keep lists complete
        results[i] = {
            "qid": q.qid,
            "docids": [str(q.candidates[j].id) for j in order],
            "usage": usage,
            "wall_time": wall,
            "error": error,
        }
        if progress is not None:
            progress.update(1)

    try:
        tasks = [asyncio.ensure_future(one(i)) for i in range(len(ds.queries))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:  # a permanent error: stop the queries still waiting
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    finally:
        # close the backend's async HTTP clients on this loop, before asyncio.run ends it
        aclose = getattr(getattr(ranker, "llm", None), "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    return [r for r in results if r is not None]


def rank_dataset(
    ranker: Any, ds: RerankDataset, *, parallel: int = 1, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Rank every query of ``ds`` with ``ranker.arank``.

    Returns one dict per query, in dataset order: ``qid``, ``docids`` (best first,
    every candidate once), ``usage`` (the ranking's usage as a dict), ``wall_time`` and
    ``error`` (``None``, or the message of the exception after which the query kept
    its first-stage order).

    Args:
        ranker: any rerank-rag ranker (``arank(query, candidates)``).
        ds: the dataset.
        parallel: queries ranked at once.
        progress: an optional :class:`~rerank_rag.eval.Progress`, advanced per query.
    """
    return asyncio.run(_rank_all(ranker, ds, parallel, progress))


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


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
    threshold: int | None = None,
    queries: str = "run",
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
        llm_info: description of the LLM; ``{"kind": "sim", "preset": ..., "label":
            ...}`` marks every figure of an LLM method as simulated.
        threshold: minimum grade counted relevant by MRR / recall (default: the
            dataset's, ``ds.threshold``).
        queries: ``"run"`` (trec_eval default) or ``"judged"`` (``trec_eval -c``), see
            :func:`~rerank_rag.eval.evaluate`.

    The report states the relevance threshold, the averaging and how many queries had
    no judgment (ranked, not averaged).
    """
    spec = method if isinstance(method, MethodSpec) else resolve_method(method)
    if queries not in AVERAGING:
        raise ValueError(f"queries must be one of {', '.join(AVERAGING)}, got {queries!r}")
    threshold = ds.threshold if threshold is None else threshold
    if ranker is None:
        if spec.needs_llm and llm is None:
            raise ValueError(f"method {spec.name!r} needs an LLM")
        ranker = spec.build(options or {}, llm)
    t0 = time.perf_counter()
    rows = rank_dataset(ranker, ds, parallel=parallel, progress=progress)
    total_wall = time.perf_counter() - t0
    metrics = ["ndcg@10", "mrr@10", f"recall@{recall_k}", "judged@10"]
    run = {r["qid"]: r["docids"] for r in rows}
    own = {q.qid for q in ds.queries}
    qrels = {q: j for q, j in ds.qrels.items() if q in own or queries == "judged"}
    res = evaluate(run, qrels, metrics, threshold=threshold, queries=queries)
    base = evaluate(ds.first_stage_run(), qrels, metrics, threshold=threshold, queries=queries)
    n = max(1, len(rows))
    totals = {k: sum(int(r["usage"].get(k, 0) or 0) for r in rows) for k in USAGE_KEYS}
    walls = [r["wall_time"] for r in rows]
    simulated = bool(llm_info and llm_info.get("kind") == "sim" and spec.needs_llm)
    per_query = []
    for r in rows:
        pq = {"qid": r["qid"], "wall_time": r["wall_time"], "error": r["error"]}
        for m in metrics:
            pq[m] = res.per_query[m].get(r["qid"])
        for k in ("llm_calls", "total_tokens", "depth", "failed_calls", "fallbacks"):
            pq[k] = r["usage"].get(k, 0)
        per_query.append(pq)
    info = (llm_info or {"kind": None}) if spec.needs_llm else {"kind": None}
    report: dict[str, Any] = {
        "tool": "rerank-rag eval",
        "label": "simulated" if simulated else "measured",
        "simulated": simulated,
        "simulator_preset": info.get("preset") if simulated else None,
        "dataset": ds.name,
        "first_stage": ds.first_stage,
        "queries": len(rows),
        "evaluated_queries": res.num_queries,
        "unjudged_queries": sum(1 for q in ds.queries if q.qid not in ds.qrels),
        "depth": max((len(q.candidates) for q in ds.queries), default=0),
        "relevance_threshold": threshold,
        "averaged_over": queries,
        "evaluation": res.describe(),
        "method": spec.name,
        "method_config": spec.config(options or {}),
        "ranker": repr(ranker),
        "llm": info,
        "metrics": res.means,
        "first_stage_metrics": base.means,
        "usage": {"totals": totals, "per_query": {k: totals[k] / n for k in USAGE_KEYS}},
        "timing": {
            "total_s": total_wall,
            "per_query_mean_s": _mean(walls),
            "per_query_p50_s": nearest_rank_percentile(walls, 0.5),
            "per_query_p95_s": nearest_rank_percentile(walls, 0.95),
            "parallel_queries": parallel,
        },
        "errors": sum(1 for r in rows if r["error"]),
        "per_query": per_query,
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    report["_run"] = run  # removed before JSON output unless asked
    return report


def _metric_header(name: str) -> str:
    kind, k = parse_metric(name)
    return {"ndcg": "nDCG", "mrr": "MRR", "recall": "R", "judged": "judged"}[kind] + f"@{k}"


def format_report_table(reports: Sequence[dict[str, Any]], *, title: str | None = None) -> str:
    """A Markdown table of one or several :func:`run_eval` reports (same dataset).

    Columns: nDCG@10, MRR@10, recall, LLM calls and tokens per query, sequential depth,
    seconds per query and in total. A simulated row is named ``"METHOD (simulated,
    preset NAME)"`` and the table opens with a SIMULATED line naming the preset(s); the
    footer states the dataset, the first stage, the relevance threshold and which
    queries were averaged.
    """
    if not reports:
        return ""
    shown = [m for m in reports[0]["metrics"] if not m.startswith("judged@")]
    lines = []
    if title:
        lines.append(title)
    presets = sorted({str(r.get("simulator_preset")) for r in reports if r.get("simulated")})
    if presets:
        lines.append(
            "SIMULATED: LLM rows come from the rerank-rag LLM simulator (preset "
            + ", ".join(presets)
            + "), which ranks by the relevance labels plus noise; they are not a model's figures."
        )
    heads = [_metric_header(m) for m in shown]
    lines.append("| method | " + " | ".join(heads) + " | LLM calls/q | tokens/q | depth | s/query | total s |")
    lines.append("|---" * (len(heads) + 6) + "|")
    for r in reports:
        m, u, t = r["metrics"], r["usage"]["per_query"], r["timing"]
        name = r.get("name") or r["method"]
        if r.get("simulated"):
            name += f" (simulated, preset {r.get('simulator_preset')})"
        cells = " | ".join(f"{m[k]:.4f}" for k in shown)
        lines.append(
            f"| {name} | {cells} | {u['llm_calls']:.1f} | {u['total_tokens']:.0f} | {u['depth']:.1f} "
            f"| {t['per_query_mean_s']:.3f} | {t['total_s']:.1f} |"
        )
    r0 = reports[0]
    judged = r0.get("evaluated_queries", r0["queries"])
    unjudged = r0.get("unjudged_queries", 0)
    lines.append("")
    lines.append(
        f"{r0['dataset']}: {r0['queries']} queries ({judged} evaluated"
        + (f", {unjudged} without labels" if unjudged else "")
        + f"), first stage {r0['first_stage']}, top-{r0['depth']} "
        f"(first-stage nDCG@10 {r0['first_stage_metrics']['ndcg@10']:.4f})."
    )
    lines.append(
        f"Relevance threshold {r0['relevance_threshold']} (grade >= {r0['relevance_threshold']} counts for "
        f"MRR/recall; nDCG uses the grades); averaged over "
        + (
            "the judged queries of the run (trec_eval default)."
            if r0.get("averaged_over", "run") == "run"
            else "all judged queries, missing ones scoring 0 (trec_eval -c)."
        )
    )
    return "\n".join(lines)
