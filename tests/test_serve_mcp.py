"""The MCP tools, called with the official ``mcp`` SDK's own client.

* stdio: ``python -m rerank_rag serve --stdio`` as a child process (the way agent
  frameworks launch MCP servers);
* streamable HTTP: ``/mcp`` on a real uvicorn server, with the API key and the
  service limits in force.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="needs the mcp extra")
pytest.importorskip("onnxruntime", reason="needs the minilm extra")

from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

from rerank_rag.serve import BackgroundServer, Limits, PipelineSpec, ServeConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KEY = "mcp-test-key"
KEYS_ENV = "RERANK_RAG_TEST_MCP_KEYS"
QUERY = "Which volcano in Sicily erupts most often?"
DOCS = [
    "The stock market closed higher on Tuesday after the bank report.",
    "Mount Etna is an active volcano on the east coast of Sicily that erupts often.",
    "Knitting patterns for a wool scarf with a cable stitch.",
    "Stromboli, a volcano north of Sicily, has erupted almost continuously for centuries.",
]


def _structured(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def _exercise(session: ClientSession) -> None:
    await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert {"rerank", "prune"} <= set(tools)
    assert "token_budget" in json.dumps(tools["prune"].input_schema)

    out = _structured(await session.call_tool("rerank", {"query": QUERY, "documents": DOCS, "top_n": 3}))
    assert out["model"] == "minilm" and len(out["results"]) == 3
    assert out["results"][0]["index"] in (1, 3)
    scores = [r["relevance_score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)

    # prune: keep the most relevant memory items that fit the budget, in original order
    items = [DOCS[0], DOCS[1] * 3, DOCS[3]]
    pruned = _structured(
        await session.call_tool("prune", {"query": QUERY, "items": items, "token_budget": 40})
    )
    assert pruned["keep"] == [2]  # item 1 is relevant but too long for 40 tokens
    assert pruned["dropped"] == [0, 1] and 0 < pruned["tokens_kept"] <= 40
    relevant_only = _structured(
        await session.call_tool(
            "prune", {"query": QUERY, "items": DOCS, "token_budget": 10_000, "min_relevance": 0.5}
        )
    )
    assert relevant_only["keep"] == [1, 3]

    # the service limits apply to tools too, with the limit in the message
    err = await session.call_tool("rerank", {"query": QUERY, "documents": ["d"] * 51})
    assert err.is_error and "at most 50" in err.content[0].text
    err = await session.call_tool("rerank", {"query": QUERY, "documents": DOCS, "model": "nope"})
    assert err.is_error and "minilm" in err.content[0].text


def test_mcp_stdio_with_the_sdk_client(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text('[limits]\nmax_documents = 50\n[pipelines.minilm]\nranker = "minilm"\n')
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "PYTHONPATH", "HF_HUB_OFFLINE", "TMPDIR")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rerank_rag", "serve", "--stdio", "--config", str(config), "--log-level", "warning"],
        env=env,
    )

    async def run() -> None:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await _exercise(session)

    asyncio.run(asyncio.wait_for(run(), 120))


@pytest.fixture(scope="module")
def http_srv():
    old = os.environ.get(KEYS_ENV)
    os.environ[KEYS_ENV] = KEY
    cfg = ServeConfig(
        pipelines={"minilm": PipelineSpec("minilm", "minilm")},
        limits=Limits(max_documents=50),
        api_keys_env=KEYS_ENV,
        mcp=True,
    )
    with BackgroundServer(cfg) as srv:
        yield srv
    if old is None:
        os.environ.pop(KEYS_ENV, None)
    else:
        os.environ[KEYS_ENV] = old


def test_mcp_streamable_http_with_the_sdk_client(http_srv):
    async def run() -> None:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
        async with http, streamable_http_client(f"{http_srv.url}/mcp", http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await _exercise(session)

    asyncio.run(asyncio.wait_for(run(), 60))


def test_mcp_http_endpoint_requires_the_key(http_srv):
    import httpx

    r = httpx.post(
        f"{http_srv.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert r.status_code == 401
