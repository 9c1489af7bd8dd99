"""Ray Serve: the same app as a deployment on a local Ray instance gives the same answers
as the plain server. One module-scoped Ray instance (starting Ray is slow)."""

from __future__ import annotations

import socket

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra")
pytest.importorskip("onnxruntime", reason="needs the minilm extra")
ray = pytest.importorskip("ray", reason="needs the ray extra (pip install 'rerank-rag[ray]')")
serve = pytest.importorskip("ray.serve", reason="needs ray[serve] (extra ray)")

from rerank_rag.serve import BackgroundServer, PipelineSpec, ServeConfig, ray_deployment  # noqa: E402

CFG = ServeConfig(
    pipelines={"minilm": PipelineSpec("minilm", "minilm"), "lexical": PipelineSpec("lexical", "bm25")},
    api_keys_env=None,
)
QUERY = "Which volcano in Sicily erupts most often?"
DOCS = [
    "The stock market closed higher on Tuesday after the bank report.",
    "Mount Etna is an active volcano on the east coast of Sicily that erupts often.",
    "Knitting patterns for a wool scarf with a cable stitch.",
    "Stromboli, a volcano north of Sicily, has erupted almost continuously for centuries.",
]
REQUESTS = [
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "return_documents": True}),
    ("/v2/rerank", {"model": "lexical", "query": QUERY, "documents": DOCS, "top_n": 2}),
    ("/rerank", {"query": QUERY, "texts": DOCS, "raw_scores": True}),
    ("/rerank", {"model": "nope", "query": QUERY, "documents": DOCS}),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_url():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        port = _free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(ray_deployment(CFG, replicas=1), name="rerank-rag", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def _answers(base: str) -> list[tuple[int, object]]:
    out = []
    for path, body in REQUESTS:
        r = httpx.post(base + path, json=body, timeout=60)
        data = r.json()
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "id"}  # a fresh id per response
        out.append((r.status_code, data))
    return out


def test_ray_serve_gives_the_plain_servers_answers(ray_url):
    with BackgroundServer(CFG) as plain:
        expected = _answers(plain.url)
    got = _answers(ray_url)
    assert [c for c, _ in got] == [200, 200, 200, 404]
    assert got == expected
    health = httpx.get(f"{ray_url}/health", timeout=30).json()
    assert health["status"] == "ok" and health["models"] == ["minilm", "lexical"]
