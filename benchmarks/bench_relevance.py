"""Calibrate the MiniLM cosine -> relevance map (``rerank_rag._relevance.COSINE_MIDPOINT``).

Scores the first-stage candidates of TREC DL19 (BM25 top ``--depth``) and BEIR SciFact
(BM25 top ``--depth``) with :class:`rerank_rag.pointwise.MiniLMScorer`, then reports, per
dataset:

* cosine quantiles of judged-relevant (grade >= the dataset's threshold) and other
  candidates;
* for candidate midpoints, precision / recall / F1 of "relevance >= 0.5" against the
  qrels, and the midpoint with the best F1;
* precision / recall at the shipped ``COSINE_MIDPOINT``.

Run (needs ``../shared/data`` or ``--data-dir``; about 3 minutes on 2 idle cores)::

    .venv/bin/python benchmarks/bench_relevance.py --queries 43 --depth 100
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def _quantiles(xs: list[float], qs: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> list[float]:
    s = sorted(xs)
    if not s:
        return []
    return [round(s[min(len(s) - 1, int(q * len(s)))], 3) for q in qs]


def _prf(rows: list[tuple[bool, float]], midpoint: float) -> tuple[float, float, float]:
    tp = sum(1 for rel, c in rows if rel and c >= midpoint)
    fp = sum(1 for rel, c in rows if not rel and c >= midpoint)
    fn = sum(1 for rel, c in rows if rel and c < midpoint)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--queries", type=int, default=43, help="queries per dataset")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--json", default=None, help="write the numbers here")
    args = ap.parse_args()

    from rerank_rag._relevance import COSINE_MIDPOINT
    from rerank_rag.eval._data import default_data_dir, load_dl19, load_scifact
    from rerank_rag.pointwise import MiniLMScorer

    data_dir = args.data_dir or default_data_dir()
    if data_dir is None:
        raise SystemExit("no evaluation data: pass --data-dir (the folder holding trec-dl19/)")
    scorer = MiniLMScorer()
    report: dict[str, Any] = {"shipped_midpoint": COSINE_MIDPOINT}
    for name, loader in (("dl19", load_dl19), ("scifact", load_scifact)):
        ds = loader(data_dir, depth=args.depth).limit(args.queries)
        rows: list[tuple[bool, float]] = []
        t0 = time.perf_counter()
        for q in ds.queries:
            cos = scorer.score(q.text, [c.text for c in q.candidates])
            judged = ds.qrels.get(q.qid, {})
            rows += [(judged.get(str(c.id), 0) >= ds.threshold, v) for c, v in zip(q.candidates, cos)]
        secs = time.perf_counter() - t0
        grid = [round(0.25 + 0.01 * i, 2) for i in range(46)]
        best = max(grid, key=lambda m: _prf(rows, m)[2])
        p, r, f = _prf(rows, COSINE_MIDPOINT)
        bp, br, bf = _prf(rows, best)
        report[name] = {
            "queries": len(ds.queries),
            "candidates": len(rows),
            "relevant": sum(rel for rel, _ in rows),
            "seconds": round(secs, 1),
            "cosine_quantiles_relevant": _quantiles([c for rel, c in rows if rel]),
            "cosine_quantiles_other": _quantiles([c for rel, c in rows if not rel]),
            "best_f1_midpoint": best,
            "at_best": {"precision": round(bp, 3), "recall": round(br, 3), "f1": round(bf, 3)},
            "at_shipped": {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3)},
        }
        print(f"{name}: {json.dumps(report[name])}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
