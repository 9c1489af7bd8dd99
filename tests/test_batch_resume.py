"""Resumable and lossless: kill ``rerank-rag batch`` mid-run (SIGTERM, then SIGKILL), rerun,
and get the same run file as an uninterrupted run, every query exactly once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from rerank_rag import ListwiseRanker
from rerank_rag.batch import BatchError, Journal, finalize, journal_path, read_journal, rerank_to_run
from rerank_rag.batch._journal import load_record
from rerank_rag.batch._types import BatchResult
from rerank_rag._types import Ranking, Usage
from rerank_rag.testing import ChatServer, Reply, synthetic_queries

REPO = Path(__file__).resolve().parents[1]
N_QUERIES = 40


def _handler(body):
    text = "\n".join(m["content"] for m in body["messages"])
    ids = sorted(set(re.findall(r"\[(\d+)\]", text)), key=lambda x: (zlib.crc32((x + text[-60:]).encode()), x))
    return Reply(text=" > ".join(f"[{i}]" for i in ids), delay=0.02)


@pytest.fixture(scope="module")
def server():
    with ChatServer(_handler) as srv:
        yield srv


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch") / "queries.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for qid, query, cands in synthetic_queries(N_QUERIES, 12, seed=5, words=10):
            rec = {"qid": qid, "query": query, "candidates": [{"docid": c.id, "text": c.text, "score": c.score} for c in cands]}
            f.write(json.dumps(rec) + "\n")
    return path


def _cli(input_file, out, server, *extra):
    return [
        sys.executable, "-m", "rerank_rag", "batch", "--input", str(input_file), "--out", str(out),
        "--method", "sliding", "--window", "6", "--step", "3", "--base-url", server.base_url,
        "--model", "test-model", "--max-in-flight", "8", "--progress", "log", "--log-every", "0.2", *extra,
    ]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _start_and_kill(cmd, journal, sig, min_done):
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and len(read_journal(journal)[1]) >= min_done:
            break
        if proc.poll() is not None:
            pytest.fail(f"the batch finished before it could be interrupted: {proc.communicate()}")
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_kill_mid_run_then_resume_gives_the_uninterrupted_run(server, input_file, tmp_path, capsys):
    from rerank_rag.batch import read_input
    from rerank_rag.llm import OpenAICompatibleLLM

    # the reference: one uninterrupted run (in-process)
    ref = tmp_path / "ref.trec"
    llm = OpenAICompatibleLLM("test-model", base_url=server.base_url, max_concurrency=8, seed=0)
    ranker = ListwiseRanker(llm, window_size=6, step=3)
    report = rerank_to_run(ranker, read_input(input_file), ref, max_calls_in_flight=8, progress="off", tag="rerank-rag-sliding")
    assert report["queries"] == N_QUERIES

    out = tmp_path / "run.trec"
    journal = journal_path(out)
    cmd = _cli(input_file, out, server)
    code, _, err = _start_and_kill(cmd, journal, signal.SIGTERM, 5)
    assert code == 143, err
    assert "Rerun the same command to resume" in err
    after_term = len(read_journal(journal)[1])
    assert 5 <= after_term < N_QUERIES
    assert not out.exists()  # the run file is written only when every query is done

    code, _, err = _start_and_kill(cmd, journal, signal.SIGKILL, after_term + 5)
    assert code == -signal.SIGKILL
    after_kill = len(read_journal(journal)[1])
    assert after_term + 5 <= after_kill < N_QUERIES

    # resume: the same command (run in-process: the interrupted ones were real processes)
    from rerank_rag.batch._cli import main

    args = cmd[cmd.index("batch") + 1 :]
    assert main(args) == 0
    assert out.read_text() == ref.read_text()
    usage = json.loads((tmp_path / "run.trec.usage.json").read_text())
    assert usage["queries"] == N_QUERIES and len(usage["per_query"]) == N_QUERIES
    assert usage["this_run"]["queries_resumed"] == after_kill
    assert usage["this_run"]["queries_ranked"] == N_QUERIES - after_kill
    qids = [line.split()[0] for line in out.read_text().splitlines()]
    assert list(dict.fromkeys(qids)) == [f"q{i}" for i in range(N_QUERIES)]  # input order, once each

    # a rerun of a finished batch ranks nothing and rewrites the same run
    capsys.readouterr()
    assert main(args) == 0
    assert "this run ranked 0" in capsys.readouterr().out
    assert out.read_text() == ref.read_text()


def _result(i, qid, order):
    return BatchResult(index=i, qid=qid, ranking=Ranking(order=order, scores=(2.0, 1.0), usage=Usage(llm_calls=1, retries=i)), docids=tuple(f"d{j}" for j in order))


def test_journal_cuts_a_torn_last_line_and_keeps_each_query_once(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, {"method": "m"}) as j:
        j.append(_result(1, "b", (1, 0)))
        j.append(_result(0, "a", (0, 1)))
        j.append(_result(0, "a", (1, 0)))  # a duplicate delivery is ignored
    with open(path, "ab") as f:
        f.write(b'{"i": 2, "qid": "c", "ord')  # killed mid-write
    j = Journal(path, {"method": "m"})
    assert j.done == {"a", "b"} and j.resumed == 2
    j.append(_result(2, "c", (0, 1)))
    j.close()
    header, entries, good = read_journal(path)
    assert header["method"] == "m" and good == path.stat().st_size
    assert [(e.qid, e.index) for e in entries] == [("b", 1), ("a", 0), ("c", 2)]
    with open(path, "rb") as f:
        assert load_record(f, entries[1])["order"] == [0, 1]  # the first record of "a" wins
    run = tmp_path / "run.trec"
    report = finalize(path, run, tag="t", only={"a", "b", "c"})
    assert [line.split()[0] for line in run.read_text().splitlines()] == ["a", "a", "b", "b", "c", "c"]
    assert run.read_text().splitlines()[0] == "a Q0 d0 1 2.000000 t"
    assert report["per_query"]["b"]["retries"] == 1 and report["usage"]["totals"]["retries"] == 3
    with pytest.raises(BatchError, match="no result"):
        finalize(path, run, only={"a", "b", "c", "d"})


def test_a_journal_of_other_settings_is_refused(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path, {"method": "sliding", "config": {"window": 20}}).close()
    with pytest.raises(BatchError, match="other settings"):
        Journal(path, {"method": "sliding", "config": {"window": 10}})
    Journal(path, {"method": "sliding", "config": {"window": 10}}, restart=True).close()
    assert read_journal(path)[0]["config"] == {"window": 10}
