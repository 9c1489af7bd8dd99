"""Batch inputs (RankGPT JSON, TREC run + topics + corpus, JSONL) and the CLI end to end."""

from __future__ import annotations

import json

import pytest

from rerank_rag.batch import BatchError, read_input
from rerank_rag.batch._cli import main
from rerank_rag.testing import ChatServer, Reply


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


DOCS = {"d1": "Paris is the capital of France.", "d2": "Berlin is in Germany.", "d3": "France is in Europe."}


@pytest.fixture
def trec_input(tmp_path):
    run = _write(tmp_path / "bm25.run", "q1 Q0 d2 1 9.0 bm25\nq1 Q0 d1 2 8.0 bm25\nq1 Q0 d3 3 7.5 bm25\nq2 Q0 d3 1 5.0 bm25\nq2 Q0 d1 2 4.0 bm25\n")
    topics = _write(tmp_path / "topics.tsv", "q1\tcapital of France?\nq2\twhere is France?\n")
    corpus = _write(tmp_path / "corpus.tsv", "".join(f"{d}\t{t}\n" for d, t in DOCS.items()) + "d9\tunused\n")
    return run, topics, corpus


def test_three_formats_read_the_same_queries(tmp_path, trec_input):
    run, topics, corpus = trec_input
    trec = list(read_input(run, topics=topics, corpus=corpus))
    rankgpt = _write(
        tmp_path / "in.json",
        json.dumps([
            {"query": "capital of France?", "hits": [{"qid": "q1", "docid": d, "content": DOCS[d], "score": s} for d, s in (("d2", 9), ("d1", 8), ("d3", 7.5))]},
            {"query": "where is France?", "hits": [{"qid": "q2", "docid": d, "content": DOCS[d], "score": s} for d, s in (("d3", 5), ("d1", 4))]},
        ]),
    )
    jsonl = _write(
        tmp_path / "in.jsonl",
        json.dumps({"qid": "q1", "query": "capital of France?", "candidates": [{"docid": d, "text": DOCS[d], "score": s} for d, s in (("d2", 9), ("d1", 8), ("d3", 7.5))]}) + "\n\n"
        + json.dumps({"qid": "q2", "query": "where is France?", "candidates": [{"docid": d, "text": DOCS[d]} for d in ("d3", "d1")]}) + "\n",
    )
    for src in (read_input(rankgpt), read_input(jsonl)):
        got = list(src)
        assert [(q.qid, q.query, [(c.id, c.text) for c in q.candidates]) for q in got] == [
            (q.qid, q.query, [(c.id, c.text) for c in q.candidates]) for q in trec
        ]
    assert read_input(jsonl).total == 2 and read_input(run, topics=topics, corpus=corpus).total == 2
    assert [c.id for c in trec[0].candidates] == ["d2", "d1", "d3"]
    assert [len(q.candidates) for q in read_input(run, topics=topics, corpus=corpus, depth=2)] == [2, 2]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"qid": "q1", "query": "x"}', "lacks 'candidates'"),
        ('{"qid": "q1", "query": "x", "candidates": [{"docid": "a", "text": "t"}, {"docid": "a", "text": "u"}]}', "'a' appears twice"),
        ('{"qid": "q1", "query": "x", "candidates": [{"text": "t"}]}', "lacks 'docid'"),
        ("{not json", "invalid JSON"),
    ],
)
def test_bad_jsonl_names_the_line_and_the_problem(tmp_path, line, message):
    path = _write(tmp_path / "bad.jsonl", '{"qid": "q0", "query": "ok", "candidates": []}\n' + line + "\n")
    with pytest.raises(BatchError, match=message) as info:
        list(read_input(path))
    assert "bad.jsonl:2" in str(info.value)


def test_ids_a_run_file_cannot_hold_are_refused(tmp_path):
    path = _write(tmp_path / "ws.jsonl", '{"qid": "q1", "query": "x", "candidates": [{"docid": "a b", "text": "t"}]}\n')
    with pytest.raises(BatchError, match="'a b' contains whitespace"):
        list(read_input(path))


def test_trec_input_errors(tmp_path, trec_input):
    run, topics, corpus = trec_input
    with pytest.raises(BatchError, match="needs --topics"):
        read_input(run)
    short = _write(tmp_path / "c.tsv", "d1\tParis\n")
    with pytest.raises(BatchError, match="not in the corpus"):
        list(read_input(run, topics=topics, corpus=short))


def _listwise_handler(body):
    """Ranks the passages mentioning "Paris" first: a deterministic, checkable answer."""
    import re

    shown = {}
    for m in body["messages"]:  # RankGPT: one user turn "[i] passage" per passage
        hit = re.match(r"\[(\d+)\] (.*)", m["content"]) if m["role"] == "user" else None
        if hit:
            shown[hit.group(1)] = hit.group(2)
    order = sorted(shown, key=lambda i: ("Paris" not in shown[i], int(i)))
    return Reply(text=" > ".join(f"[{i}]" for i in order))


def test_cli_reranks_a_trec_run_into_a_run_and_a_usage_report(tmp_path, trec_input, capsys):
    run, topics, corpus = trec_input
    out = tmp_path / "out.trec"
    with ChatServer(_listwise_handler) as srv:
        code = main([
            "--input", str(run), "--topics", str(topics), "--corpus", str(corpus), "--out", str(out),
            "--method", "single", "--base-url", srv.base_url, "--model", "m", "--progress", "off",
        ])
    assert code == 0, capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert lines[0] == "q1 Q0 d1 1 1.000000 rerank-rag-single"  # Paris first (positional score)
    assert [ln.split()[2] for ln in lines if ln.startswith("q2")] == ["d1", "d3"]
    report = json.loads((tmp_path / "out.trec.usage.json").read_text())
    assert report["queries"] == 2 and report["usage"]["totals"]["llm_calls"] == 2
    assert report["per_query"]["q1"]["llm_calls"] == 1
    assert "2 queries -> " in capsys.readouterr().out


def test_cli_usage_errors(tmp_path, trec_input, capsys):
    run, topics, corpus = trec_input
    args = ["--input", str(run), "--topics", str(topics), "--corpus", str(corpus), "--out", str(tmp_path / "o.trec")]
    assert main(args + ["--method", "jointrank", "--progress", "off"]) == 1
    assert "--base-url" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args + ["--method", "nope"])
    assert main(args + ["--method", "bm25", "--progress", "off"]) == 0  # no LLM needed
    assert (tmp_path / "o.trec").exists()


def test_cli_stops_on_a_permanent_error(tmp_path, trec_input, capsys):
    from rerank_rag import LLMConfigurationError
    from rerank_rag.llm import OpenAICompatibleLLM

    run, topics, corpus = trec_input
    with ChatServer(lambda body: Reply(status=401, text="invalid api key")) as srv:
        try:
            OpenAICompatibleLLM("m", base_url=srv.base_url, max_retries=0).complete("x")
        except LLMConfigurationError:
            pass
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"the OpenAI client does not raise LLMConfigurationError on 401 yet ({type(exc).__name__})")
        code = main([
            "--input", str(run), "--topics", str(topics), "--corpus", str(corpus), "--out", str(tmp_path / "o.trec"),
            "--method", "sliding", "--window", "2", "--step", "1", "--base-url", srv.base_url, "--model", "m", "--progress", "off",
        ])
    err = capsys.readouterr().err
    assert code == 1 and "permanent LLM error" in err and "0 finished queries" in err
    assert not (tmp_path / "o.trec").exists()
