"""Loaders for your own data: rerank-rag JSONL, RankGPT JSON, TREC run + topics + qrels +
corpus; streaming; dataset names from the files; errors that name the file, line and field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rerank_rag.eval import (
    DataNotFoundError,
    dataset_name,
    detect_format,
    evaluate,
    iter_queries,
    load_corpus,
    load_dataset,
    load_qrels,
    load_topics,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DL19 = DATA / "trec-dl19"

DOCS = {
    "a": "Restart the router: unplug it for thirty seconds and plug it back in.",
    "b": "Your monthly bill is in the app under Account, Invoices, as a PDF file.",
    "c": "To end the contract send the cancellation form; notice is one month.",
    "d": "Move the router away from walls and microwaves for a faster connection.",
}


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _records() -> list[dict]:
    return [
        {"qid": "q1", "query": "internet keeps dropping",
         "candidates": [{"docid": d, "text": DOCS[d], "score": s, "url": f"/help/{d}"} for d, s in (("b", 3.0), ("a", 2.5), ("d", 1.0))],
         "labels": {"a": 2, "d": 1, "c": 0}},
        {"qid": 2, "query": "where is my invoice",
         "candidates": [{"docid": "a", "text": DOCS["a"]}, {"docid": "b", "text": DOCS["b"]}],
         "labels": {"b": 1}},
        {"qid": "q3", "query": "an unlabelled question", "candidates": [{"docid": "c", "text": DOCS["c"]}]},
    ]  # fmt: skip


def test_jsonl_with_inline_labels_loads_as_a_dataset(tmp_path):
    path = _write_jsonl(tmp_path / "support_questions.jsonl", _records())
    assert detect_format(path) == "jsonl"
    ds = load_dataset(path)
    assert ds.name == "support_questions"  # from the file, not from a fixed list
    assert [q.qid for q in ds.queries] == ["q1", "2", "q3"]
    q1 = ds.queries[0]
    assert [c.id for c in q1.candidates] == ["b", "a", "d"] and q1.candidates[1].score == 2.5
    assert q1.candidates[0].metadata == {"url": "/help/b"} and q1.labels == {"a": 2, "d": 1, "c": 0}
    assert ds.queries[1].candidates[0].score is None
    assert ds.qrels == {"q1": {"a": 2, "d": 1, "c": 0}, "2": {"b": 1}}  # q3 has no labels
    assert ds.info["unjudged_queries"] == 1 and ds.corpus["d"] == DOCS["d"]
    res = evaluate(ds.first_stage_run(), ds.qrels, ["mrr@10"])
    assert res.num_queries == 2 and res.means["mrr@10"] == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_a_qrels_file_replaces_inline_labels_and_names_the_dataset(tmp_path):
    path = _write_jsonl(tmp_path / "log.jsonl", _records())
    qrels = tmp_path / "qrels.helpdesk.txt"
    qrels.write_text("q1 0 b 3\n2 0 a 1\n")
    ds = load_dataset(path, qrels=qrels, threshold=2, depth=2)
    assert ds.qrels == {"q1": {"b": 3}, "2": {"a": 1}} and ds.name == "helpdesk"
    assert ds.threshold == 2 and [len(q.candidates) for q in ds.queries] == [2, 2, 1]


def test_queries_stream_one_at_a_time(tmp_path):
    recs = _records()[:2] + [{"qid": "bad", "query": "x", "candidates": [{"docid": "z"}]}]
    path = _write_jsonl(tmp_path / "stream.jsonl", recs)
    it = iter_queries(path)
    assert next(it).qid == "q1" and next(it).qid == "2"  # yielded before the bad line is read
    with pytest.raises(ValueError, match=r"stream.jsonl:3: candidate 0 lacks 'text'"):
        next(it)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"query": "x", "candidates": []}, r":1: record lacks 'qid'"),
        ({"qid": 1, "candidates": []}, r":1: record lacks 'query'"),
        ({"qid": 1, "question": "x", "candidates": []}, r"lacks 'query' \('question' found"),
        ({"qid": 1, "question": "x", "gold_doc_ids": ["a"]}, r"multi-hop questions .* --multihop"),
        ({"qid": 1, "query": "x", "candidates": [{"text": "t"}]}, r"candidate 0 lacks 'docid'"),
        ({"qid": 1, "query": "x", "candidates": [{"docid": "a", "text": "t"}, {"docid": "a", "text": "u"}]},
         r"docid 'a' appears twice"),
        ({"qid": 1, "query": "x", "candidates": [], "labels": {"a": 1.5}}, r"label of 'a' must be an integer grade"),
        ({"qid": 1, "query": "x", "candidates": [{"docid": "a", "text": "t", "score": "high"}]}, r"'score' must be a number"),
        ({"qid": 1, "query": "x"}, r"lacks 'candidates' \(pass --corpus"),
    ],
)  # fmt: skip
def test_malformed_records_are_named(tmp_path, record, message):
    path = _write_jsonl(tmp_path / "bad.jsonl", [record])
    with pytest.raises(ValueError, match=message):
        load_dataset(path, require_labels=False)


def test_missing_files_and_labels_name_the_option(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"nope.jsonl \(given as --run\)"):
        load_dataset(tmp_path / "nope.jsonl")
    path = _write_jsonl(tmp_path / "nolabels.jsonl", [_records()[2]])
    with pytest.raises(DataNotFoundError, match=r"no relevance labels.*--qrels"):
        load_dataset(path)
    with pytest.raises(DataNotFoundError, match=r"qrels not found: .*missing.txt \(given as --qrels\)"):
        load_dataset(path, qrels=tmp_path / "missing.txt")
    assert load_dataset(path, require_labels=False).qrels == {}
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 a 1\n")
    with pytest.raises(ValueError, match="qrels file.*--qrels"):
        detect_format(qrels)


def _trec_files(tmp_path: Path) -> dict[str, Path]:
    run = tmp_path / "run.bm25.txt"
    # q2 lines come first; within q1 the rank column disagrees with the scores
    run.write_text("q2 Q0 c 1 5.0 t\nq2 Q0 b 2 4.0 t\nq1 Q0 a 2 1.0 t\nq1 Q0 d 1 2.0 t\nq1 Q0 b 3 2.0 t\n")
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tinternet keeps dropping\nq2\thow do I cancel\n")
    corpus = tmp_path / "corpus.jsonl.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        for d, t in DOCS.items():
            f.write(json.dumps({"_id": d, "title": "Help", "text": t}) + "\n")
    qrels = tmp_path / "qrels.helpdesk.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\ta\t2\nq2\tc\t1\n")  # BEIR TSV with a header
    return {"run": run, "topics": topics, "corpus": corpus, "qrels": qrels}


def test_trec_run_with_topics_qrels_and_corpus(tmp_path):
    f = _trec_files(tmp_path)
    assert detect_format(f["run"]) == "trec-run"
    ds = load_dataset(f["run"], topics=f["topics"], qrels=f["qrels"], corpus=f["corpus"])
    assert ds.name == "helpdesk" and ds.first_stage == "TREC run run.bm25.txt"
    q2, q1 = ds.queries
    assert q1.text == "internet keeps dropping"
    # trec_eval order: score descending, ties by docid descending
    assert [c.id for c in q1.candidates] == ["d", "b", "a"] and [c.score for c in q1.candidates] == [2.0, 2.0, 1.0]
    assert q1.candidates[2].text == "Help " + DOCS["a"]  # title + text
    assert ds.qrels == {"q1": {"a": 2}, "q2": {"c": 1}}


def test_trec_run_errors_name_the_missing_part(tmp_path):
    f = _trec_files(tmp_path)
    with pytest.raises(DataNotFoundError, match="--topics"):
        load_dataset(f["run"], qrels=f["qrels"], corpus=f["corpus"])
    with pytest.raises(DataNotFoundError, match="--corpus"):
        load_dataset(f["run"], qrels=f["qrels"], topics=f["topics"])
    f["topics"].write_text("q1\tinternet keeps dropping\n")
    with pytest.raises(ValueError, match="'q2' .* no text in the topics"):
        load_dataset(f["run"], qrels=f["qrels"], topics=f["topics"], corpus=f["corpus"])
    small = _write_jsonl(tmp_path / "small.jsonl", [{"_id": "a", "text": "x"}])
    with pytest.raises(ValueError, match=r"3 documents of .* are not in the corpus .*\(e.g. b, c, d\)"):
        load_dataset(f["run"], qrels=f["qrels"], topics=tmp_path / "topics.tsv", corpus=small)
    f["run"].write_text("q1 Q0 a 1 1.0 t\nq2 Q0 b 1 1.0 t\nq1 Q0 c 2 0.5 t\n")
    with pytest.raises(ValueError, match=r":3: query 'q1' appears again .* sort"):
        list(iter_queries(f["run"], topics=tmp_path / "topics.tsv", corpus=f["corpus"]))


def test_rankgpt_json_with_qrels(tmp_path):
    recs = [{"query": "internet keeps dropping", "hits": [
        {"qid": 7, "docid": "d", "content": DOCS["d"], "rank": 1, "score": 9.0},
        {"qid": 7, "docid": "a", "content": DOCS["a"], "rank": 2, "score": 8.0}]}]  # fmt: skip
    path = tmp_path / "retrieved.json"
    path.write_text(json.dumps(recs))
    qrels = tmp_path / "labels.txt"
    qrels.write_text("7 0 a 1\n")
    assert detect_format(path) == "rankgpt"
    ds = load_dataset(path, qrels=qrels)
    assert ds.name == "labels" and ds.queries[0].qid == "7"
    assert [c.id for c in ds.queries[0].candidates] == ["d", "a"] and ds.queries[0].candidates[0].metadata == {"rank": 1}


def test_jsonl_without_candidates_retrieves_from_the_corpus(tmp_path):
    corpus = tmp_path / "articles.tsv"
    corpus.write_text("".join(f"{d}\t{t}\n" for d, t in DOCS.items()))
    path = _write_jsonl(tmp_path / "asked.jsonl", [{"qid": "q1", "query": "router microwaves", "labels": {"d": 2}}])
    ds = load_dataset(path, corpus=corpus, depth=3)
    cands = ds.queries[0].candidates
    assert cands[0].id == "d" and cands[0].score > 0  # BM25's best
    assert len(cands) == 3 and len({c.id for c in cands}) == 3  # filled up to depth with unmatched passages
    assert cands[-1].score == 0.0 and ds.first_stage.startswith("BM25 over articles.tsv")


def test_corpus_topics_and_qrels_variants(tmp_path):
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"x": "one", "y": "two"}, indent=1))
    assert load_corpus(js) == {"x": "one", "y": "two"}
    assert load_corpus(js, ids={"y"}) == {"y": "two"}
    bad = _write_jsonl(tmp_path / "c.jsonl", [{"name": "x", "body": 3}])
    with pytest.raises(ValueError, match=r"c.jsonl:1: corpus record needs an id"):
        load_corpus(bad)
    q = _write_jsonl(tmp_path / "queries.jsonl", [{"_id": "1", "text": "what"}, {"qid": 2, "query": "why"}])
    assert load_topics(q) == {"1": "what", "2": "why"}
    qr = tmp_path / "q.tsv"
    qr.write_text("1\tx\t2\n")
    assert load_qrels(qr) == {"1": {"x": 2}}
    assert dataset_name("qrels.dl19-passage.txt") == "dl19-passage"
    assert dataset_name(None, "/x/support_questions.jsonl.gz") == "support_questions"


@pytest.mark.skipif(not (DL19 / "trec_results_dl19.txt").exists(), reason=f"DL19 data not found at {DL19}")
def test_dl19_as_your_own_trec_files_gives_the_reference_figure(tmp_path):
    """DL19's TREC run + topics + qrels, with a corpus written from its RankGPT file,
    loaded as a new user's files would be: nDCG@10 0.5058, R@100 0.491 (-l 2)."""
    corpus = tmp_path / "corpus.jsonl"
    seen = set()
    with corpus.open("w", encoding="utf-8") as f:
        for rec in json.loads((DL19 / "retrieve_results_dl19.json").read_text()):
            for h in rec["hits"]:
                if h["docid"] not in seen:
                    seen.add(h["docid"])
                    f.write(json.dumps({"docid": h["docid"], "text": h["content"]}) + "\n")
    ds = load_dataset(DL19 / "trec_results_dl19.txt", topics=DL19 / "topics.dl19-passage.txt",
                      qrels=DL19 / "qrels.dl19-passage.txt", corpus=corpus, threshold=2)  # fmt: skip
    assert ds.name == "dl19-passage" and len(ds.queries) == 43
    res = evaluate(ds.first_stage_run(), ds.qrels, ["ndcg@10", "recall@100"], threshold=2)
    assert round(res.means["ndcg@10"], 4) == 0.5058 and round(res.means["recall@100"], 3) == 0.491


def test_rank_dataset_records_a_transient_failure_but_stops_on_one_that_cannot_heal(tmp_path):
    from rerank_rag import LLMError, Ranking, Usage
    from rerank_rag.eval import rank_dataset

    ds = load_dataset(_write_jsonl(tmp_path / "chat.jsonl", _records()))

    class Ranker:
        def __init__(self, exc):
            self.exc = exc

        async def arank(self, query, candidates):
            if query == "where is my invoice":
                raise self.exc
            return Ranking(order=tuple(reversed(range(len(candidates)))), scores=(1.0,) * len(candidates), usage=Usage())

    rows = rank_dataset(Ranker(LLMError("HTTP 503: overloaded")), ds)
    assert [r["error"] for r in rows] == [None, "LLMError: HTTP 503: overloaded", None]
    assert rows[0]["docids"] == ["d", "a", "b"] and rows[1]["docids"] == ["a", "b"]  # first-stage order
    # a missing module fails every query alike: the run stops instead of recording it
    with pytest.raises(ModuleNotFoundError, match="onnxruntime"):
        rank_dataset(Ranker(ModuleNotFoundError("No module named 'onnxruntime'")), ds)
