"""Multi-hop evaluation on your own data: the JSONL loader, every decomposition report with
its pool-matched single-query baseline, and the command line. Small data made here; BM25
only (no model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rerank_rag.eval import evaluate_multihop, format_multihop_table, load_multihop
from rerank_rag.eval._cli import main

FILLER = [
    "The harbour history of the old town mentions ships and traders from the north.",
    "A history of bridges: stone arches replaced the wooden crossings in the valley.",
    "The museum keeps the history of the railway and its first steam engines.",
    "Local history notes the market square, the bakery and the clock tower.",
    "The river history records floods in the spring and droughts in late summer.",
    "School history: the first teachers came from the capital to the village.",
]
CORPUS = {
    "film": "Northern Lights is a film directed by Ada Brandt; it won the festival's golden prize in history.",
    "director": "Ada Brandt was born in Tromso and studied painting before directing films, a history of art.",
    "lake": "Lake Myrvatn lies above the town; its history includes a famous winter race.",
    "race": "The winter race on the lake was first won by Olav Sande, a carpenter, in local history.",
    **{f"f{i}": t for i, t in enumerate(FILLER)},
}
QUESTIONS = [
    {"qid": "h1", "question": "Where was the director of the golden prize winner born?",
     "gold_doc_ids": ["film", "director"],
     "sub_questions": ["Which film won the golden prize?", "Where was Ada Brandt born?"]},
    {"qid": "h2", "question": "What was the job of the first winner of the race on the lake above the town?",
     "gold_doc_ids": ["lake", "race"],
     "sub_questions": ["Which lake lies above the town?", "Who first won the winter race on Lake Myrvatn?"]},
]  # fmt: skip


def _files(tmp_path: Path, questions=QUESTIONS) -> tuple[Path, Path]:
    q = tmp_path / "hops.jsonl"
    q.write_text("".join(json.dumps(r) + "\n" for r in questions))
    c = tmp_path / "docs.jsonl"
    c.write_text("".join(json.dumps({"docid": d, "text": t}) + "\n" for d, t in CORPUS.items()))
    return q, c


def test_loader_reads_questions_and_corpus(tmp_path):
    q, c = _files(tmp_path)
    data = load_multihop(q, c)
    assert data.name == "hops" and len(data.corpus) == len(CORPUS)
    assert [x.qid for x in data.questions] == ["h1", "h2"]
    assert data.questions[0].gold == frozenset({"film", "director"}) and data.questions[0].hops == 2
    assert data.limit(1).questions == data.questions[:1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gold_doc_ids": ["film", "nowhere"]}, r"hops.jsonl:1: gold documents \['nowhere'\] are not in the corpus"),
        ({"gold_doc_ids": []}, r"'gold_doc_ids' must be a non-empty list"),
        ({"sub_questions": "one string"}, r"'sub_questions' must be a list of strings"),
        ({"qid": "h2"}, r"hops.jsonl:2: question 'h2' appears twice"),
    ],
)
def test_loader_errors_name_line_and_field(tmp_path, change, message):
    q, c = _files(tmp_path, [dict(QUESTIONS[0], **change), QUESTIONS[1]])
    with pytest.raises(ValueError, match=message):
        load_multihop(q, c)


def test_missing_field_and_file(tmp_path):
    q, c = _files(tmp_path, [{k: v for k, v in QUESTIONS[0].items() if k != "gold_doc_ids"}])
    with pytest.raises(ValueError, match=r":1: record lacks 'gold_doc_ids'"):
        load_multihop(q, c)
    from rerank_rag.eval import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="--corpus"):
        load_multihop(q, tmp_path / "absent.jsonl")


def test_every_decomposition_report_has_its_pool_matched_baseline(tmp_path):
    data = load_multihop(*_files(tmp_path))
    gold = evaluate_multihop(data, decomposer="gold", reranker="bm25", k=2, top_n=10)
    base = gold["pool_matched"]
    assert gold["metrics"]["queries"] == 3.0  # the question and its two sub-questions
    for row, brow in zip(gold["per_question"], base["per_question"]):
        assert row["matched_k"] == row["pool_size"] > 2 and brow["pool_size"] <= row["matched_k"]  # same budget
        assert brow["queries"] == [row["question"]]  # single query
    assert gold["metrics"]["pool_recall"] == 1.0  # the sub-questions find both hops
    assert base["config"]["decomposer"] == "none (pool-matched)" and "same pool size" in base["label"]
    single = evaluate_multihop(data, decomposer="none", reranker="bm25", k=2)
    assert "pool_matched" not in single
    table = format_multihop_table([single, gold])
    lines = [ln for ln in table.splitlines() if ln.startswith("| (")]
    assert [ln.split(" | ")[0] for ln in lines] == [
        "| (a) single query", "| (b) gold decomposition", "| (b) gold decomposition: single query, same pool size"]
    assert "hops (2 questions)" in table
    no_subs = load_multihop(*_files(tmp_path, [{k: v for k, v in QUESTIONS[0].items() if k != "sub_questions"}]))
    with pytest.raises(ValueError, match=r"needs 'sub_questions' for every question; missing for \['h1'\]"):
        evaluate_multihop(no_subs, decomposer="gold", reranker="none")
    with pytest.warns(DeprecationWarning, match="top_n"):
        old = evaluate_multihop(data, decomposer="none", reranker="none", k=2, top_k=1)
    assert all(len(r["top"]) == 1 for r in old["per_question"]) and old["config"]["top_n"] == 1


def test_multihop_through_the_command_with_a_simulated_decomposer(tmp_path, capsys):
    q, c = _files(tmp_path)
    out = tmp_path / "m.json"
    rc = main(["--multihop", str(q), "--corpus", str(c), "--decomposer", "none,gold,llm", "--reranker", "bm25",
               "--k", "2", "--llm", "sim", "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "SIMULATED" in text and text.count("same pool size") >= 2
    saved = json.loads(out.read_text())["results"]
    assert [r["simulated"] for r in saved] == [False, False, True]
    llm = saved[2]
    assert llm["llm_usage"]["llm_calls"] == 2 and llm["metrics"]["queries"] == 3.0  # the gold sub-questions came back
    assert "simulated (preset dl19" in llm["label"] and "pool_matched" in llm
    assert main(["--multihop", str(q), "--corpus", str(c), "--method", "sliding"]) == 2
    assert main(["--multihop", str(q), "--corpus", str(c), "--decomposer", "oracle"]) == 1
    assert "--decomposer takes none, gold, llm" in capsys.readouterr().err
