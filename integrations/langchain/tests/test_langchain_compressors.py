"""LangChain document compressors: mapping, scores, copies, async, bad input, LLM objects."""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from langchain_rerank_rag import ListwiseRerank, PointwiseRerank  # noqa: E402
from rerank_rag import FakeLLM  # noqa: E402

QUERY = "Which river flows through Paris?"  # the corpus fixture's question


def _docs(corpus):
    return [Document(page_content=t, id=i, metadata={"source": i}) for i, t in corpus]


def test_listwise_orders_by_llm_and_puts_score_in_metadata(corpus, fake_llm):
    docs = _docs(corpus)
    out = ListwiseRerank(llm=fake_llm, top_n=3).compress_documents(docs, QUERY)
    assert [d.id for d in out][0] == "d2"  # the only passage naming the Seine
    assert len(out) == 3
    scores = [d.metadata["relevance_score"] for d in out]
    assert scores == sorted(scores, reverse=True)
    assert len(fake_llm.calls) >= 1


def test_documents_are_copied_never_mutated(corpus, fake_llm):
    docs = _docs(corpus)
    before = [d.model_dump() for d in docs]
    out = ListwiseRerank(llm=fake_llm, top_n=None).compress_documents(docs, QUERY)
    assert [d.model_dump() for d in docs] == before
    assert all("relevance_score" not in d.metadata for d in docs)
    by_id = {d.id: d for d in docs}
    for d in out:
        src = by_id[d.id]
        assert d is not src and d.metadata is not src.metadata
        assert d.page_content == src.page_content
        assert d.metadata["source"] == src.metadata["source"]  # metadata kept
    assert sorted(d.id for d in out) == sorted(by_id)  # none lost, none repeated


def test_duplicate_texts_are_mapped_by_position(fake_llm):
    docs = [Document(page_content="same text", id=f"x{i}") for i in range(3)]
    docs.append(Document(page_content="The Seine flows here.", id="seine"))
    out = ListwiseRerank(llm=fake_llm, top_n=None).compress_documents(docs, QUERY)
    assert [d.id for d in out][0] == "seine"
    assert sorted(d.id for d in out) == ["seine", "x0", "x1", "x2"]


def test_acompress_is_native_async(corpus, oracle):
    threads: list[str] = []

    def handler(messages):
        threads.append(threading.current_thread().name)
        return oracle(messages)

    comp = ListwiseRerank(llm=FakeLLM(handler), top_n=2, window_size=4, step=2)
    docs = _docs(corpus)

    async def main():
        return threading.current_thread().name, await comp.acompress_documents(docs, QUERY)

    loop_thread, out = asyncio.run(main())
    assert [d.id for d in out][0] == "d2"
    assert threads and set(threads) == {loop_thread}  # no thread executor involved
    sync_out = comp.compress_documents(docs, QUERY)
    assert [d.id for d in sync_out] == [d.id for d in out]


def test_score_key_is_configurable(corpus, fake_llm):
    out = ListwiseRerank(llm=fake_llm, score_key="rr").compress_documents(_docs(corpus), QUERY)
    assert "rr" in out[0].metadata and "relevance_score" not in out[0].metadata


def test_empty_list_top_n_larger_and_empty_texts(fake_llm):
    comp = ListwiseRerank(llm=fake_llm, top_n=10)
    assert list(comp.compress_documents([], QUERY)) == []
    docs = [Document(page_content=""), Document(page_content="The Seine."), Document(page_content="")]
    out = comp.compress_documents(docs, QUERY)
    assert len(out) == 3  # top_n larger than the list: all kept
    assert out[0].page_content == "The Seine."


def test_bad_configuration_is_rejected(fake_llm):
    with pytest.raises(ValidationError):
        ListwiseRerank(llm=fake_llm, top_n=0)
    with pytest.raises(ValidationError):
        ListwiseRerank(llm=fake_llm, top_k=3)  # unknown field: a typo must not pass
    with pytest.raises(ValueError, match="mode"):
        ListwiseRerank(llm=fake_llm, mode="zigzag")
    with pytest.raises(TypeError):
        ListwiseRerank(llm=object())


def test_config_is_plain_and_ranker_built_once(fake_llm):
    comp = ListwiseRerank(llm=fake_llm, top_n=2, window_size=8, step=4)
    dumped = comp.model_dump()
    assert dumped["window_size"] == 8 and "llm" not in dumped
    ranker = comp.ranker
    comp.compress_documents([Document(page_content="a"), Document(page_content="b")], QUERY)
    assert comp.ranker is ranker


def test_pointwise_bm25_scorer(corpus):
    out = PointwiseRerank(scorer="bm25", top_n=2).compress_documents(_docs(corpus), "Seine river")
    assert out[0].id == "d2"
    assert out[0].metadata["relevance_score"] > out[1].metadata["relevance_score"]


