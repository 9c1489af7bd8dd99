"""Loaders: small files made here, then the real shared data when present."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from rerank_rag.eval import (
    DataNotFoundError,
    load_dl19,
    load_musique,
    load_qrels,
    load_rankgpt_json,
    load_scifact_corpus,
    load_topics,
    parse_numpy_string_list,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _skip_unless(path: Path):
    return pytest.mark.skipif(
        not path.exists(), reason=f"{path} not found (the shared evaluation data sits beside the checkout)"
    )


def test_qrels_and_topics(tmp_path):
    q = tmp_path / "qrels.txt"
    q.write_text("1 0 d1 2\n1 0 d2 0\n\n2 Q0 d9 1\n")
    assert load_qrels(q) == {"1": {"d1": 2, "d2": 0}, "2": {"d9": 1}}
    q.write_text("1 0 d1 high\n")
    with pytest.raises(ValueError, match="grade"):
        load_qrels(q)
    t = tmp_path / "topics.tsv.gz"
    with gzip.open(t, "wt", encoding="utf-8") as f:
        f.write("7\twhat is a flea?\n8\tsecond\tquery with a tab\n")
    assert load_topics(t) == {"7": "what is a flea?", "8": "second\tquery with a tab"}


def test_rankgpt_json_and_jsonl(tmp_path):
    recs = [
        {"query": "q one", "hits": [
            {"content": "p1", "qid": 5, "docid": 11, "rank": 1, "score": 3.0},
            {"content": "p2", "qid": 5, "docid": "12", "rank": 2, "score": 1.0},
        ]},
    ]
    j = tmp_path / "r.json"
    j.write_text(json.dumps(recs))
    jl = tmp_path / "r.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    for path in (j, jl):
        (qh,) = load_rankgpt_json(path)
        assert qh.qid == "5" and qh.query == "q one"
        assert [h.docid for h in qh.hits] == ["11", "12"] and qh.hits[1].content == "p2"
    j.write_text(json.dumps([{"query": "x"}]))
    with pytest.raises(ValueError, match="record 0"):
        load_rankgpt_json(j)


def test_numpy_string_list_keeps_adjacent_literals_apart():
    field = "['First sentence.'\n 'Second, with \"quotes\".' \"It's third.\"]"
    assert parse_numpy_string_list(field) == ["First sentence.", 'Second, with "quotes".', "It's third."]
    assert parse_numpy_string_list("[]") == []


def test_scifact_corpus_from_a_small_zip(tmp_path):
    d = tmp_path / "beir-scifact"
    d.mkdir()
    csv_text = (
        "doc_id,title,abstract,structured\n"
        "42,A title,\"['Sentence one.'\n 'Sentence two.']\",False\n"
    )
    with zipfile.ZipFile(d / "scifact.zip", "w") as zf:
        zf.writestr("corpus_train.csv", csv_text)
    assert load_scifact_corpus(tmp_path) == {"42": ("A title", "Sentence one. Sentence two.")}


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        load_dl19(tmp_path)
    with pytest.raises(ValueError, match="first_stage"):
        load_dl19(tmp_path, first_stage="splade")


@_skip_unless(DATA / "trec-dl19")
def test_real_dl19_shapes():
    ds = load_dl19(DATA, depth=20)
    assert len(ds.queries) == 43 and {len(q.candidates) for q in ds.queries} == {20}
    assert ds.threshold == 2
    q = ds.queries[0]
    assert all(c.id in ds.corpus and ds.corpus[c.id] == c.text for c in q.candidates)
    scores = [c.score for c in q.candidates]
    assert scores == sorted(scores, reverse=True)
    assert ds.limit(3).queries == ds.queries[:3]


@_skip_unless(DATA / "beir-scifact" / "scifact.zip")
def test_real_scifact_corpus():
    corpus = load_scifact_corpus(DATA)
    assert len(corpus) == 5183
    assert all(abstract for _, abstract in corpus.values())
    title, abstract = corpus["4983"]
    assert title.startswith("Microstructural development of human newborn")
    # sentences are joined by spaces, not concatenated
    assert "disabilities. A line scan" in abstract


@_skip_unless(DATA / "musique-100")
def test_real_musique():
    records, corpus = load_musique(DATA)
    assert len(records) == 100 and len(corpus) == 1890
    assert all(len(r["paragraphs"]) == 20 for r in records)
    gold = sum(sum(p["is_supporting"] for p in r["paragraphs"]) for r in records)
    assert gold == 237


def test_scifact_with_a_small_release(tmp_path):
    from rerank_rag.eval import evaluate, load_scifact

    d = tmp_path / "beir-scifact"
    d.mkdir()
    rows = [
        ("1", "Aspirin and heart attacks", "['Aspirin lowers the risk of heart attacks.'\n 'A trial of 20,000 people.']"),
        ("2", "Coffee and sleep", "['Coffee delays sleep onset.']"),
        ("3", "Statins", "['Statins reduce cholesterol.' 'Heart disease falls.']"),
    ]
    import csv as _csv
    import io as _io

    buf = _io.StringIO()
    w = _csv.writer(buf)
    w.writerow(["doc_id", "title", "abstract", "structured"])
    for r in rows:
        w.writerow([*r, "False"])
    with zipfile.ZipFile(d / "scifact.zip", "w") as zf:
        zf.writestr("corpus_train.csv", buf.getvalue())
    with gzip.open(d / "topics.beir-v1.0.0-scifact.test.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("10\tAspirin prevents heart attacks\n11\tcoffee affects sleep\n12\tnot judged\n")
    (d / "qrels.beir-v1.0.0-scifact.test.txt").write_text("10 0 1 1\n11 0 2 1\n")
    ds = load_scifact(tmp_path, depth=2)
    assert [q.qid for q in ds.queries] == ["10", "11"]  # unjudged topics are left out
    assert ds.queries[0].candidates[0].id == "1" and len(ds.queries[0].candidates) <= 2
    assert ds.corpus["1"] == "Aspirin and heart attacks Aspirin lowers the risk of heart attacks. A trial of 20,000 people."
    assert evaluate(ds.first_stage_run(), ds.qrels, ["ndcg@10"]).means["ndcg@10"] == pytest.approx(1.0)

    calls = []

    def factory(docs):
        def retriever(query, k):
            calls.append((query, k))
            return list(reversed(docs))[:k]

        return retriever

    ds2 = load_scifact(tmp_path, depth=3, retriever_factory=factory)
    assert calls[0] == ("Aspirin prevents heart attacks", 3)
    assert [c.id for c in ds2.queries[0].candidates] == ["3", "2", "1"]
