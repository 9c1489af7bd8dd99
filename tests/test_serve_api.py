"""``rerank-rag serve`` against the clients RAG apps use, on a real uvicorn server.

One service (module scope) on a free 127.0.0.1 port serves four pipelines: MiniLM
(the offline default), JointRank and LLM yes/no over a judging OpenAI-compatible chat
server (``rerank_rag.testing.ChatServer``, real HTTP), and two over a chat server that
fails every call. Clients: the ``cohere`` SDK's ``ClientV2``, LangChain's
``CohereRerank``, and httpx posting the exact bodies Open WebUI, Dify and RAGFlow send.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import replace

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra")
pytest.importorskip("onnxruntime", reason="needs the minilm extra")

from rerank_rag.serve import BackgroundServer, Limits, LLMSpec, PipelineSpec, ServeConfig  # noqa: E402
from rerank_rag.testing import ChatServer, Reply  # noqa: E402

KEY = "test-key-7f3a"
KEYS_ENV = "RERANK_RAG_TEST_SERVE_KEYS"
TOPIC = "volcano"
_LINE = re.compile(r"(?m)^\[(\d+)\] (.*)$")

QUERY = "Which volcano in Sicily erupts most often?"
DOCS = [
    "The stock market closed higher on Tuesday after the bank report.",
    "Mount Etna is an active volcano on the east coast of Sicily that erupts often.",
    "Knitting patterns for a wool scarf with a cable stitch.",
    "Stromboli, a volcano north of Sicily, has erupted almost continuously for centuries.",
    "A recipe for lemon cake with a sugar glaze.",
    "Train timetables for the summer season.",
]
RELEVANT = {1, 3}


def _judge(body: dict) -> str | Reply:
    """A deterministic judge: relevant-only prompts list the snippets mentioning TOPIC;
    yes/no prompts (logprobs requested) answer with first-token log-probabilities."""
    text = body["messages"][-1]["content"]
    if body.get("logprobs"):
        passage = text.split("Passage:", 1)[1]
        yes = TOPIC in passage
        return Reply(text="Yes" if yes else "No", top_logprobs={"Yes": -0.05 if yes else -4.0, "No": -4.0 if yes else -0.05})
    hits = [i for i, t in _LINE.findall(text) if TOPIC in t]
    return " > ".join(f"[{i}]" for i in hits) or "NO_RELEVANT_SNIPPETS"


@pytest.fixture(scope="module")
def srv():
    old = os.environ.get(KEYS_ENV)
    os.environ[KEYS_ENV] = f"other-key, {KEY}"
    judge = ChatServer(_judge, model="judge").start()
    down = ChatServer(lambda body: Reply(status=500, text="backend exploded"), model="down").start()
    slow = ChatServer(lambda body: Reply(text="[1]", delay=3.0), model="slow").start()

    def llm(server: ChatServer) -> LLMSpec:
        return LLMSpec(base_url=server.base_url, model=server.model, max_retries=0, timeout=10.0)

    cfg = ServeConfig(
        pipelines={
            "minilm": PipelineSpec("minilm", "minilm"),
            "jointrank": PipelineSpec("jointrank", "jointrank", {"block_size": 4, "replicas": 2}, llm(judge)),
            "yesno": PipelineSpec("yesno", "llm-pointwise", {}, replace(llm(judge), cache=True)),
            "down": PipelineSpec("down", "jointrank", {"block_size": 4, "max_block_retries": 0}, llm(down)),
            "down-fallback": PipelineSpec(
                "down-fallback", "jointrank", {"block_size": 4, "max_block_retries": 0}, llm(down),
                on_failure="fallback",
            ),
            "slow": PipelineSpec("slow", "listwise", {"mode": "single"}, llm(slow)),
        },
        default_model="minilm",
        limits=Limits(
            max_documents=100, max_query_chars=300, max_body_bytes=1_000_000,
            max_tokens_per_doc=128, request_timeout=1.5,
        ),
        api_keys_env=KEYS_ENV,
        cache={"kind": "memory"},
    )
    server = BackgroundServer(cfg).start()
    server.judge = judge
    try:
        yield server
    finally:
        server.stop()
        for s in (judge, down, slow):
            s.stop()
        if old is None:
            os.environ.pop(KEYS_ENV, None)
        else:
            os.environ[KEYS_ENV] = old


@pytest.fixture(scope="module")
def client(srv):
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        yield c


def _by_index(results: list[dict]) -> dict[int, float]:
    return {r["index"]: r["relevance_score"] for r in results}


# -- real client libraries ------------------------------------------------------------------


def test_cohere_sdk_v2_client(srv):
    cohere = pytest.importorskip("cohere")
    co = cohere.ClientV2(api_key=KEY, base_url=srv.url)
    res = co.rerank(model="jointrank", query=QUERY, documents=DOCS, top_n=4)
    assert len(res.results) == 4
    scores = [r.relevance_score for r in res.results]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    # a threshold at 0.5 keeps exactly what the LLM judged relevant
    assert {r.index for r in res.results if r.relevance_score >= 0.5} == RELEVANT
    # every document without top_n, and max_tokens_per_doc accepted
    full = co.rerank(model="minilm", query=QUERY, documents=DOCS, max_tokens_per_doc=16)
    assert sorted(r.index for r in full.results) == list(range(len(DOCS)))
    assert full.results[0].index in RELEVANT


def test_cohere_sdk_errors_are_readable(srv):
    cohere = pytest.importorskip("cohere")
    co = cohere.ClientV2(api_key=KEY, base_url=srv.url)
    with pytest.raises(cohere.core.api_error.ApiError) as exc:
        co.rerank(model="no-such-model", query=QUERY, documents=DOCS)
    assert exc.value.status_code == 404
    assert "minilm" in exc.value.body["message"] and "jointrank" in exc.value.body["message"]
    bad = cohere.ClientV2(api_key="wrong", base_url=srv.url)
    with pytest.raises(cohere.errors.UnauthorizedError):
        bad.rerank(model="minilm", query=QUERY, documents=DOCS)


def test_langchain_cohere_rerank(srv):
    lc = pytest.importorskip("langchain_cohere", reason="langchain-cohere is a dev dependency")
    from langchain_core.documents import Document

    reranker = lc.CohereRerank(cohere_api_key=KEY, base_url=srv.url, model="yesno", top_n=3)
    docs = [Document(page_content=d, metadata={"pos": i}) for i, d in enumerate(DOCS)]
    out = reranker.compress_documents(docs, QUERY)
    assert len(out) == 3
    assert {d.metadata["pos"] for d in out[:2]} == RELEVANT
    assert all(d.metadata["relevance_score"] >= 0.5 for d in out[:2])
    assert out[2].metadata["relevance_score"] < 0.5


# -- exact bodies of RAG apps ------------------------------------------------------------------


def test_open_webui_external_reranker_body(srv):
    # backend/open_webui/retrieval/models/external.py: POST {url} (default .../v1/rerank)
    # with {"model", "query", "documents", "top_n": len(docs)}, Bearer api_key; sorts
    # results by index and reads relevance_score for every document.
    payload = {"model": "jointrank", "query": QUERY, "documents": DOCS, "top_n": len(DOCS)}
    r = httpx.post(
        f"{srv.url}/v1/rerank", json=payload,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
    )  # fmt: skip
    assert r.status_code == 200
    data = r.json()
    scores = [x["relevance_score"] for x in sorted(data["results"], key=lambda x: x["index"])]
    assert len(scores) == len(DOCS)
    assert {i for i, s in enumerate(scores) if s >= 0.5} == RELEVANT


def test_dify_openai_compatible_plugin_body(srv):
    # dify-official-plugins models/openai_api_compatible/models/rerank/rerank.py: POST
    # {endpoint_url}/rerank, {"model", "query", "documents", "top_n"}, Authorization
    # "Bearer <key>" (or "" without a key); sorts by relevance_score, applies top_n and
    # its own score_threshold.
    payload = {"model": "yesno", "query": QUERY, "documents": DOCS, "top_n": 3}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    r = httpx.post(f"{srv.url}/rerank", json=payload, headers=headers)
    assert r.status_code == 200
    docs = sorted(r.json()["results"], key=lambda x: x["relevance_score"], reverse=True)[:3]
    kept = [d["index"] for d in docs if d["relevance_score"] >= 0.5]  # score_threshold 0.5
    assert set(kept) == RELEVANT
    # no key configured in Dify: the header is an empty string -> 401
    r = httpx.post(f"{srv.url}/rerank", json=payload, headers={"Content-Type": "application/json", "Authorization": ""})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_ragflow_openai_api_compatible_body(srv):
    # ragflow rag/llm/rerank_model.py OpenAI_APIRerank: texts cut to ~500 tokens, POST
    # {base_url}/rerank with {"model", "query", "documents", "top_n": len(texts)};
    # reads results[].index and results[].relevance_score into an array by index.
    texts = DOCS + ["volcano " * 2000]  # one oversized document: truncated, never rejected
    data = {"model": "minilm", "query": QUERY, "documents": texts, "top_n": len(texts)}
    r = httpx.post(f"{srv.url}/rerank", json=data, headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    res = r.json()
    rank = [0.0] * len(texts)
    for d in res["results"]:
        rank[d["index"]] = d["relevance_score"]
    assert len(res["results"]) == len(texts)
    assert max(range(len(DOCS)), key=lambda i: rank[i]) in RELEVANT
    assert any("truncated" in w for w in res["meta"]["warnings"])
    assert res["usage"]["total_tokens"] > 0


def test_tei_shape_on_rerank(client):
    # text-embeddings-inference: {query, texts, raw_scores, return_text} -> bare array
    r = client.post("/rerank", json={"query": QUERY, "texts": DOCS, "return_text": True})
    assert r.status_code == 200
    arr = r.json()
    assert isinstance(arr, list) and len(arr) == len(DOCS)
    assert [x["score"] for x in arr] == sorted((x["score"] for x in arr), reverse=True)
    assert all(x["text"] == DOCS[x["index"]] for x in arr)
    raw = client.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
    assert [x["index"] for x in raw] == [x["index"] for x in arr]
    assert raw[0]["score"] != arr[0]["score"]  # the cosine, not the relevance
    bad = client.post("/rerank", json={"query": QUERY, "texts": [1, 2]})
    assert bad.status_code == 422 and "texts[0]" in bad.json()["error"]


def test_jina_shape_documents_as_objects_and_return_documents(client):
    docs = [{"text": d} for d in DOCS]
    r = client.post("/v1/rerank", json={"query": QUERY, "documents": docs, "return_documents": True, "top_n": 2})
    assert r.status_code == 200
    data = r.json()
    assert data["model"] == "minilm"  # no model: the default pipeline
    assert [x["document"]["text"] for x in data["results"]] == [DOCS[x["index"]] for x in data["results"]]
    assert len(data["results"]) == 2
    assert r.headers["server-timing"].startswith("rank;dur=")  # the ranker's own time
    empty_model = client.post("/rerank", json={"model": "", "query": QUERY, "documents": DOCS[:2]})
    assert empty_model.json()["model"] == "minilm"


# -- models, health, metrics, docs ------------------------------------------------------------


def test_models_health_metrics_openapi(srv, client):
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert ids == ["minilm", "jointrank", "yesno", "down", "down-fallback", "slow"]
    health = httpx.get(f"{srv.url}/health")  # public: no key
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert httpx.get(f"{srv.url}/metrics").status_code == 401
    client.post("/rerank", json={"query": QUERY, "documents": DOCS[:2]})
    text = client.get("/metrics").text
    assert re.search(r'rerank_rag_requests_total\{model="minilm",route="/rerank",status="200"\} \d', text)
    spec = httpx.get(f"{srv.url}/openapi.json").json()
    assert {"/rerank", "/v1/rerank", "/v2/rerank", "/v1/models"} <= set(spec["paths"])
    assert "documents" in json.dumps(spec["paths"]["/v2/rerank"])
    assert httpx.get(f"{srv.url}/docs").status_code == 200


# -- bad input ---------------------------------------------------------------------------------


def test_malformed_json_and_wrong_types(client):
    r = client.post("/rerank", content=b'{"query": "x", "documents": [', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    for body, field in (
        ({"query": 5, "documents": DOCS}, "query"),
        ({"query": QUERY, "documents": "one string"}, "documents"),
        ({"query": QUERY, "documents": [None]}, "documents[0]"),
        ({"query": QUERY, "documents": DOCS, "top_n": "3"}, "top_n"),
        ({"query": QUERY, "documents": DOCS, "return_documents": "yes"}, "return_documents"),
        ({"documents": DOCS}, "query"),
        ([1, 2], "JSON object"),
    ):
        r = client.post("/rerank", json=body)
        assert r.status_code == 422, body
        assert field in r.json()["message"]
    assert client.post("/rerank", json={"query": "  ", "documents": DOCS}).status_code == 422


def test_empty_documents_and_top_n(client):
    r = client.post("/rerank", json={"query": QUERY, "documents": []})
    assert r.status_code == 200 and r.json()["results"] == []
    for top_n in (0, -1):
        r = client.post("/v2/rerank", json={"model": "minilm", "query": QUERY, "documents": DOCS, "top_n": top_n})
        assert r.status_code == 422 and ">= 1" in r.json()["message"]
    r = client.post("/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 100})
    assert len(r.json()["results"]) == len(DOCS)


def test_size_caps_name_the_limit(client):
    big = b'{"query": "x", "documents": ["' + b"a" * (10 * 1024 * 1024) + b'"]}'
    r = client.post("/rerank", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "1000000 bytes" in r.json()["message"]

    def chunks():  # a chunked upload without Content-Length is capped while reading
        for _ in range(40):
            yield b"x" * 50_000

    r = client.post("/rerank", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/rerank", json={"query": QUERY, "documents": ["d"] * 10_000})
    assert r.status_code == 422 and "10000" in r.json()["message"] and "at most 100" in r.json()["message"]
    r = client.post("/rerank", json={"query": "q" * 301, "documents": DOCS})
    assert r.status_code == 422 and "at most 300" in r.json()["message"]


def test_unicode_documents_map_back_by_position(client):
    docs = ["東京は日本の首都です。", "Etna 🌋 est un volcan actif en Sicile.", "Ünïcödé ẗëxẗ", "", "   "]
    r = client.post("/rerank", json={"query": "volcan 🌋 Sicile", "documents": docs, "return_documents": True})
    assert r.status_code == 200
    results = r.json()["results"]
    assert sorted(x["index"] for x in results) == list(range(len(docs)))
    assert all(x["document"]["text"] == docs[x["index"]] for x in results)
    assert results[0]["index"] == 1


def test_api_key_checks(srv):
    body = {"query": QUERY, "documents": DOCS[:2]}
    assert httpx.post(f"{srv.url}/rerank", json=body).status_code == 401
    assert httpx.post(f"{srv.url}/rerank", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(f"{srv.url}/rerank", json=body, headers={"Authorization": f"Basic {KEY}"}).status_code == 401
    ok = httpx.post(f"{srv.url}/rerank", json=body, headers={"Authorization": "Bearer other-key"})
    assert ok.status_code == 200


# -- failures and deadlines --------------------------------------------------------------------


def test_llm_failing_every_call_is_a_clear_error_not_a_silent_order(client):
    r = client.post("/rerank", json={"model": "down", "query": QUERY, "documents": DOCS})
    assert r.status_code == 503
    assert "failed on every call" in r.json()["message"] and r.headers["retry-after"] == "1"
    fb = client.post("/rerank", json={"model": "down-fallback", "query": QUERY, "documents": DOCS})
    assert fb.status_code == 200
    data = fb.json()
    assert all(x["relevance_score"] < 0.5 for x in data["results"])  # nothing was judged
    assert any("failed" in w for w in data["meta"]["warnings"])


def test_request_deadline(client):
    r = client.post("/rerank", json={"model": "slow", "query": QUERY, "documents": DOCS[:3]})
    assert r.status_code == 504 and "1.5 s" in r.json()["message"]


def test_shared_response_cache(srv, client):
    docs = [f"volcano note {i} on the slopes of Etna" for i in range(3)] + ["unrelated bakery news"]
    body = {"model": "yesno", "query": "where do volcano notes come from?", "documents": docs}
    before = len(srv.judge.requests)
    first = client.post("/rerank", json=body).json()
    mid = len(srv.judge.requests)
    second = client.post("/rerank", json=body).json()
    assert mid - before == len(docs) and len(srv.judge.requests) == mid  # all hits
    assert first["results"] == second["results"]
    assert re.search(r'rerank_rag_cache_hits_total\{model="yesno"\} [1-9]', client.get("/metrics").text)


def test_document_text_and_keys_are_never_logged(client, caplog):
    secret_doc = "zq-unique-document-text-93871 about a volcano"
    with caplog.at_level(logging.DEBUG):
        for model in ("minilm", "jointrank", "down", "down-fallback"):
            client.post("/rerank", json={"model": model, "query": "volcano?", "documents": [secret_doc, "other"]})
        client.post("/rerank", json={"query": "volcano?", "documents": [secret_doc, 5]})
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records  # the failing pipelines did log
    assert "zq-unique-document-text-93871" not in text
    assert KEY not in text
