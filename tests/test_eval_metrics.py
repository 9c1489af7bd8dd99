"""Metrics: hand-computed cases, and the DL19 reference figures of shared/data/README.md."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from rerank_rag.eval import (
    evaluate,
    judged_at_k,
    mrr_at_k,
    ndcg_at_k,
    parse_metric,
    read_run,
    recall_at_k,
    run_to_lists,
    write_run,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DL19 = DATA / "trec-dl19"
needs_dl19 = pytest.mark.skipif(
    not (DL19 / "qrels.dl19-passage.txt").exists(),
    reason=f"DL19 data not found at {DL19} (the shared evaluation data sits beside the checkout)",
)


# -- nDCG: hand computations ------------------------------------------------------------


def test_ndcg_linear_gain_and_log2_discount():
    # DCG = 2/log2(3); ideal = 2/log2(2) = 2
    assert ndcg_at_k(["d2", "d1"], {"d1": 2, "d2": 0}, 10) == pytest.approx((2 / math.log2(3)) / 2)


def test_ndcg_ideal_uses_all_judged_documents_not_only_retrieved():
    judg = {"a": 1, "b": 3, "c": 0, "d": 2}  # d is relevant but never retrieved
    dcg = 1 / math.log2(2) + 3 / math.log2(3)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(["a", "b", "c"], judg, 3) == pytest.approx(dcg / idcg)


def test_ndcg_gain_is_linear_not_exponential():
    # with 2^g - 1 gains this would be (7/log2(3)) / (7 + 1/log2(3))
    judg = {"x": 1, "y": 3}
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "y"], judg, 10) == pytest.approx(expected)


def test_ndcg_cutoff_unjudged_duplicates_and_empty():
    judg = {f"r{i}": 1 for i in range(3)}
    ranking = [f"n{i}" for i in range(10)] + ["r0"]
    assert ndcg_at_k(ranking, judg, 10) == 0.0
    assert ndcg_at_k(ranking, judg, 11) > 0.0
    # a duplicate counts once (trec_eval refuses duplicates)
    assert ndcg_at_k(["r0", "r0", "r1"], judg, 3) == pytest.approx(
        (1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    )
    assert ndcg_at_k([], judg, 10) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # no relevant judgment at all
    assert ndcg_at_k(["a", "b"], {"a": -1, "b": 2}, 10) == pytest.approx(1 / math.log2(3))


def test_ndcg_perfect_order_is_one():
    judg = {"a": 3, "b": 2, "c": 1, "d": 0}
    assert ndcg_at_k(["a", "b", "c", "d"], judg, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a", "c"], judg, 10) < 1.0


def test_bad_cutoff_raises():
    with pytest.raises(ValueError, match="positive"):
        ndcg_at_k(["a"], {"a": 1}, 0)
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric("map@10")
    assert parse_metric("nDCG@5") == ("ndcg", 5)


# -- other metrics ------------------------------------------------------------------


def test_mrr_and_recall_respect_the_threshold():
    judg = {"a": 1, "b": 2, "c": 3, "z": 2}
    ranking = ["n", "a", "b", "c"]
    assert mrr_at_k(ranking, judg, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(ranking, judg, 10, threshold=2) == pytest.approx(1 / 3)
    assert mrr_at_k(ranking, judg, 2, threshold=2) == 0.0
    assert recall_at_k(ranking, judg, 10) == pytest.approx(3 / 4)
    assert recall_at_k(ranking, judg, 10, threshold=2) == pytest.approx(2 / 3)
    assert recall_at_k(ranking, judg, 3, threshold=3) == 0.0
    assert recall_at_k(ranking, {"a": 0}, 10) == 0.0


def test_judged_fraction():
    judg = {"a": 0, "b": 1}
    assert judged_at_k(["a", "x", "b", "y"], judg, 2) == pytest.approx(0.5)
    assert judged_at_k(["a", "b"], judg, 10) == pytest.approx(1.0)  # short list: not penalised
    assert judged_at_k([], judg, 10) == 0.0


def test_evaluate_averages_like_trec_eval_by_default():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": ["a"], "q3": ["zz"]}  # q2 missing, q3 not judged
    res = evaluate(run, qrels, ["ndcg@10", "mrr@10"])  # trec_eval default: the run's judged queries
    assert res.queries == "run" and res.threshold == 1
    assert res.num_queries == 1 and res.missing == ("q2",) and res.means["ndcg@10"] == pytest.approx(1.0)
    full = evaluate(run, qrels, ["ndcg@10", "mrr@10"], queries="judged")  # trec_eval -c
    assert full.num_queries == 2 and full.means["ndcg@10"] == pytest.approx(0.5)
    assert full.per_query["mrr@10"] == {"q1": 1.0, "q2": 0.0}
    assert "trec_eval default" in res.describe() and "trec_eval -c" in full.describe()
    assert "relevance threshold 2" in evaluate(run, qrels, threshold=2).describe()
    with pytest.warns(DeprecationWarning, match="queries='judged'"):
        old = evaluate(run, qrels, ["ndcg@10"], complete=True)
    assert old.queries == "judged" and old.means == {"ndcg@10": pytest.approx(0.5)}
    with pytest.raises(ValueError, match="trec_eval -c"):
        evaluate(run, qrels, queries="all")
    with pytest.raises(ValueError, match="int grade"):
        evaluate(run, qrels, threshold=1.5)


# -- TREC run I/O ---------------------------------------------------------------------


def test_read_run_orders_like_trec_eval(tmp_path):
    p = tmp_path / "run.txt"
    # rank column deliberately disagrees; equal scores break ties by docid descending
    p.write_text("q1 Q0 a 1 1.0 t\nq1 Q0 c 2 3.0 t\nq1 Q0 b 3 3.0 t\nq2 Q0 x 1 0.5 t\n")
    run = read_run(p)
    assert [d for d, _ in run["q1"]] == ["c", "b", "a"]
    assert [d for d, _ in read_run(p, order="rank")["q1"]] == ["a", "c", "b"]
    assert [d for d, _ in read_run(p, order="file")["q1"]] == ["a", "c", "b"]
    assert run_to_lists(run) == {"q1": ["c", "b", "a"], "q2": ["x"]}


def test_read_run_rejects_bad_lines(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("q1 Q0 a 1\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_run(p)
    p.write_text("q1 Q0 a 1 1.0 t\nq1 Q0 a 2 0.5 t\n")
    with pytest.raises(ValueError, match="twice"):
        read_run(p)


def test_write_run_roundtrip_keeps_the_given_order(tmp_path):
    # tied and increasing scores: trec_eval would reorder them, so rank scores are written
    run = {"q1": [("b", 1.0), ("a", 1.0), ("c", 5.0)], "q2": ["y", "x"]}
    p = tmp_path / "out.txt"
    write_run(p, run, tag="my run")
    back = read_run(p)
    assert run_to_lists(back) == {"q1": ["b", "a", "c"], "q2": ["y", "x"]}
    lines = p.read_text().splitlines()
    assert lines[0].split() == ["q1", "Q0", "b", "1", "3.000000", "my_run"]
    # strictly decreasing scores are kept as given
    buf = io.StringIO()
    write_run(buf, {"q": [("a", 2.5), ("b", 0.5)]})
    assert buf.getvalue().split("\n")[0].split()[4] == "2.500000"


def test_write_run_rejects_bad_ids(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        write_run(io.StringIO(), {"q 1": ["a"]})
    with pytest.raises(ValueError, match="twice"):
        write_run(io.StringIO(), {"q1": ["a", "a"]})
    with pytest.raises(ValueError, match="scores must be"):
        write_run(io.StringIO(), {"q1": ["a"]}, scores="best")


# -- reference figures (shared/data/README.md) -------------------------------------------


@needs_dl19
def test_dl19_bm25_reference_figures():
    from rerank_rag.eval import load_dl19

    ds = load_dl19(DATA)
    assert len(ds.queries) == 43 and all(len(q.candidates) == 100 for q in ds.queries)
    res = evaluate(ds.first_stage_run(), ds.qrels, ["ndcg@10", "recall@100"], threshold=2)
    assert res.num_queries == 43
    assert round(res.means["ndcg@10"], 4) == 0.5058
    assert round(res.means["recall@100"], 3) == 0.491


@needs_dl19
def test_dl19_trec_run_file_gives_the_same_figures():
    from rerank_rag.eval import load_qrels

    qrels = load_qrels(DL19 / "qrels.dl19-passage.txt")
    run = run_to_lists(read_run(DL19 / "trec_results_dl19.txt"))
    res = evaluate(run, qrels, ["ndcg@10", "recall@100"], threshold=2)
    assert round(res.means["ndcg@10"], 4) == 0.5058
    assert round(res.means["recall@100"], 3) == 0.491


@needs_dl19
def test_dl19_dense_and_oracle_reference_figures():
    from rerank_rag.eval import load_dl19

    dense = load_dl19(DATA, first_stage="dense")
    res = evaluate(dense.first_stage_run(), dense.qrels, ["ndcg@10"], threshold=2)
    assert round(res.means["ndcg@10"], 4) == 0.6202

    bm25 = load_dl19(DATA)
    oracle = {
        q.qid: sorted((c.id for c in q.candidates), key=lambda d: -bm25.qrels[q.qid].get(d, 0))
        for q in bm25.queries
    }
    res = evaluate(oracle, bm25.qrels, ["ndcg@10"], threshold=2)
    assert round(res.means["ndcg@10"], 3) == 0.892


@needs_dl19
def test_writing_then_reading_a_run_preserves_the_metric(tmp_path):
    from rerank_rag.eval import load_dl19

    ds = load_dl19(DATA)
    run = {q.qid: [(c.id, c.score) for c in q.candidates] for q in ds.queries}
    write_run(tmp_path / "bm25.txt", run)
    back = run_to_lists(read_run(tmp_path / "bm25.txt"))
    res = evaluate(back, ds.qrels, ["ndcg@10"], threshold=2)
    assert round(res.means["ndcg@10"], 4) == 0.5058


# -- cross-check against trec_eval itself (pytrec_eval wraps trec_eval's C code) ----------


def _trec_eval():
    return pytest.importorskip(
        "pytrec_eval", reason="pytrec-eval-terrier (in the dev extra) runs trec_eval's own code"
    )


def _random_case(rng):
    qrels, run = {}, {}
    for q in range(6):
        qid = f"q{q}"
        judged = [f"d{q}_{i}" for i in range(rng.randint(1, 15))]
        qrels[qid] = {d: rng.choice([0, 0, 1, 2, 3]) for d in judged}
        if q == 5:
            continue  # judged, not in the run
        pool = judged + [f"u{q}_{i}" for i in range(10)]  # plus unjudged documents
        run[qid] = rng.sample(pool, rng.randint(1, len(pool)))
    run["unjudged"] = ["x", "y"]
    return qrels, run


def test_metrics_match_trec_eval_on_random_runs():
    """Per query and averaged, with relevance levels 1 and 2: nDCG@5/@10 (ndcg_cut), recall@20
    (recall.20) and MRR@10 (recip_rank over the top 10), as trec_eval computes them."""
    import random

    pytrec_eval = _trec_eval()
    rng = random.Random(11)
    for _ in range(25):
        qrels, run = _random_case(rng)
        scored = {q: {d: float(len(docs) - i) for i, d in enumerate(docs)} for q, docs in run.items()}
        top10 = {q: {d: float(10 - i) for i, d in enumerate(docs[:10])} for q, docs in run.items()}
        for level in (1, 2):
            te = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.5", "ndcg_cut.10", "recall.20"}, relevance_level=level).evaluate(scored)
            rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=level).evaluate(top10)
            ours = evaluate(run, qrels, ["ndcg@5", "ndcg@10", "recall@20", "mrr@10"], threshold=level)
            assert sorted(te) == sorted(ours.per_query["ndcg@10"])  # the same queries are averaged
            for qid, vals in te.items():
                assert ours.per_query["ndcg@5"][qid] == pytest.approx(vals["ndcg_cut_5"], abs=1e-9)
                assert ours.per_query["ndcg@10"][qid] == pytest.approx(vals["ndcg_cut_10"], abs=1e-9)
                assert ours.per_query["recall@20"][qid] == pytest.approx(vals["recall_20"], abs=1e-9)
                assert ours.per_query["mrr@10"][qid] == pytest.approx(rr[qid]["recip_rank"], abs=1e-9)
            mean = sum(v["ndcg_cut_10"] for v in te.values()) / len(te)
            assert ours.means["ndcg@10"] == pytest.approx(mean, abs=1e-9)


def test_an_empty_ranking_counts_as_absent_like_in_a_run_file(tmp_path):
    """A TREC run file cannot list a query without documents, so trec_eval never sees it:
    the in-memory run gives what trec_eval gives on the file written from it."""
    pytrec_eval = _trec_eval()
    qrels = {"q1": {"a": 1, "c": 1}, "q2": {"b": 2}}
    run = {"q1": ["c", "a"], "q2": []}
    write_run(tmp_path / "run.txt", run)
    on_file = read_run(tmp_path / "run.txt")
    assert sorted(on_file) == ["q1"]
    te = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate({q: dict(d) for q, d in on_file.items()})
    res = evaluate(run, qrels, ["ndcg@10"])
    assert sorted(te) == sorted(res.per_query["ndcg@10"]) == ["q1"] and res.missing == ("q2",)
    assert evaluate(run, qrels, ["ndcg@10"], queries="judged").num_queries == 2


@needs_dl19
def test_dl19_bm25_run_matches_trec_eval_per_query():
    pytrec_eval = _trec_eval()
    from rerank_rag.eval import load_qrels

    qrels = load_qrels(DL19 / "qrels.dl19-passage.txt")
    run = read_run(DL19 / "trec_results_dl19.txt")
    te = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}, relevance_level=2).evaluate(
        {q: dict(docs) for q, docs in run.items()}
    )
    ours = evaluate(run_to_lists(run), qrels, ["ndcg@10", "recall@100"], threshold=2)
    assert len(te) == ours.num_queries == 43
    for qid, vals in te.items():
        assert ours.per_query["ndcg@10"][qid] == pytest.approx(vals["ndcg_cut_10"], abs=1e-9)
        assert ours.per_query["recall@100"][qid] == pytest.approx(vals["recall_100"], abs=1e-9)