def test_pointwise_rejects_unknown_scorer_and_both_inputs(fake_llm):
    with pytest.raises(ValueError, match="unknown scorer"):
        PointwiseRerank(scorer="nope")
    with pytest.raises(ValueError, match="either"):
        PointwiseRerank(scorer="bm25", llm=fake_llm)


def test_jointrank_compressor(corpus, fake_llm):
    from langchain_rerank_rag import JointRankRerank

    comp = JointRankRerank(llm=fake_llm, top_n=3, block_size=3, replicas=2)
    out = comp.compress_documents(_docs(corpus), QUERY)
    assert out[0].id == "d2" and len(out) == 3
    aout = asyncio.run(comp.acompress_documents(_docs(corpus), QUERY))
    assert aout[0].id == "d2"


def test_langchain_chat_model_as_llm(corpus):
    from langchain_core.language_models import FakeListChatModel

    # The model's fixed answer is read through rerank-rag's parser: [3] first.
    model = FakeListChatModel(responses=["[3] > [1] > [2]"])
    docs = _docs(corpus)[:3]
    out = ListwiseRerank(llm=model, top_n=None).compress_documents(docs, QUERY)
    assert [d.id for d in out] == ["d2", "d0", "d1"]
    aout = asyncio.run(ListwiseRerank(llm=model).acompress_documents(docs, QUERY))
    assert [d.id for d in aout] == ["d2", "d0", "d1"]


def test_against_openai_compatible_server(corpus, oracle):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer

    with ChatServer(lambda body: oracle(body["messages"])) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, max_retries=0)
        comp = ListwiseRerank(llm=llm, top_n=2)
        out = comp.compress_documents(_docs(corpus), QUERY)
        aout = asyncio.run(comp.acompress_documents(_docs(corpus), QUERY))
        assert len(srv.requests) >= 2
    assert out[0].id == "d2" and aout[0].id == "d2"


def test_pointwise_llm_log_odds_from_server(corpus):
    pytest.importorskip("openai")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer, Reply

    def handler(body):
        passage = body["messages"][-1]["content"].split("Passage:", 1)[1]
        yes = "seine" in passage.lower()
        return Reply(text="Yes" if yes else "No",
                     top_logprobs={"Yes": -0.05, "No": -3.0} if yes else {"No": -0.05, "Yes": -3.0})

    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM("test-model", base_url=srv.base_url, max_retries=0)
        out = PointwiseRerank(llm=llm, top_n=None).compress_documents(_docs(corpus), QUERY)
        assert len(srv.requests) == len(corpus)  # one yes/no call per document
    scores = {d.id: d.metadata["relevance_score"] for d in out}
    assert out[0].id == "d2" and scores["d2"] == pytest.approx(2.95)  # log P(Yes) - log P(No)
    assert all(s == pytest.approx(-2.95) for i, s in scores.items() if i != "d2")


# -- 0.2: LangChain conventions, any ranker, prompt objects ------------------------------


def _retrieve(comp, docs, query=QUERY, **kwargs):
    """``comp`` inside a retriever, as LangChain code uses it."""
    from langchain_core.runnables import RunnableLambda

    from langchain_rerank_rag import RerankingRetriever

    retriever = RerankingRetriever(base_retriever=RunnableLambda(lambda q: docs), base_compressor=comp)
    return retriever.invoke(query, **kwargs)


def test_default_top_n_is_langchains_and_from_llm(corpus, fake_llm):
    # LangChain's own rerankers (CrossEncoderReranker, LLMListwiseRerank, CohereRerank)
    # keep 3 documents by default.
    comp = ListwiseRerank.from_llm(fake_llm)
    assert comp.top_n == 3 and comp.llm is fake_llm
    out = _retrieve(comp, _docs(corpus))
    assert [d.id for d in out][0] == "d2" and len(out) == 3
    assert len(ListwiseRerank.from_llm(fake_llm, top_n=1).compress_documents(_docs(corpus), QUERY)) == 1
    with pytest.raises(TypeError, match="no llm"):
        from langchain_rerank_rag import RerankRagCompressor

        RerankRagCompressor.from_llm(fake_llm)


def test_blank_query_returns_documents_unranked_with_a_warning(corpus, fake_llm, caplog):
    # LangChain retrievers answer any string; like Haystack's LLMRanker we keep the
    # input order (no LLM call) and say so in the log.
    comp = ListwiseRerank(llm=fake_llm)
    docs = _docs(corpus)
    with caplog.at_level("WARNING"):
        out = comp.compress_documents(docs, "   ")
    assert out == docs[:3] and not fake_llm.calls
    assert "empty query" in caplog.text
    assert asyncio.run(comp.acompress_documents(docs, "")) == docs[:3]
    assert _retrieve(comp, docs, "", k=2) == docs[:2] and not fake_llm.calls


