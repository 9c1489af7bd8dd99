"""``import rerank_rag`` must be cheap and framework-free (checked in fresh processes)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("openai", "numpy", "torch", "pydantic", "langchain_core", "llama_index", "haystack",
         "onnxruntime", "sentence_transformers", "rank_bm25", "tiktoken", "httpx", "asyncio",
         "bm25s", "Stemmer", "onnx", "fastapi", "starlette", "uvicorn", "prometheus_client", "ray",
         "mcp", "cohere", "yaml")


def _probe(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_module():
    res = _probe(
        "import sys, json, rerank_rag; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    assert res == []


def test_import_time_well_under_100ms():
    # Best of several fresh interpreters, measured inside the process (no interpreter start-up).
    code = (
        "import time, json; t = time.perf_counter(); import rerank_rag; "
        "print(json.dumps((time.perf_counter() - t) * 1000))"
    )
    best = min(_probe(code) for _ in range(5))
    assert best < 100, f"import rerank_rag took {best:.1f} ms"


def test_lazy_names_resolve_without_extras():
    # Names whose modules need no optional dependency resolve; the rest are at least listed.
    import rerank_rag

    assert set(rerank_rag._LAZY) <= set(rerank_rag.__all__)
    assert "FakeLLM" in dir(rerank_rag)


def test_unknown_attribute_raises():
    import pytest

    import rerank_rag

    with pytest.raises(AttributeError):
        rerank_rag.DoesNotExist  # noqa: B018


def test_subpackages_stay_light():
    mods = ["rerank_rag.listwise", "rerank_rag.jointrank", "rerank_rag.decompose", "rerank_rag.eval"]
    for mod in mods:
        res = _probe(
            f"import sys, json, importlib; importlib.import_module({mod!r}); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'openai','numpy','torch','langchain_core','llama_index','haystack','onnxruntime'})))"
        )
        assert res == [], f"{mod} imports {res}"
