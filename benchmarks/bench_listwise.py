"""Listwise benchmarks: answer-parsing throughput and window-scheduling overhead.

Run from the repository root::

    .venv/bin/python benchmarks/bench_listwise.py            # full run
    .venv/bin/python benchmarks/bench_listwise.py --quick    # fewer repetitions

1. **Parsing**: 10,000 fuzzed LLM answers for windows of 20 (well-formed permutations in
   many formats, chatty wrappers, ``<think>`` blocks, look-alike digits, duplicates,
   out-of-range ids, partial lists, JSON, letter ids, pure garbage) go through
   :func:`parse_permutation`. Prints answers/s and checks that no id is ever lost or
   repeated (``full_order`` is a permutation) and how many well-formed answers are read
   back exactly. Then a few pathological answers (long digit runs, unclosed
   ``<think>`` tags, ...) to show the regexes stay linear.
2. **Scheduling overhead**: our CPU time per query *outside the LLM*, with an instant
   backend (returns a constant answer, no work), for n = 100 and n = 1,000 candidates
   (window 20, step 10), sync and async. Includes prompt building (sanitising and
   truncating ~120-word passages to 300 tokens), parsing and bookkeeping. The passage
   cache is cleared before each query (every query sees new passages).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rerank_rag import Completion  # noqa: E402
from rerank_rag._text import clear_passage_cache, tokenizer_name  # noqa: E402
from rerank_rag.listwise import ListwiseRanker, parse_permutation  # noqa: E402

FULLWIDTH = str.maketrans("0123456789[]", "０１２３４５６７８９［］")
CIRCLED = {i: chr(0x2460 + i - 1) for i in range(1, 21)}
WORDS = (
    "retrieval passage ranking model query relevant answer context document search "
    "language neural index score window token budget system users the of and to in"
).split()


def fuzzed_answers(
    count: int, n: int, seed: int = 0
) -> list[tuple[str, str, tuple[int, ...] | None]]:
    """``(text, id_style, expected_listed_or_None)``; expected only for well-formed answers."""
    rng = random.Random(seed)
    out: list[tuple[str, str, tuple[int, ...] | None]] = []
    for _ in range(count):
        perm = list(range(1, n + 1))
        rng.shuffle(perm)
        kind = rng.randrange(12)
        expected: tuple[int, ...] | None = tuple(i - 1 for i in perm)
        style = "numeric"
        if kind == 0:
            text = " > ".join(f"[{i}]" for i in perm)
        elif kind == 1:
            text = ", ".join(map(str, perm))
        elif kind == 2:
            text = (
                f"Here are the {n} passages ranked by relevance: "
                + " > ".join(f"[{i}]" for i in perm)
                + ". Done!"
            )
        elif kind == 3:
            text = (
                "<think>"
                + " ".join(rng.choice(WORDS) + str(rng.randrange(40)) for _ in range(60))
                + "</think>\n"
                + " > ".join(f"[{i}]" for i in perm)
            )
        elif kind == 4:
            text = " > ".join(f"[{i}]" for i in perm).translate(FULLWIDTH)
        elif kind == 5:
            text = " > ".join(CIRCLED[i] for i in perm)
        elif kind == 6:
            text = '{"ranking": [' + ", ".join(map(str, perm)) + "]}"
        elif kind == 7:
            style = "alpha"
            text = " > ".join(f"[{chr(64 + i)}]" for i in perm)
        elif kind == 8:  # duplicates and out-of-range ids mixed in
            noisy = perm[:]
            for _ in range(5):
                noisy.insert(
                    rng.randrange(len(noisy)), rng.choice([0, n + 1, n + 7, 99, rng.choice(perm)])
                )
            text = " > ".join(f"[{i}]" for i in noisy)
            expected = None
        elif kind == 9:  # cut off
            text = " > ".join(f"[{i}]" for i in perm[: rng.randrange(1, n)])
            expected = None
        elif kind == 10:
            text = "\n".join(f"{r}. Passage {i}" for r, i in enumerate(perm, 1))
        else:  # garbage
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 30)))
            expected = None
        out.append((text, style, expected))
    return out


def bench_parse(count: int = 10_000, n: int = 20) -> None:
    answers = fuzzed_answers(count, n)
    c0, t0 = time.process_time(), time.perf_counter()
    results = [parse_permutation(text, n, id_style=style) for text, style, _ in answers]
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    bad = exact = wellformed = 0
    for (_, _, expected), p in zip(answers, results, strict=True):
        full = p.full_order(n)
        if sorted(full) != list(range(n)) or len(set(p.listed)) != len(p.listed):
            bad += 1
        if expected is not None:
            wellformed += 1
            exact += p.listed == expected
    print(
        f"parse_permutation: {count:,} fuzzed answers (window of {n}): "
        f"CPU {cpu * 1000:.0f} ms -> {count / cpu:,.0f} answers/s "
        f"({cpu / count * 1e6:.1f} us each); "
        f"wall {elapsed * 1000:.0f} ms"
    )
    print(
        f"  lost or repeated ids: {bad} of {count:,} (full_order always a permutation: {bad == 0})"
    )
    print(f"  well-formed answers read back exactly: {exact:,} of {wellformed:,}")
    if bad:
        raise SystemExit("FAILED: a parse lost or repeated an id")


def bench_pathological() -> None:
    """Worst-case inputs for the regexes: parse time must stay linear in the length."""
    cases = {
        "50k digits": "9" * 50_000,
        "25k '1 '": "1 " * 25_000,
        "20k unclosed <think>": "<think>" * 20_000,
        "100k '['": "[" * 100_000,
        "25k 'a > '": "a > " * 25_000,
        "'[1 , , ...' x 50": ("[1" + " ," * 100) * 50,
        "10k circled digits": "\u2460" * 10_000,
        # issue 10: quadratic / cubic in 0.1.0 (about 3 minutes and 85 s)
        "150k <think>, other close": "<think>" * 150_000 + "</reasoning>",
        "'passage' + 600 spaces": "passage" + " " * 600 + "x",
        "1 MB spaces after label": "Passage" + " " * 1_000_000 + "x",
    }
    worst = 0.0
    for label, text in cases.items():
        c0 = time.process_time()
        for style in ("numeric", "alpha"):
            parse_permutation(text, 20, id_style=style)
        worst = max(worst, time.process_time() - c0)
        print(f"  {label:<26} ({len(text):>9,} chars): {(time.process_time() - c0) * 1000:6.1f} ms")
    print(f"  worst: {worst * 1000:.1f} ms (both id styles)")


class InstantLLM:
    """A backend that does no work: a constant answer, no token estimate."""

    max_concurrency = 1

    def __init__(self, text: str) -> None:
        self.completion = Completion(text=text)

    def complete(self, messages, **params):  # type: ignore[no-untyped-def]
        return self.completion

    async def acomplete(self, messages, **params):  # type: ignore[no-untyped-def]
        return self.completion


def passages(n: int, query_no: int, rng: random.Random) -> list[str]:
    return [
        f"q{query_no} doc {i} [3] " + " ".join(rng.choice(WORDS) for _ in range(120)) + "\n\nend"
        for i in range(n)
    ]


def bench_overhead(n: int, repeats: int) -> None:
    answer = " > ".join(f"[{i}]" for i in (3, 1, 2, 5, 4))  # a partial answer: repairs happen
    ranker = ListwiseRanker(InstantLLM(answer), window_size=20, step=10)
    rng = random.Random(n)
    for label, run in (
        ("sync ", lambda q, p: ranker.rank(q, p)),
        ("async", lambda q, p: asyncio.run(ranker.arank(q, p))),
    ):
        cpu: list[float] = []
        wall: list[float] = []
        calls = 0
        for r in range(repeats):
            texts = passages(n, r, rng)
            clear_passage_cache()
            c0, w0 = time.process_time(), time.perf_counter()
            ranking = run("what is a sliding window reranker?", texts)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            calls = ranking.usage.llm_calls
        print(
            f"  n={n:>5,} {label}: {calls} windows/query, "
            f"CPU {statistics.median(cpu) * 1000:7.1f} ms/query "
            f"(median of {repeats}), {statistics.median(cpu) / calls * 1000:.2f} ms/window, "
            f"wall {statistics.median(wall) * 1000:.1f} ms"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, tokenizer: {tokenizer_name()}"
    )
    bench_parse()
    print("pathological answers (CPU time, numeric + alpha parse):")
    bench_pathological()
    print("window scheduling overhead (instant backend, window 20, step 10, 300-token passages):")
    bench_overhead(100, 3 if args.quick else 10)
    bench_overhead(1000, 2 if args.quick else 5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
