"""``rerank-rag eval``: argument handling, the report, the table, simulated labels.

Most tests run on a tiny DL19-shaped folder made here; the reference check runs on the
shared data when present.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rerank_rag.eval import evaluate, read_run, run_to_lists
from rerank_rag.eval._cli import main, run_eval
from rerank_rag.eval._methods import METHODS, build_method, resolve_method
from rerank_rag.eval._progress import Progress

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def _tiny_dl19(root: Path, n_queries: int = 3, n_hits: int = 8) -> dict[str, dict[str, int]]:
    d = root / "trec-dl19"
    d.mkdir(parents=True)
    records, qrels = [], {}
    for qi in range(n_queries):
        qid = str(100 + qi)
        hits = []
        qrels[qid] = {}
        for h in range(n_hits):
            docid = f"{qid}-{h}"
            text = (
                f"Document {docid} talks about {WORDS[(qi + h) % 10]} and {WORDS[(qi * 3 + h) % 10]} "
                f"in some detail, with remark number {h * 37 + qi} and a closing sentence."
            )
            hits.append({"content": text, "qid": int(qid), "docid": docid, "rank": h + 1, "score": 10.0 - h})
            qrels[qid][docid] = (h * 7 + qi) % 4  # relevant documents are spread through the list
        records.append({"query": f"question number {qi} about {WORDS[qi]}", "hits": hits})
    (d / "retrieve_results_dl19.json").write_text(json.dumps(records))
    (d / "qrels.dl19-passage.txt").write_text(
        "".join(f"{q} 0 {doc} {g}\n" for q, j in qrels.items() for doc, g in j.items())
    )
    return qrels


def test_help_lists_every_method(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in METHODS:
        assert name in out
    assert "--llm" in out and "simulated" in out.lower()


def test_bad_arguments_are_reported(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--dataset", "dl19", "--method", "magic", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["--dataset", "dl19", "--method", "first-stage", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["--dataset", "dl19", "--method", "first-stage", "--data-dir", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    _tiny_dl19(tmp_path)
    assert main(["--dataset", "dl19", "--method", "cross-encoder", "--data-dir", str(tmp_path), "--quiet"]) == 1
    assert "--model-path" in capsys.readouterr().err


def test_first_stage_report_and_run_file(tmp_path, capsys):
    qrels = _tiny_dl19(tmp_path)
    out, run_path = tmp_path / "r.json", tmp_path / "run.txt"
    rc = main([
        "--dataset", "dl19", "--data-dir", str(tmp_path), "--method", "first-stage",
        "--out", str(out), "--run-out", str(run_path), "--quiet",
    ])
    assert rc == 0
    report = json.loads(out.read_text())
    expected = evaluate(
        {q: sorted(j, key=lambda d: int(d.split("-")[1])) for q, j in qrels.items()},
        qrels, ["ndcg@10"], threshold=2,
    ).means["ndcg@10"]
    assert report["metrics"]["ndcg@10"] == pytest.approx(expected)
    assert report["simulated"] is False and report["label"] == "measured"
    assert report["usage"]["totals"]["llm_calls"] == 0 and report["queries"] == 3
    back = run_to_lists(read_run(run_path))
    assert back["100"] == [f"100-{h}" for h in range(8)]
    table = capsys.readouterr().out
    assert f"{expected:.4f}" in table and "nDCG@10" in table and "LLM calls/q" in table


def test_sim_method_is_labelled_simulated_and_counts_llm_use(tmp_path, capsys):
    _tiny_dl19(tmp_path)
    out = tmp_path / "r.json"
    rc = main([
        "--dataset", "dl19", "--data-dir", str(tmp_path), "--method", "sliding", "--window", "4",
        "--step", "2", "--llm", "sim", "--sim-latency", "0,0,0", "--out", str(out), "--quiet",
    ])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["simulated"] is True and report["label"] == "simulated"
    assert report["simulator_preset"] == "dl19" and report["llm"]["label"] == "simulated (preset dl19)"
    assert report["llm"]["kind"] == "sim" and report["llm"]["simulator"]["label"] == "simulated"
    assert report["usage"]["per_query"]["llm_calls"] == 3  # windows [4,8), [2,6), [0,4)
    assert report["usage"]["per_query"]["depth"] == 3 and report["usage"]["totals"]["total_tokens"] > 0
    assert report["llm"]["stats"]["requests"] == 9 and report["errors"] == 0
    text = capsys.readouterr().out
    assert "SIMULATED" in text and "preset dl19" in text and "| sliding (simulated, preset dl19) |" in text


def test_jointrank_through_the_cli(tmp_path):
    _tiny_dl19(tmp_path)
    out = tmp_path / "j.json"
    rc = main([
        "--dataset", "dl19", "--data-dir", str(tmp_path), "--method", "jointrank", "--block-size", "4",
        "--replicas", "2", "--aggregator", "borda", "--llm", "sim", "--sim-latency", "0,0,0",
        "--parallel", "3", "--out", str(out), "--quiet",
    ])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["method_config"]["aggregator"] == "borda" and report["simulated"] is True
    u = report["usage"]["per_query"]
    assert u["llm_calls"] == 4 and u["depth"] == 1  # 8 candidates x 2 replicas / blocks of 4, one round
    assert report["timing"]["parallel_queries"] == 3 and report["errors"] == 0


def test_noise_free_simulator_reaches_the_oracle(tmp_path):
    """A single window over all candidates with a noise-free simulator sorts by grade."""
    from rerank_rag.eval import load_dl19
    from rerank_rag.eval._simulator import SimulatedLLM

    qrels = _tiny_dl19(tmp_path)
    ds = load_dl19(tmp_path)
    with SimulatedLLM(ds.qrels, corpus=ds.corpus, queries={q.qid: q.text for q in ds.queries}, noise=0.0) as sim:
        llm = sim.client(max_concurrency=4)
        report = run_eval(ds, "single", llm=llm, options={"prompt": "rankgpt"}, llm_info={"kind": "sim"})
        llm.close()
    oracle = {q: sorted(j, key=lambda d: -j[d]) for q, j in qrels.items()}
    expected = evaluate(oracle, qrels, ["ndcg@10"], threshold=2).means["ndcg@10"]
    assert report["metrics"]["ndcg@10"] == pytest.approx(expected)
    assert report["metrics"]["ndcg@10"] > report["first_stage_metrics"]["ndcg@10"]


def test_method_registry():
    assert resolve_method("sliding-window").name == "sliding"
    assert resolve_method("JointRank").name == "jointrank"
    with pytest.raises(ValueError, match="needs an LLM"):
        build_method("jointrank")
    with pytest.raises(ValueError, match="unknown method"):
        resolve_method("pairwise")
    ranker = build_method("first-stage")
    assert ranker.rank("q", ["a", "b", "c"]).order == (0, 1, 2)


def test_progress_bar_on_a_terminal():
    buf = io.StringIO()
    bar = Progress(4, label="dl19", stream=buf, enabled=True)
    for _ in range(4):
        bar.update(1)
    bar.close()
    text = buf.getvalue()
    assert "dl19 [" in text and "4/4" in text and text.endswith("\n") and "\r" in text
    buf = io.StringIO()
    quiet = Progress(4, stream=buf, enabled=False)
    quiet.update(4)
    quiet.close()
    assert buf.getvalue() == ""


def test_progress_logs_periodic_lines_when_not_a_terminal():
    now = [0.0]
    buf = io.StringIO()  # not a TTY
    bar = Progress(10, label="dl19 jointrank", stream=buf, interval=30.0, clock=lambda: now[0])
    for _ in range(4):
        now[0] += 5.0
        bar.update(1)  # 5 s apart: below the interval, nothing logged yet
    assert buf.getvalue() == ""
    now[0] += 10.0
    bar.update(1)  # 30 s after the start: one line
    lines = buf.getvalue().splitlines()
    assert lines == ["[progress] dl19 jointrank: 5/10 queries (50%), 0.17 queries/s, 30.0 s elapsed, ETA 30 s"]
    now[0] += 1.0
    bar.update(5)
    bar.close()
    bar.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("[progress] dl19 jointrank: 10/10 queries (100%)") and "ETA" not in lines[1]


@pytest.mark.skipif(not (DATA / "trec-dl19").exists(), reason=f"DL19 data not found at {DATA}")
def test_first_stage_on_dl19_prints_the_reference_figure(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["--dataset", "dl19", "--data-dir", str(DATA), "--method", "first-stage", "--out", str(out), "--quiet"]) == 0
    assert "| first-stage | 0.5058 |" in capsys.readouterr().out
    assert round(json.loads(out.read_text())["metrics"]["ndcg@10"], 4) == 0.5058


@pytest.mark.skipif(not (DATA / "musique-100").exists(), reason=f"MuSiQue data not found at {DATA}")
def test_musique_decompose_gold_and_simulated_llm(tmp_path, capsys):
    out = tmp_path / "m.json"
    base = ["--dataset", "musique", "--data-dir", str(DATA), "--method", "decompose", "--reranker", "bm25",
            "--queries", "4", "--quiet"]
    assert main(base + ["--decomposer", "gold", "--out", str(out)]) == 0
    gold = json.loads(out.read_text())
    assert gold["simulated"] is False and gold["config"]["questions"] == 4
    assert 0.0 <= gold["metrics"]["recall@10"] <= 1.0
    assert "R@10" in capsys.readouterr().out
    assert main(base + ["--decomposer", "llm", "--llm", "sim", "--sim-latency", "0,0,0", "--out", str(out)]) == 0
    sim = json.loads(out.read_text())
    assert sim["simulated"] is True and "simulated" in sim["label"]
    assert sim["llm_usage"]["llm_calls"] == 4 and sim["metrics"]["queries"] > 1  # sub-questions were used
    assert "SIMULATED" in capsys.readouterr().out
    assert main(base + ["--method", "sliding"]) == 2  # only decompose runs on MuSiQue
