"""LlamaIndex postprocessors in LlamaIndex's own machinery (no network)."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode  # noqa: E402

from llama_index.postprocessor.rerank_rag import ListwiseRerank, PointwiseRerank  # noqa: E402
from rerank_rag import FakeLLM  # noqa: E402

QUERY = "Which river flows through Paris?"


def _ids(nodes):
    return [n.node.node_id for n in nodes]


def test_postprocess_orders_by_llm_with_new_scored_nodes(nodes, fake_llm):
    snapshot = [(n.node.node_id, n.score, dict(n.node.metadata)) for n in nodes]
    out = ListwiseRerank(llm=fake_llm, top_n=3).postprocess_nodes(nodes, query_str=QUERY)
    assert _ids(out)[0] == "d2" and len(out) == 3
    scores = [n.score for n in out]
    assert scores == sorted(scores, reverse=True)
    assert all(o is not n for o in out for n in nodes)  # new NodeWithScore objects
    assert [(n.node.node_id, n.score, dict(n.node.metadata)) for n in nodes] == snapshot


def test_apostprocess_is_native_async(nodes, oracle):
    threads: list[str] = []

    def handler(messages):
        threads.append(threading.current_thread().name)
        return oracle(messages)

    pp = ListwiseRerank(llm=FakeLLM(handler), top_n=2, window_size=4, step=2)

    async def main():
        out = await pp.apostprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
        return threading.current_thread().name, out

    loop_thread, out = asyncio.run(main())
    assert _ids(out)[0] == "d2"
    assert threads and set(threads) == {loop_thread}  # not asyncio.to_thread
    assert _ids(pp.postprocess_nodes(nodes, query_str=QUERY)) == _ids(out)


def test_keep_retrieval_score_goes_to_hidden_metadata(nodes, fake_llm):
    pp = ListwiseRerank(llm=fake_llm, top_n=None, keep_retrieval_score=True)
    out = pp.postprocess_nodes(nodes, query_str=QUERY)
    first_stage = {n.node.node_id: n.score for n in nodes}
    for n in out:
        assert n.node.metadata["retrieval_score"] == first_stage[n.node.node_id]
        assert "retrieval_score" not in n.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "retrieval_score" not in n.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert n.node.metadata["src"] == n.node.node_id
    assert all("retrieval_score" not in n.node.metadata for n in nodes)  # originals untouched


def test_rerank_events_are_dispatched(nodes, fake_llm):
    seen: list[tuple[str, int]] = []

    class Handler(BaseEventHandler):
        def handle(self, event, **kwargs):
            if event.class_name() in ("ReRankStartEvent", "ReRankEndEvent"):
                seen.append((event.class_name(), len(event.nodes)))

    root = get_dispatcher()
    handler = Handler()
    root.add_event_handler(handler)
    try:
        ListwiseRerank(llm=fake_llm, top_n=2).postprocess_nodes(nodes, query_str=QUERY)
        asyncio.run(ListwiseRerank(llm=fake_llm, top_n=2).apostprocess_nodes(nodes, query_str=QUERY))
    finally:
        root.event_handlers.remove(handler)
    assert seen == [("ReRankStartEvent", 6), ("ReRankEndEvent", 2)] * 2


def test_bad_input(nodes, fake_llm):
    pp = ListwiseRerank(llm=fake_llm, top_n=10)
    with pytest.raises(ValueError, match="query"):
        pp.postprocess_nodes(nodes)  # no query bundle: never guess
    assert pp.postprocess_nodes([], query_str=QUERY) == []
    assert asyncio.run(pp.apostprocess_nodes([], query_str=QUERY)) == []
    empty = [NodeWithScore(node=TextNode(text=""), score=0.5), nodes[2]]
    out = pp.postprocess_nodes(empty, query_str=QUERY)
    assert len(out) == 2 and out[0].node.node_id == "d2"  # top_n > len: all kept
    with pytest.raises(ValueError, match="query"):
        pp.postprocess_nodes(nodes, query_str="  ")  # a blank query is no query either
    with pytest.raises(ValueError):
        ListwiseRerank(llm=fake_llm, top_n=0)


def test_serialization_and_class_name(fake_llm):
    pp = ListwiseRerank(llm=fake_llm, top_n=3, window_size=6, step=3)
    data = pp.to_dict()
    assert data["class_name"] == ListwiseRerank.class_name() == "RerankRagListwiseRerank"
    assert data["window_size"] == 6 and data["llm"]["restorable"] is False  # FakeLLM: described
    with pytest.raises(ValueError, match="llm="):
        ListwiseRerank.from_dict(data)
    again = ListwiseRerank.from_dict(data, llm=fake_llm)
    assert again.to_dict() == data
    assert again.ranker is not pp.ranker and pp.ranker is pp.ranker  # built once per object


def test_pointwise_bm25(nodes):
    out = PointwiseRerank(scorer="bm25", top_n=1).postprocess_nodes(nodes, query_str="Seine river")
    assert _ids(out) == ["d2"]


def test_jointrank_postprocessor(nodes, fake_llm):
    from llama_index.postprocessor.rerank_rag import JointRankRerank

    pp = JointRankRerank(llm=fake_llm, top_n=2, block_size=3, replicas=2)
    assert _ids(pp.postprocess_nodes(nodes, query_str=QUERY))[0] == "d2"
    assert _ids(asyncio.run(pp.apostprocess_nodes(nodes, query_str=QUERY)))[0] == "d2"


def test_llama_index_llm_object(nodes, oracle_llm_cls):
    pp = ListwiseRerank(llm=oracle_llm_cls(), top_n=2, window_size=4, step=2)
    assert _ids(pp.postprocess_nodes(nodes, query_str=QUERY))[0] == "d2"
    assert _ids(asyncio.run(pp.apostprocess_nodes(nodes, query_str=QUERY)))[0] == "d2"


def test_against_openai_compatible_server(nodes, oracle):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    with ChatServer(lambda body: oracle(body["messages"])) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, max_retries=0)
        pp = ListwiseRerank(llm=llm, top_n=2)
        out = pp.postprocess_nodes(nodes, query_str=QUERY)
        aout = asyncio.run(pp.apostprocess_nodes(nodes, query_str=QUERY))
        assert len(srv.requests) >= 2
    assert _ids(out)[0] == "d2" and _ids(aout)[0] == "d2"


# -- 0.2: serialization, Settings.llm, events, any ranker ---------------------------------


def test_a_missing_query_raises_before_any_rerank_event(nodes, fake_llm):
    seen: list[str] = []

    class Handler(BaseEventHandler):
        def handle(self, event, **kwargs):
            if event.class_name() in ("ReRankStartEvent", "ReRankEndEvent"):
                seen.append(event.class_name())

    root = get_dispatcher()
    handler = Handler()
    root.add_event_handler(handler)
    try:
        pp = ListwiseRerank(llm=fake_llm)
        with pytest.raises(ValueError, match="query"):
            pp.postprocess_nodes(nodes)
        with pytest.raises(ValueError, match="query"):
            asyncio.run(pp.apostprocess_nodes(nodes, query_str=""))
        assert seen == [] and not fake_llm.calls
        pp.postprocess_nodes(nodes, query_str=QUERY)
    finally:
        root.event_handlers.remove(handler)
    assert seen == ["ReRankStartEvent", "ReRankEndEvent"]  # every start has its end


def test_llama_index_llm_config_round_trips_without_credentials(nodes):
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata, MockLLM

    pp = ListwiseRerank(llm=MockLLM(max_tokens=7), top_n=3, window_size=6, step=3)
    data = pp.to_dict()
    assert data["llm"]["class_name"] == "MockLLM" and data["llm"]["max_tokens"] == 7
    again = ListwiseRerank.from_json(pp.to_json())  # no llm= needed
    assert isinstance(again.llm, MockLLM) and again.llm.max_tokens == 7
    assert again.to_dict() == data and again.window_size == 6

    class KeyedLLM(CustomLLM):
        api_key: str = "sk-not-for-json-77"
        model: str = "keyed"

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name=self.model)

        def complete(self, prompt, formatted=False, **kwargs):
            return CompletionResponse(text="[1]")

        def stream_complete(self, prompt, formatted=False, **kwargs):
            yield self.complete(prompt)

    keyed = ListwiseRerank(llm=KeyedLLM())
    text = keyed.to_json()
    assert "sk-not-for-json-77" not in text and '"model": "keyed"' in text
    with pytest.raises(ValueError, match="llm="):  # a class outside llama_index.*: not imported
        ListwiseRerank.from_json(text)
    assert ListwiseRerank.from_json(text, llm=KeyedLLM()).to_json() == text


def test_openai_compatible_llm_round_trips_into_a_query_engine(monkeypatch, bm25_retriever, oracle):
    pytest.importorskip("openai")
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-serialized-42")
    with ChatServer(lambda body: oracle(body["messages"])) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, max_retries=0)
        text = ListwiseRerank(llm=llm, top_n=1).to_json()
        assert "sk-never-serialized-42" not in text and "test-model" in text
        loaded = ListwiseRerank.from_json(text)
        engine = RetrieverQueryEngine.from_args(bm25_retriever, llm=MockLLM(),
                                                node_postprocessors=[loaded])
        assert _ids(engine.query(QUERY).source_nodes) == ["d2"]
        assert srv.requests and all(r["model"] == "test-model" for r in srv.requests)


@pytest.fixture
def settings_llm(oracle_llm_cls):
    from llama_index.core import Settings

    previous = Settings._llm
    Settings.llm = oracle_llm_cls(subquestions=["Which city hosts the Louvre?",
                                                "Which river crosses the French capital?"])
    yield Settings.llm
    Settings._llm = previous


def test_settings_llm_is_the_default_llm(settings_llm, bm25_retriever, nodes):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from llama_index.postprocessor.rerank_rag import DecomposeRetriever, JointRankRerank

    pp = ListwiseRerank(top_n=1)
    assert pp.llm is None and pp.to_dict()["llm"] is None  # reloads with Settings.llm again
    engine = RetrieverQueryEngine.from_args(bm25_retriever, llm=MockLLM(), node_postprocessors=[pp])
    assert _ids(engine.query(QUERY).source_nodes) == ["d2"]
    joint = JointRankRerank(top_n=1, block_size=3, replicas=2)
    assert _ids(joint.postprocess_nodes(nodes, query_str=QUERY)) == ["d2"]
    decompose = DecomposeRetriever(bm25_retriever, reranker=ListwiseRerank(top_n=1), k=1)
    assert _ids(decompose.retrieve("Which river flows through the city of the Louvre?")) == ["d2"]


class _LengthRanker:
    """A ranker written by a user: shortest passage first (any rank/arank works)."""

    def rank(self, query, candidates, top_n=None):
        from rerank_rag import Ranking

        return Ranking.from_scores([-len(c.text) for c in candidates], top_n)

    async def arank(self, query, candidates, top_n=None):
        return self.rank(query, candidates, top_n)


def test_generic_postprocessor_wraps_any_ranker(nodes, bm25_retriever, oracle_llm_cls):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from llama_index.postprocessor.rerank_rag import RerankRagPostprocessor
    from rerank_rag import ListwiseRanker

    pp = RerankRagPostprocessor(ranker=_LengthRanker(), top_n=2)
    shortest = sorted(nodes, key=lambda n: len(n.node.get_content()))[:2]
    assert _ids(pp.postprocess_nodes(nodes, query_str=QUERY)) == _ids(shortest)
    assert _ids(asyncio.run(pp.apostprocess_nodes(nodes, query_str=QUERY))) == _ids(shortest)
    engine = RetrieverQueryEngine.from_args(bm25_retriever, llm=MockLLM(), node_postprocessors=[pp])
    first_stage = bm25_retriever.retrieve(QUERY)
    expected = sorted(first_stage, key=lambda n: len(n.node.get_content()))[:2]
    assert _ids(engine.query(QUERY).source_nodes) == _ids(expected)
    assert _ids(asyncio.run(engine.aquery(QUERY)).source_nodes) == _ids(expected)
    data = pp.to_dict()
    assert data["class_name"] == "RerankRagPostprocessor" and "ranker" not in data
    again = RerankRagPostprocessor.from_dict(data, ranker=_LengthRanker())
    assert again.top_n == 2
    core = RerankRagPostprocessor(ranker=ListwiseRanker(oracle_llm_cls()), top_n=1)
    assert _ids(core.postprocess_nodes(nodes, query_str=QUERY)) == ["d2"]


def test_generic_postprocessor_rejects_what_it_cannot_use(nodes, fake_llm):
    from llama_index.postprocessor.rerank_rag import RerankRagPostprocessor
    from rerank_rag import Ranking

    with pytest.raises(TypeError, match="rank"):
        RerankRagPostprocessor(ranker=object())
    with pytest.raises(TypeError, match="ranker="):
        RerankRagPostprocessor()
    with pytest.raises(ValueError, match="builds its own ranker"):
        ListwiseRerank(llm=fake_llm, ranker=_LengthRanker())

    class Broken(_LengthRanker):
        def rank(self, query, candidates, top_n=None):
            return Ranking(order=(1, 1), scores=(1.0, 0.5))

    with pytest.raises(ValueError, match="invalid order"):
        RerankRagPostprocessor(ranker=Broken()).postprocess_nodes(nodes, query_str=QUERY)
