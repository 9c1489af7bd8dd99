"""CPU time per query of the pairwise, setwise, tournament and TDPart rankers, outside
the LLM calls.

    .venv/bin/python benchmarks/bench_rankers_cpu.py            # n=100, all-pairs at 20 and 100
    .venv/bin/python benchmarks/bench_rankers_cpu.py --repeats 3

Every ranker runs over 100 candidates (about 60 words each, fresh texts every query so
the passage cache does not hide truncation) with an instant fake LLM whose answers are
computed *outside* the timed region: a noisy judge (hidden relevance + fresh Gaussian
noise per call, like a real model's disagreements) answering in the format each prompt
asks (a label, a permutation, first-token logprobs).

CPU time is measured with ``time.thread_time`` (the plan runs in the calling thread;
``rank()`` is run with ``max_concurrency=1`` so it does too), so other processes on a
busy machine do not inflate it. Two numbers per ranker:

* **own CPU**: the ranker's plan driven by hand (prompt building, answer parsing,
  sorting, aggregation, bookkeeping), plus the input validation and result checks of
  ``rank`` (``as_candidates``, ``finish_ranking``). Target: <= 5 ms per query.
* **rank() total**: ``rank()`` end to end with a ``FakeLLM`` whose handler returns the
  precomputed answer: adds the plan driver's thread pool and the fake backend's own
  bookkeeping (token estimates, call log), i.e. what a real backend would replace.

All-pairs PRP makes n (n - 1) calls (380 at n=20, 9,900 at n=100); its scaling is
printed as the ratio of the per-query times against the ratio of calls.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rerank_rag import (  # noqa: E402
    Completion,
    FakeLLM,
    PairwiseRanker,
    SetwiseRanker,
    TDPartRanker,
    TourRanker,
    Usage,
)
from rerank_rag._ranker import finish_ranking  # noqa: E402
from rerank_rag._types import as_candidates  # noqa: E402

WORDS = (
    "the of and to in is was for on that with as by at from his her an were are which "
    "this be or has had not first one their its new after who they have two been river "
    "capital city population history music science water energy system market health "
).split()
_SHOWN = re.compile(r"(?m)^\[(\w+)\] doc(\d+)q")

CONFIGS = [
    ("PRP all-pairs (n=20)", 20, lambda llm: PairwiseRanker(llm, method="allpair")),
    ("PRP all-pairs (n=100)", 100, lambda llm: PairwiseRanker(llm, method="allpair")),
    ("PRP heapsort top-10", 100, lambda llm: PairwiseRanker(llm, method="heapsort")),
    ("PRP heapsort top-10, logprobs", 100, lambda llm: PairwiseRanker(llm, method="heapsort", scoring="logprobs")),
    ("PRP bubblesort top-10", 100, lambda llm: PairwiseRanker(llm, method="bubblesort")),
    ("Setwise heapsort c=3 top-10", 100, lambda llm: SetwiseRanker(llm, block_size=4)),
    ("Setwise heapsort c=3, logprobs", 100, lambda llm: SetwiseRanker(llm, block_size=4, scoring="logprobs")),
    ("Setwise bubblesort c=3 top-10", 100, lambda llm: SetwiseRanker(llm, method="bubblesort", block_size=4)),
    ("TourRank-2 (groups of 20)", 100, lambda llm: TourRanker(llm, tournaments=2)),
    ("TourRank-10 (groups of 20)", 100, lambda llm: TourRanker(llm, tournaments=10)),
    ("TDPart (block 20, depth 10)", 100, lambda llm: TDPartRanker(llm)),
    ("TDPart relevant-only", 100, lambda llm: TDPartRanker(llm, prompt="relevant-only")),
]


def make_passages(q: int, n: int, rng: random.Random, words: int = 60) -> list[str]:
    return [f"doc{i}q{q} " + " ".join(rng.choice(WORDS) for _ in range(words)) for i in range(n)]


class NoisyJudge:
    """Answers any of our prompts from a hidden relevance plus fresh per-call noise."""

    def __init__(self, relevance: list[float], rng: random.Random, noise: float = 0.3) -> None:
        self.relevance, self.rng, self.noise = relevance, rng, noise

    def __call__(self, messages, **params) -> Completion:  # noqa: ANN001
        text = "\n".join(m["content"] for m in messages)
        shown = _SHOWN.findall(text)
        seen = {lab: self.relevance[int(d)] + self.rng.gauss(0.0, self.noise) for lab, d in shown}
        labels = sorted(seen, key=lambda lab: -seen[lab])
        if "top_logprobs" in params:
            z = max(seen.values())
            lse = z + math.log(sum(math.exp(v - z) for v in seen.values()))
            return Completion(text=labels[0], top_logprobs={lab: seen[lab] - lse for lab in labels})
        if "NO_RELEVANT" in text:
            keep = [lab for lab in labels if seen[lab] > 0.6]
            return Completion(text=" > ".join(f"[{lab}]" for lab in keep) or "NO_RELEVANT_SNIPPETS")
        if "Answer with the" in text:  # pick-best
            return Completion(text=labels[0])
        return Completion(text=" > ".join(f"[{lab}]" for lab in labels))


def own_cpu(ranker, query: str, passages: list[str], judge: NoisyJudge) -> tuple[float, Usage]:
    """Seconds spent in the ranker (plan steps + validation + result check)."""
    spent = 0.0
    usage = Usage()
    t = time.thread_time()
    cands = as_candidates(passages)
    plan = ranker._plan(query, cands, usage)
    batch = next(plan)
    spent += time.thread_time() - t
    try:
        while True:
            answers = [judge(r.messages, **r.params) for r in batch]  # not timed
            usage.llm_calls += len(batch)
            if batch:
                usage.depth += 1
            t = time.thread_time()
            try:
                batch = plan.send(answers)
            finally:
                spent += time.thread_time() - t
    except StopIteration as stop:
        t = time.thread_time()
        order, scores = stop.value
        finish_ranking(order, scores, len(cands), len(cands), usage)
        spent += time.thread_time() - t
    return spent, usage


def replay_llm(judge: NoisyJudge) -> FakeLLM:
    """A FakeLLM that answers instantly (the judge still runs; its cost is reported apart)."""
    return FakeLLM(lambda messages, **params: judge(messages, **params), max_concurrency=8)


def bench(name: str, n: int, make, repeats: int) -> dict[str, float]:
    rng = random.Random(0)
    own, total, judge_s, calls, depth = [], [], [], 0, 0
    for q in range(repeats):
        relevance = [rng.random() for _ in range(n)]
        passages = make_passages(q, n, rng)
        judge = NoisyJudge(relevance, random.Random(q))
        spent, usage = own_cpu(make(FakeLLM()), "what is it about?", passages, judge)
        own.append(spent)
        calls, depth = usage.llm_calls, usage.depth
        # rank() end to end; the judge's own time is measured and subtracted
        passages = make_passages(q + 1000, n, rng)
        judge = NoisyJudge(relevance, random.Random(q))
        timed = {"s": 0.0}

        def handler(messages, _j=judge, **params):
            t = time.thread_time()
            try:
                return _j(messages, **params)
            finally:
                timed["s"] += time.thread_time() - t

        ranker = make(FakeLLM(handler, max_concurrency=1))
        t = time.thread_time()
        ranker.rank("what is it about?", passages)
        total.append(time.thread_time() - t - timed["s"])
        judge_s.append(timed["s"])
    return {
        "name": name,
        "n": n,
        "calls": calls,
        "depth": depth,
        "own_ms": 1000 * statistics.median(own),
        "total_ms": 1000 * statistics.median(total),
        "judge_ms": 1000 * statistics.median(judge_s),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="queries per ranker (median reported)")
    args = ap.parse_args()
    print(f"# CPU time per query outside LLM calls (median of {args.repeats} queries); "
          f"Python {platform.python_version()}, {platform.machine()}")
    print(f"{'ranker':<34} {'n':>4} {'calls':>6} {'rounds':>6} {'own ms':>9} {'ms/call':>8} {'rank() ms':>10}  target")
    rows = []
    for name, n, make in CONFIGS:
        row = bench(name, n, make, args.repeats)
        rows.append(row)
        ok = "ok" if row["own_ms"] <= 5.0 else ("n/a (all-pairs)" if "all-pairs" in name else "OVER")
        print(
            f"{name:<34} {n:>4} {row['calls']:>6} {row['depth']:>6} {row['own_ms']:>9.2f} "
            f"{1000 * row['own_ms'] / max(1, row['calls']):>7.1f}u {row['total_ms']:>10.2f}  {ok}",
            flush=True,
        )
    a20 = next(r for r in rows if r["name"] == "PRP all-pairs (n=20)")
    a100 = next(r for r in rows if r["name"] == "PRP all-pairs (n=100)")
    print(
        f"\nall-pairs scaling n=20 -> n=100: calls x{a100['calls'] / a20['calls']:.1f}, "
        f"own CPU x{a100['own_ms'] / a20['own_ms']:.1f} "
        f"({a20['own_ms']:.1f} -> {a100['own_ms']:.1f} ms; "
        f"{1000 * a20['own_ms'] / a20['calls']:.1f} -> {1000 * a100['own_ms'] / a100['calls']:.1f} us per call)"
    )
    print("own = plan steps + validation + result check; rank() = end to end with an instant "
          "FakeLLM, minus the judge's time (adds the driver's thread pool and the fake's bookkeeping)")


if __name__ == "__main__":
    main()
