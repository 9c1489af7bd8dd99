"""BM25 engines on BEIR SciFact: index time, search time, nDCG@10, and small-list scoring.

Part 1, first stage (:class:`rerank_rag.retrievers.BM25Retriever`) over the 5,183
SciFact abstracts (title + abstract), 300 test claims, top-100 per claim:

* ``bm25s``: the ``bm25s`` sparse-matrix engine with PyStemmer's Porter (extra ``bm25``);
* ``python``: the pure-Python inverted index with our Porter stemmer (no dependency).

Both are timed from the raw texts (analysis included) and in a fresh subprocess, so one
does not profit from the other's warm caches (the stemmer memo, imports). The run
also checks that the two return the same passages in the same order.

Part 2, scoring a small candidate list (:class:`rerank_rag.pointwise.BM25Scorer`,
statistics from the candidates themselves): the top-100 SciFact candidates of each
claim, scored by ``BM25Scorer`` as shipped and by each engine directly. (``BM25Scorer``
used ``rank-bm25`` until 0.1; that comparison, which dropped the dependency, is in
docs/backends.md.)

Run (needs ../shared/data or --data-dir; about a minute on 2 idle cores)::

    .venv/bin/python benchmarks/bench_bm25.py [--data-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
_DEFAULT_DATA = Path(os.environ.get("RERANK_RAG_DATA", _REPO.parent / "shared" / "data"))
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def _scifact(data_dir: Path) -> tuple[list[Any], dict[str, str], dict[str, dict[str, int]]]:
    from rerank_rag import Candidate
    from rerank_rag.eval import load_qrels, load_scifact_corpus, load_topics

    d = data_dir / "beir-scifact" if (data_dir / "beir-scifact").is_dir() else data_dir
    corpus = load_scifact_corpus(d)
    docs = [Candidate(text=f"{t} {a}".strip(), id=i) for i, (t, a) in corpus.items()]
    topics = load_topics(d / "topics.beir-v1.0.0-scifact.test.tsv.gz")
    qrels = load_qrels(d / "qrels.beir-v1.0.0-scifact.test.txt")
    return docs, {q: t for q, t in topics.items() if q in qrels}, qrels


def worker(backend: str, data_dir: Path, depth: int) -> dict[str, Any]:
    """One engine, in a fresh process: import, index, search every claim."""
    docs, topics, qrels = _scifact(data_dir)
    t0 = time.perf_counter()
    from rerank_rag.retrievers import BM25Retriever

    if backend == "bm25s":
        import bm25s  # noqa: F401
        import Stemmer  # noqa: F401
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ret = BM25Retriever(docs, backend=backend)
    index_s = time.perf_counter() - t0
    assert ret.backend == backend, ret.backend
    run: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for qid, text in topics.items():
        run[qid] = [str(c.id) for c in ret.search(text, depth)]
    search_s = time.perf_counter() - t0
    from rerank_rag.eval import evaluate

    res = evaluate(run, qrels, ["ndcg@10", "recall@100"], threshold=1)
    return {
        "backend": backend, "import_s": import_s, "index_s": index_s, "search_s": search_s,
        "queries": len(topics), "docs": len(docs), "metrics": dict(res.means), "run": run,
    }  # fmt: skip


def scorer_part(data_dir: Path, runs: dict[str, list[str]], n_queries: int) -> list[dict[str, Any]]:
    """Score each claim's top-100 candidate texts with each small-list engine."""
    from rerank_rag._bm25_engines import PostingsEngine, SparseEngine
    from rerank_rag.pointwise import BM25Scorer, default_tokenize

    docs, topics, _ = _scifact(data_dir)
    text = {str(d.id): d.text for d in docs}
    lists = [(topics[q], [text[d] for d in ids]) for q, ids in list(runs.items())[:n_queries]]
    out = []
    scorer = BM25Scorer(k1=1.5, b=0.75)
    scorer.warm_up()

    def with_engine(cls: Any) -> Any:
        def score(query: str, passages: list[str]) -> list[float]:
            vocab: dict[str, int] = {}
            ids = [[vocab.setdefault(t, len(vocab)) for t in default_tokenize(p)] for p in passages]
            eng = cls(ids, len(vocab), 1.5, 0.75)
            return eng.scores([vocab[t] for t in default_tokenize(query) if t in vocab])

        return score

    engines = {"BM25Scorer": scorer._score,
               "pure Python postings": with_engine(PostingsEngine),
               "bm25s": with_engine(SparseEngine)}  # fmt: skip
    ref = None
    for name, fn in engines.items():
        fn(*lists[0])
        t0 = time.perf_counter()
        got = [fn(q, ps) for q, ps in lists]
        dt = time.perf_counter() - t0
        if ref is None:
            ref = got
        worst = max(abs(a - b) for g, r in zip(got, ref) for a, b in zip(g, r))
        out.append({"engine": name, "lists": len(lists), "ms_per_list": 1000 * dt / len(lists),
                    "max_abs_diff_to_bm25scorer": worst})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=_DEFAULT_DATA)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--backends", default="bm25s,python")
    ap.add_argument("--scorer-queries", type=int, default=300)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.data_dir, args.depth)))
        return 0
    if not (args.data_dir / "beir-scifact").is_dir() and not (args.data_dir / "scifact.zip").is_file():
        print(f"SciFact not found under {args.data_dir} (--data-dir)", file=sys.stderr)
        return 2
    load0 = os.getloadavg()[0]
    results = []
    for backend in args.backends.split(","):
        cmd = [sys.executable, __file__, "--worker", backend, "--data-dir", str(args.data_dir),
               "--depth", str(args.depth)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(f"[{backend}] failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
            continue
        results.append(json.loads(line[len("RESULT "):]))
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
          f"{load0:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip
    if results:
        r0 = results[0]
        print(f"SciFact: {r0['docs']} passages, {r0['queries']} claims, top-{args.depth}")
        print(f"{'engine':8} {'import s':>8} {'index s':>8} {'search s':>9} {'ms/query':>9} "
              f"{'nDCG@10':>8} {'R@100':>6}")  # fmt: skip
        for r in results:
            m = r["metrics"]
            print(f"{r['backend']:8} {r['import_s']:8.2f} {r['index_s']:8.2f} {r['search_s']:9.2f} "
                  f"{1000 * r['search_s'] / r['queries']:9.2f} {m['ndcg@10']:8.4f} {m['recall@100']:6.4f}")
        by = {r["backend"]: r for r in results}
        if "bm25s" in by and "python" in by:
            a, b = by["bm25s"], by["python"]
            same = sum(1 for q in a["run"] if a["run"][q] == b["run"].get(q))
            print(f"identical top-{args.depth} lists: {same}/{len(a['run'])}; bm25s vs python: "
                  f"index {b['index_s'] / a['index_s']:.1f}x faster, "
                  f"search {b['search_s'] / a['search_s']:.1f}x faster")
        scoring = scorer_part(args.data_dir, results[0]["run"], args.scorer_queries)
        print()
        print(f"Scoring one candidate list ({args.depth} SciFact passages, statistics from the list):")
        for s in scoring:
            print(f"  {s['engine']:30} {s['ms_per_list']:7.2f} ms/list  (max |diff| to BM25Scorer "
                  f"{s['max_abs_diff_to_bm25scorer']:.1e}, {s['lists']} lists)")
    else:
        scoring = []
    if args.json:
        for r in results:
            r.pop("run", None)
        with open(args.json, "w") as f:
            json.dump({"retriever": results, "scorer": scoring}, f, indent=2)
    return 0 if results else 1


if __name__ == "__main__":
    raise SystemExit(main())
