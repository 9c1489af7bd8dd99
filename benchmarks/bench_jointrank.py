"""JointRank benchmarks: our own CPU time per query, and wall-clock against a slow server.

    .venv/bin/python benchmarks/bench_jointrank.py            # everything
    .venv/bin/python benchmarks/bench_jointrank.py --cpu-only # skip the HTTP part

1. CPU time per query outside the LLM (instant fake LLM whose answers are computed
   beforehand): design, prompt building, parsing, comparisons and aggregation, at
   n=100/k=20/r=4 and n=1000/k=100/r=3 (targets: <= 2 ms and <= 50 ms for design +
   parsing + comparisons + aggregation), with perfect and with noisy block answers
   (fresh Gaussian noise per block, s.d. 10% of the relevance range); then the noisy
   case for every aggregator with its ratio to the target. The plan is driven by
   hand, so no thread pool or event loop is timed; medians of ``process_time``.
2. Wall-clock of the 20 blocks of one query against an OpenAI-compatible test server on
   127.0.0.1 that answers every call after 300 ms, with a concurrency limit of 20
   (target <= 1.15 x 300 ms), and of the RankGPT sliding window (20/10, 9 sequential
   calls) on the same server, with the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rerank_rag import Usage  # noqa: E402
from rerank_rag.jointrank import (  # noqa: E402
    AGGREGATORS,
    Comparisons,
    JointRanker,
    bradley_terry,
    order_from_scores,
)
from rerank_rag.llm import Completion, FakeLLM  # noqa: E402

WORDS = (
    "the of and to in is was for on that with as by at from his her an were are which "
    "this be or has had not first one their its new after who they have two been "
).split()
_ID_RE = re.compile(r"^\[(\d+)\] doc(\d+)\b", re.M)


def make_passages(n: int, rng: random.Random, words: int = 60) -> list[str]:
    return [f"doc{i} " + " ".join(rng.choice(WORDS) for _ in range(words)) for i in range(n)]


def perfect_answer(
    prompt_text: str, relevance: list[float], noise: float = 0.0, rng: random.Random | None = None
) -> str:
    """The ids sorted by relevance; ``noise`` adds fresh Gaussian noise (in units of the
    relevance range) to every shown item, so blocks disagree like a real LLM's."""
    ids = _ID_RE.findall(prompt_text)
    span = max(relevance, default=1) or 1
    seen = {
        d: relevance[int(d)] + (rng.gauss(0, noise * span) if noise and rng else 0.0)
        for _, d in ids
    }
    ids.sort(key=lambda t: -seen[t[1]])
    return " > ".join(f"[{i}]" for i, _ in ids)


def make_answers(
    n: int, k: int, r: int, noise: float
) -> tuple[list[str], list[list[int]], list[Completion]]:
    """Passages, blocks (as the ranker sends them) and one precomputed answer per block."""
    rng = random.Random(0)
    relevance: list[float] = list(range(n))
    rng.shuffle(relevance)
    passages = make_passages(n, rng)
    ranker = JointRanker(FakeLLM(), block_size=k, replicas=r)
    from rerank_rag._types import as_candidates

    plan = ranker._plan("what is it?", as_candidates(passages), Usage())
    reqs = next(plan)
    answers = [
        Completion(text=perfect_answer(req.messages[-1]["content"], relevance, noise, rng))
        for req in reqs
    ]
    plan.close()
    return passages, ranker.blocks(n), answers


def cpu_bench(
    n: int,
    k: int,
    r: int,
    repeats: int,
    noise: float = 0.0,
    aggregator: Any = None,
    prepared: tuple[list[str], list[list[int]], list[Completion]] | None = None,
) -> dict[str, float]:
    passages, blocks, answers = prepared or make_answers(n, k, r, noise)
    chosen = {} if aggregator is None else {"aggregator": aggregator}  # None: the default
    ranker = JointRanker(FakeLLM(), block_size=k, replicas=r, **chosen)
    from rerank_rag._types import as_candidates

    cands = as_candidates(passages)
    prompt = ranker.prompt
    assert prompt is not None
    t_total, t_design, t_build, t_parse, t_agg = [], [], [], [], []
    for rep in range(repeats + 1):  # the first run warms up (caches, lazy imports)
        # whole plan: design + prompt building + parsing + comparisons + aggregation
        t0 = time.process_time()
        plan = ranker._plan("what is it?", cands, Usage())
        next(plan)
        try:
            plan.send(answers)
        except StopIteration as stop:
            order = stop.value[0]
        total = time.process_time() - t0
        assert len(order) == n
        # the parts
        t0 = time.process_time()
        fresh = ranker.design.build(n, k, ranker.seed)  # cold: the ranker caches it per n
        design = time.process_time() - t0
        assert len(fresh) == len(blocks)
        t0 = time.process_time()
        for blk in blocks:
            prompt.build("what is it?", [passages[i] for i in blk])
        build = time.process_time() - t0
        t0 = time.process_time()
        parsed = [prompt.parse(a, len(b)) for a, b in zip(answers, blocks)]
        parse = time.process_time() - t0
        t0 = time.process_time()
        rankings = []
        for p, blk in zip(parsed, blocks):
            listed = [blk[i] for i in p.listed]
            seen = set(p.listed)
            rankings.append((listed + [x for i, x in enumerate(blk) if i not in seen], len(listed)))
        order_from_scores(ranker.aggregator(Comparisons(n, rankings)))
        agg = time.process_time() - t0
        if rep:
            t_total.append(total)
            t_design.append(design)
            t_build.append(build)
            t_parse.append(parse)
            t_agg.append(agg)

    def ms(xs: list[float]) -> float:
        return 1000 * statistics.median(xs)

    core = ms(t_total) - ms(t_build)
    return {
        "n": n,
        "k": k,
        "r": r,
        "blocks": len(blocks),
        "plan_total_ms": ms(t_total),
        "design_ms": ms(t_design),
        "prompt_build_ms": ms(t_build),
        "parse_ms": ms(t_parse),
        "comparisons_aggregation_ms": ms(t_agg),
        "core_ms": core,
    }


