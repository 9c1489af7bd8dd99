"""MuSiQue-100 evaluation plumbing (needs ../shared/data; skipped when absent).

Fast: BM25 first stage and no / BM25-free rerank, so no model is loaded.
"""

from __future__ import annotations

import pytest

from rerank_rag import FakeLLM, Ranking
from rerank_rag.eval._musique import (
    evaluate_musique,
    format_table,
    gold_subquestions,
    load_musique_eval,
)

pytestmark = pytest.mark.data


def test_gold_subquestions_replace_references_by_answers():
    record = {
        "question_decomposition": [
            {"question": "What company published Journal X?", "answer": "American Psychological Association"},
            {"question": "Who was the first president of #1 ?", "answer": "G. Stanley Hall"},
            {"question": "When was #2 born, and where did #1 meet?", "answer": "1844"},
        ]
    }
    assert gold_subquestions(record) == [
        "What company published Journal X?",
        "Who was the first president of American Psychological Association?",
        "When was G. Stanley Hall born, and where did American Psychological Association meet?",
    ]


def test_loader_maps_every_gold_paragraph_into_the_pooled_corpus(shared_data):
    data = load_musique_eval(shared_data)
    assert len(data.records) == 100 and len(data.corpus) == 1890 and data.name == "musique-100"
    assert sum(len(g) for g in data.gold) == 237  # PROVENANCE.md: 237 gold paragraphs
    for record, gold in zip(data.records, data.gold):
        texts = {data.corpus[int(i)].text for i in gold}
        for p in record["paragraphs"]:
            if p["is_supporting"]:
                assert f"{p['title']}\n{p['paragraph_text']}" in texts
    assert all("#" not in q for r in data.records for q in gold_subquestions(r))


def test_bm25_baseline_reproduces_the_published_recall(shared_data):
    # PROVENANCE.md: BM25 over the pooled corpus, R@5 0.48, R@10 0.57, R@20 0.68.
    for k, expected in ((5, 0.48), (10, 0.57), (20, 0.68)):
        res = evaluate_musique(shared_data, decomposer="none", reranker="none", k=k, top_n=k)
        assert res["metrics"]["pool_recall"] == pytest.approx(expected, abs=0.015)


def test_gold_decomposition_raises_pool_recall(shared_data):
    base = evaluate_musique(shared_data, decomposer="none", reranker="none", k=10)
    gold = evaluate_musique(shared_data, decomposer="gold", reranker="none", k=10, top_n=50)
    assert gold["metrics"]["pool_recall"] > base["metrics"]["pool_recall"] + 0.2
    assert gold["metrics"]["queries"] > 3.0  # question + 2-4 gold sub-questions
    for row in gold["per_question"]:
        assert len(row["top"]) == len(set(row["top"]))
        assert row["recall@10"] <= row["pool_recall"] + 1e-9
    assert set(gold["metrics"]["by_hops"]) == {"2-hop (n=68)", "3-hop (n=27)", "4-hop (n=5)"}
    # the pool-matched baseline: the question alone, as many passages as the merged pool
    matched = gold["pool_matched"]
    assert matched["metrics"]["pool_size"] == pytest.approx(gold["metrics"]["pool_size"])
    assert matched["metrics"]["queries"] == 1.0
    assert base["metrics"]["pool_recall"] < matched["metrics"]["pool_recall"] < gold["metrics"]["pool_recall"]


def test_old_import_location_still_works():
    from rerank_rag.decompose import _musique as old

    assert old.evaluate_musique is evaluate_musique and old.load_musique_eval is load_musique_eval
    assert callable(old.make_reranker) and old.format_table is format_table


def test_llm_decomposer_and_custom_ranker_with_fakes(shared_data):
    class Reverse:  # a ranker object is accepted as is
        def rank(self, query, candidates, top_n=None):
            order = list(range(len(candidates)))[::-1]
            return Ranking.from_order(order, top_n)

    llm = FakeLLM(lambda m: "1. What is the capital of France?\n2. Who wrote Hamlet?")
    res = evaluate_musique(
        shared_data, decomposer="llm", llm=llm, reranker=Reverse(), limit=3, k=5, label="fake"
    )
    assert res["config"]["questions"] == 3 and res["label"] == "fake"
    assert res["llm_usage"]["llm_calls"] == 3
    assert all(len(r["queries"]) == 3 for r in res["per_question"])
    table = format_table([res])
    assert "| fake |" in table and "R@10" in table


def test_bad_options_are_rejected(shared_data):
    with pytest.raises(ValueError, match="first_stage"):
        evaluate_musique(shared_data, first_stage="splade")
    with pytest.raises(ValueError, match="decomposer"):
        evaluate_musique(shared_data, decomposer="oracle")
    with pytest.raises(ValueError, match="needs an llm"):
        evaluate_musique(shared_data, decomposer="llm")


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="MuSiQue-100 data not found"):
        load_musique_eval(tmp_path)