class _Keyword:
    """A window prompt defined by a user: one message, numbered lines, ids back
    (subclasses add the ``name`` field)."""

    def build(self, query, passages):
        from rerank_rag import LLMRequest

        lines = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
        return LLMRequest.chat([{"role": "user", "content": f"MY PROMPT {query}\n{lines}"}])

    def parse(self, completion, n, *, strict=False):
        from rerank_rag.listwise import parse_permutation

        return parse_permutation(completion.text, n, strict=strict, expect_all=False)


def _prompt_objects():
    from dataclasses import dataclass

    from pydantic import BaseModel

    @dataclass
    class DataclassPrompt(_Keyword):
        name: str = "dataclass"

    class PydanticPrompt(_Keyword, BaseModel):
        name: str = "pydantic"

    return [DataclassPrompt(), PydanticPrompt()]


@pytest.mark.parametrize("prompt", _prompt_objects(), ids=["dataclass", "pydantic"])
def test_custom_prompt_objects_are_used_as_they_are(corpus, fake_llm, prompt):
    from langchain_rerank_rag import JointRankRerank

    for comp in (ListwiseRerank(llm=fake_llm, prompt=prompt),
                 JointRankRerank(llm=fake_llm, prompt=prompt, block_size=3, replicas=2)):
        assert comp.prompt is prompt and comp.model_dump()["prompt"] is not None
        assert _retrieve(comp, _docs(corpus))[0].id == "d2"
    assert all(msgs[-1]["content"].startswith("MY PROMPT") for msgs, _ in fake_llm.calls)


def test_chat_prompt_template_as_prompt(corpus, fake_llm):
    from langchain_core.prompts import ChatPromptTemplate

    template = ChatPromptTemplate.from_messages([
        ("system", "You sort {n} passages for a search engine."),
        ("human", "Query: {query}\n{passages}\nAnswer with the ids of the relevant ones, best first."),
    ])
    comp = ListwiseRerank.from_llm(fake_llm, prompt=template, top_n=2)
    out = _retrieve(comp, _docs(corpus))
    assert [d.id for d in out][0] == "d2"
    msgs, params = fake_llm.calls[0]
    assert msgs[0] == {"role": "system", "content": "You sort 6 passages for a search engine."}
    assert msgs[1]["content"].startswith(f"Query: {QUERY}\n[1] Paris is the capital")
    with pytest.raises(ValueError, match="passages"):
        ListwiseRerank(llm=fake_llm, prompt=ChatPromptTemplate.from_template("{question}"))


class _LengthRanker:
    """A ranker written by a user: shortest passage first (any rank/arank works)."""

    def __init__(self) -> None:
        self.seen: list[int | None] = []

    def rank(self, query, candidates, top_n=None):
        from rerank_rag import Ranking

        self.seen.append(top_n)
        return Ranking.from_scores([-len(c.text) for c in candidates], top_n)

    async def arank(self, query, candidates, top_n=None):
        return self.rank(query, candidates, top_n)


def test_generic_compressor_wraps_any_ranker(corpus):
    from langchain_rerank_rag import RerankRagCompressor

    ranker = _LengthRanker()
    comp = RerankRagCompressor(ranker=ranker, top_n=2)
    docs = _docs(corpus)
    shortest = sorted(docs, key=lambda d: len(d.page_content))[:2]
    out = comp.compress_documents(docs, QUERY)
    assert [d.id for d in out] == [d.id for d in shortest] and ranker.seen == [2]
    assert out[0].metadata["relevance_score"] == -len(shortest[0].page_content)
    aout = asyncio.run(comp.acompress_documents(docs, QUERY))
    assert [d.id for d in aout] == [d.id for d in out]
    assert comp.model_dump() == {"top_n": 2, "score_key": "relevance_score"}


def test_generic_compressor_takes_scorers_and_rejects_the_rest(corpus, fake_llm):
    from langchain_rerank_rag import RerankRagCompressor
    from rerank_rag import BM25Scorer, PointwiseRanker

    comp = RerankRagCompressor(ranker=BM25Scorer(), top_n=1)
    assert isinstance(comp.ranker, PointwiseRanker)
    assert [d.id for d in comp.compress_documents(_docs(corpus), "Seine river")] == ["d2"]
    with pytest.raises(TypeError, match="rank"):
        RerankRagCompressor(ranker=object())
    with pytest.raises(TypeError, match="ranker="):
        RerankRagCompressor()
    with pytest.raises(ValueError, match="builds its own ranker"):
        ListwiseRerank(llm=fake_llm, ranker=_LengthRanker())


def test_a_ranker_that_invents_positions_is_refused(corpus):
    from langchain_rerank_rag import RerankRagCompressor
    from rerank_rag import Ranking

    class Broken(_LengthRanker):
        def rank(self, query, candidates, top_n=None):
            return Ranking(order=(0, 0, 99), scores=(1.0, 0.5, 0.1))

    with pytest.raises(ValueError, match="invalid order"):
        RerankRagCompressor(ranker=Broken()).compress_documents(_docs(corpus), QUERY)
