"""MuSiQue-100: does question decomposition help retrieval + rerank?

Runs, over the pooled 1,890-passage corpus, with the same reranker (default: MiniLM int8
ONNX cosine against the original question):

  (a)  single-query retrieval of k passages + rerank            (the baseline)
  (b)  gold sub-questions (#n replaced by the gold answers) + merge + rerank
  (c)  LLM sub-questions + merge + rerank                       (only with --local / --llm-base-url)

and after (b) and (c) their pool-matched baselines: per question, single-query
retrieval of as many passages as the decomposed pool held (same rerank budget),

then prints recall@5, recall@10, MRR@10 of the gold paragraphs, the recall of the merged
pool, and latency per stage. Optionally (--bm25-speed) times BM25Retriever on the
MuSiQue and SciFact corpora.

Examples (from the repository root):

    .venv/bin/python benchmarks/bench_musique.py
    .venv/bin/python benchmarks/bench_musique.py --first-stage biencoder
    .venv/bin/python benchmarks/bench_musique.py --local qwen2.5-1.5b --llm-cache /tmp/qd.sqlite
    .venv/bin/python benchmarks/bench_musique.py --llm-base-url http://127.0.0.1:8080/v1 --llm-model qwen

The data lives outside the repository (``../shared/data`` or ``$RERANK_RAG_DATA``); the
script exits with a message when it is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def default_data_dir() -> Path:
    env = os.environ.get("RERANK_RAG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def bm25_speed(data_dir: Path) -> None:
    from rerank_rag import Candidate
    from rerank_rag.eval import load_musique_eval
    from rerank_rag.retrievers import BM25Retriever

    data = load_musique_eval(data_dir)
    corpora = {"musique-100 (1,890 passages)": (data.corpus, [r["question"] for r in data.records])}
    try:
        from rerank_rag.eval._data import load_qrels, load_scifact_corpus, load_topics

        sf = data_dir / "beir-scifact"
        corpus = load_scifact_corpus(data_dir)
        topics = load_topics(sf / "topics.beir-v1.0.0-scifact.test.tsv.gz")
        qrels = load_qrels(sf / "qrels.beir-v1.0.0-scifact.test.txt")
        cands = [Candidate(f"{t} {a}", id=i) for i, (t, a) in corpus.items()]
        corpora[f"beir-scifact ({len(cands):,} abstracts)"] = (cands, [topics[q] for q in qrels])
    except Exception as exc:  # noqa: BLE001 - SciFact is optional here
        print(f"(SciFact skipped: {exc})")
        qrels = None
    for name, (cands, queries) in corpora.items():
        t0 = time.perf_counter()
        ret = BM25Retriever(cands)
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        runs = [ret(q, 100) for q in queries]
        t_query = (time.perf_counter() - t0) / len(queries)
        line = f"BM25Retriever {name}: index {t_index:.2f} s, {t_query * 1000:.1f} ms/query (top-100, {len(queries)} queries)"
        if name.startswith("beir") and qrels is not None:
            from statistics import fmean

            from rerank_rag.eval._metrics import ndcg_at_k

            nd = fmean(ndcg_at_k([c.id for c in run], qrels[q], 10) for q, run in zip(qrels, runs))
            line += f", nDCG@10 {nd:.4f} (reference Lucene BM25: 0.676-0.679)"
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--reranker", default="minilm", choices=["minilm", "biencoder", "bm25", "none"])
    ap.add_argument("--first-stage", default="bm25", choices=["bm25", "biencoder"])
    ap.add_argument("--k", type=int, default=10, help="passages per query (default 10)")
    ap.add_argument("--top-n", "--top-k", dest="top_n", type=int, default=10, help="final list length (default 10)")
    ap.add_argument("--merge", default="union", choices=["union", "interleave", "rrf"])
    ap.add_argument("--limit", type=int, default=None, help="first N questions only")
    ap.add_argument("--llm-limit", type=int, default=None, help="first N questions for (c) only")
    ap.add_argument("--no-pool-matched", action="store_true", help="skip the pool-matched baselines")
    ap.add_argument("--local", metavar="MODEL", help="start rerank_rag.local.LocalLLMServer(MODEL) for (c)")
    ap.add_argument("--local-threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    ap.add_argument("--local-port", type=int, default=None,
                    help="fixed port for the local server (the response cache key includes the URL)")
    ap.add_argument("--llm-base-url", help="OpenAI-compatible endpoint for (c)")
    ap.add_argument("--llm-model", default="local", help="model name at --llm-base-url")
    ap.add_argument("--llm-cache", type=Path, help="SQLite response cache for the LLM (reruns are free)")
    ap.add_argument("--bm25-speed", action="store_true", help="also time BM25Retriever (MuSiQue, SciFact)")
    ap.add_argument("--json", type=Path, help="write all results (with per-question rows) here")
    args = ap.parse_args(argv)

    if not (args.data_dir / "musique-100").is_dir() and not (args.data_dir / "musique_train.json").is_file():
        print(f"MuSiQue-100 data not found under {args.data_dir}; set --data-dir or RERANK_RAG_DATA")
        return 2

    from rerank_rag.eval import evaluate_musique, format_multihop_table

    if args.bm25_speed:
        bm25_speed(args.data_dir)

    def progress(i: int, n: int, row: dict) -> None:
        if i % 20 == 0 or i == n:
            print(f"  {i}/{n}", file=sys.stderr, flush=True)

    common = dict(
        reranker=args.reranker, first_stage=args.first_stage, top_n=args.top_n, merge=args.merge,
        limit=args.limit, progress=progress, pool_matched=not args.no_pool_matched,
    )
    results = []

    def run(label: str, **kw):
        print(f"running {label} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        res = evaluate_musique(args.data_dir, label=label, **{**common, **kw})
        print(f"  done in {time.perf_counter() - t0:.0f} s: R@10 {res['metrics']['recall@10']:.3f}", file=sys.stderr, flush=True)
        results.append(res)
        return res

    a = run("(a) single query", decomposer="none", k=args.k)
    b = run("(b) gold decomposition", decomposer="gold", k=args.k)

    with contextlib.ExitStack() as stack:
        llm = None
        if args.local or args.llm_base_url:
            cache = None
            if args.llm_cache:
                from rerank_rag.llm import SQLiteCache

                cache = SQLiteCache(args.llm_cache)
            if args.local:
                from rerank_rag.local import LocalLLMServer

                server = stack.enter_context(
                    LocalLLMServer(args.local, n_threads=args.local_threads, port=args.local_port)
                )
                llm = server.make_llm(cache=cache)
            else:
                from rerank_rag.llm import OpenAICompatibleLLM

                llm = OpenAICompatibleLLM(args.llm_model, base_url=args.llm_base_url, cache=cache, api_key="local")
        if llm is not None:
            kw = {} if args.llm_limit is None else {"limit": args.llm_limit}
            c = run("(c) LLM decomposition", decomposer="llm", llm=llm, k=args.k, **kw)
            if args.llm_limit is not None:
                # the baseline and gold on the same questions, for a like-for-like row
                run(f"(a) single query, first {args.llm_limit}", decomposer="none", k=args.k, limit=args.llm_limit)
                run(f"(b) gold decomposition, first {args.llm_limit}", decomposer="gold", k=args.k, limit=args.llm_limit)
            print(f"(c) LLM usage: {json.dumps({k: c['llm_usage'][k] for k in ('llm_calls', 'cache_hits', 'prompt_tokens', 'completion_tokens', 'failed_calls', 'fallbacks')})}")
        else:
            print("(c) not run: pass --local MODEL or --llm-base-url URL to decompose with an LLM")

    print()
    print(format_multihop_table(results))
    print()
    ra, rb = a["metrics"]["recall@10"], b["metrics"]["recall@10"]
    rel = (rb - ra) / ra if ra else float("nan")
    print(f"(b) vs (a): recall@10 {ra:.3f} -> {rb:.3f} ({rel:+.1%} relative)")
    if "pool_matched" in b:
        rm = b["pool_matched"]["metrics"]["recall@10"]
        print(f"(b) vs its pool-matched single query: recall@10 {rm:.3f} -> {rb:.3f}")
    for r in results:
        print(f"{r['label']}: recall@10 by hops {json.dumps({k: round(v, 3) for k, v in r['metrics']['by_hops'].items()})}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