def http_bench(delay: float = 0.3) -> None:
    try:
        from rerank_rag.testing import ChatServer, Reply
        from rerank_rag.llm import OpenAICompatibleLLM
        from rerank_rag.listwise import ListwiseRanker
    except ImportError as exc:
        print(f"HTTP benchmark skipped: {exc}")
        return
    rng = random.Random(1)
    n = 100
    relevance = list(range(n))
    rng.shuffle(relevance)
    passages = make_passages(n, rng, words=30)

    def handler(body: dict) -> object:
        text = body["messages"][-1]["content"]
        if "doc" not in text:  # RankGPT puts passages in separate turns
            text = "\n".join(m["content"] for m in body["messages"])
        return Reply(text=perfect_answer(text, relevance) or "[1]", delay=delay)

    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM(
            "test", base_url=srv.base_url, api_key="x", max_concurrency=20, max_retries=0
        )
        joint = JointRanker(llm, block_size=20, replicas=4)
        joint.rank("warm-up", passages[:2])
        best = []
        for _ in range(3):
            res = joint.rank("what is it?", passages)
            best.append(res.usage.wall_time)
        jt = min(best)
        import asyncio

        async def async_runs() -> list[float]:
            # one event loop, as in an app: the first call creates the loop's client
            await joint.arank("warm-up", passages[:2])
            out, raw_out = [], []
            for _ in range(3):
                ares = await joint.arank("what is it?", passages)
                out.append(ares.usage.wall_time)
                t0 = time.perf_counter()
                await asyncio.gather(*(llm.acomplete(q.messages, **q.params) for q in areqs))
                raw_out.append(time.perf_counter() - t0)
            return out, raw_out

        areqs = [
            joint.prompt.build("what is it?", [passages[i] for i in blk])  # type: ignore[union-attr]
            for blk in joint.blocks(len(passages))
        ]
        a_out, a_raw = asyncio.run(async_runs())
        ajt, arawt = min(a_out), min(a_raw)
        # the same 20 prompts sent straight through the client (no JointRank at all)
        from concurrent.futures import ThreadPoolExecutor

        reqs = [
            joint.prompt.build("what is it?", [passages[i] for i in blk])  # type: ignore[union-attr]
            for blk in joint.blocks(len(passages))
        ]
        raw = []
        for _ in range(3):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(20) as pool:
                list(pool.map(lambda q: llm.complete(q.messages, **q.params), reqs))
            raw.append(time.perf_counter() - t0)
        rawt = min(raw)
        single = []
        for _ in range(3):
            t0 = time.perf_counter()
            llm.complete([{"role": "user", "content": "[1] doc0 x"}])
            single.append(time.perf_counter() - t0)
        one = min(single)
        sliding = ListwiseRanker(llm, prompt="rankgpt", mode="sliding", window_size=20, step=10)
        res2 = sliding.rank("what is it?", passages)
        st = res2.usage.wall_time
    print(f"HTTP, {delay * 1000:.0f} ms per call, concurrency 20:")
    print(
        f"  JointRank 20 blocks: {jt * 1000:.0f} ms wall (calls {res.usage.llm_calls}, depth "
        f"{res.usage.depth}) = {jt / delay:.2f} x {delay * 1000:.0f} ms (target <= 1.15)"
    )
    print(
        f"  JointRank 20 blocks, async arank (warm loop): {ajt * 1000:.0f} ms wall = "
        f"{ajt / delay:.2f} x; the same 20 calls with asyncio.gather: {arawt * 1000:.0f} ms"
    )
    print(
        f"  the same 20 calls straight through the client, 20 threads: {rawt * 1000:.0f} ms "
        f"= {rawt / delay:.2f} x (the floor JointRank runs on)"
    )
    print(
        f"  one call alone: {one * 1000:.0f} ms "
        f"(client + server overhead {1000 * (one - delay):.0f} ms)"
    )
    print(
        f"  sliding window 20/10: {st * 1000:.0f} ms wall (calls {res2.usage.llm_calls}, depth "
        f"{res2.usage.depth}) = {st / delay:.2f} x {delay * 1000:.0f} ms"
    )
    print(f"  ratio sliding / JointRank: {st / jt:.1f}x")


SIZES = ((100, 20, 4, 2.0), (1000, 100, 3, 50.0))  # n, k, r, target ms for 'plan'
NOISE = 0.1  # "realistic" block answers: fresh Gaussian noise, s.d. 10% of the range


def _bt_python(c: Comparisons) -> list[float]:
    return bradley_terry(c, solver="python")


def aggregator_table(repeats: int, names: list[str]) -> None:
    """The noisy case for every aggregator: median 'plan' CPU time and its target ratio."""
    print()
    print(
        f"Noisy block answers (s.d. {NOISE:g} of the relevance range, every id listed), "
        "per aggregator:"
    )
    print(f"BT solver: {_bt_solver_note()}")
    print(
        f"{'n':>5} {'k':>4} {'r':>2} {'aggregator':<24} {'comp+agg':>9} {'plan':>8} "
        f"{'target':>7} {'ratio':>6}"
    )
    for n, k, r, target in SIZES:
        prepared = make_answers(n, k, r, NOISE)
        for name in names:
            agg: Any = _bt_python if name == "bradley_terry[python]" else name
            reps = repeats if n <= 100 else max(3, repeats // 5)
            if name == "bradley_terry[python]" and n > 100:
                reps = 1  # seconds per run: one timed run is enough
            res = cpu_bench(n, k, r, reps, NOISE, agg, prepared)
            ratio = res["core_ms"] / target
            flag = "ok" if ratio <= 1 else "OVER"
            print(
                f"{n:>5} {k:>4} {r:>2} {name:<24} {res['comparisons_aggregation_ms']:>9.2f} "
                f"{res['core_ms']:>8.2f} {target:>7g} {ratio:>6.2f} {flag}"
            )


def _bt_solver_note() -> str:
    import importlib.util

    from rerank_rag.jointrank._bradley_terry import NUMPY_MIN_COMPARISONS

    if importlib.util.find_spec("numpy") is None:
        return "pure Python (numpy not installed)"
    return (
        f"numpy Newton from {NUMPY_MIN_COMPARISONS} comparisons (both sizes here); "
        "'bradley_terry[python]' forces the pure-Python fallback"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument(
        "--aggregators",
        default=",".join([*AGGREGATORS, "bradley_terry[python]"]),
        help="comma-separated aggregators for the per-aggregator noisy table "
        "('bradley_terry[python]' = the pure-Python BT solver; '' skips the table)",
    )
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} CPUs); CPU time = time.process_time()")
    print("CPU time per query outside the LLM (median of repeats, process time, ms); the")
    print("design is built once per n and cached, so 'plan' excludes it and 'cold design'")
    print("is what the first query of a size adds. Target: plan (design + parsing +")
    print("comparisons + aggregation) <= 2 ms at n=100 and <= 50 ms at n=1000.")
    print(
        f"{'n':>5} {'k':>4} {'r':>2} {'answers':<12} {'cold design':>11} {'parse':>6} "
        f"{'comp+agg':>8} {'plan':>7} {'prompts':>7} {'whole':>7} {'target':>6}"
    )
    default = JointRanker(FakeLLM()).aggregator_name
    for noise in (0.0, NOISE):
        for n, k, r, target in SIZES:
            res = cpu_bench(n, k, r, args.repeats if n <= 100 else max(3, args.repeats // 5), noise)
            kind = "perfect" if not noise else f"noisy s={noise:g}"
            print(
                f"{n:>5} {k:>4} {r:>2} {kind:<12} {res['design_ms']:>11.2f} "
                f"{res['parse_ms']:>6.2f} {res['comparisons_aggregation_ms']:>8.2f} "
                f"{res['core_ms']:>7.2f} {res['prompt_build_ms']:>7.2f} "
                f"{res['plan_total_ms']:>7.2f} {target:>6g}"
            )
    print(f"(aggregator: {default}, the default)")
    names = [a.strip() for a in args.aggregators.split(",") if a.strip()]
    if names:
        aggregator_table(args.repeats, names)
    if not args.cpu_only:
        http_bench()
    return 0


if __name__ == "__main__":
    sys.exit(main())
