"""LangChain retrievers in LangChain's own machinery: invoke/batch/ainvoke, LCEL, callbacks."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough  # noqa: E402

from langchain_rerank_rag import (  # noqa: E402
    DecomposeRetriever,
    JointRankRerank,
    ListwiseRerank,
    RerankingRetriever,
)
from rerank_rag import FakeLLM  # noqa: E402

QUERY = "Which river flows through Paris?"  # the corpus fixture's question


class Recorder(BaseCallbackHandler):
    """Records (event, name, run_id, parent_run_id) for retriever, chat-model and chain
    starts (a wrapped model, e.g. ``with_retry()``, runs as a chain around the model)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, UUID, UUID | None]] = []

    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kw: Any):
        self.events.append(("retriever", kw.get("name") or "", run_id, parent_run_id))

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kw: Any):
        self.events.append(("chat_model", kw.get("name") or "", run_id, parent_run_id))

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kw: Any):
        self.events.append(("chain", kw.get("name") or "", run_id, parent_run_id))  # wrappers


def test_reranking_retriever_invoke_batch_ainvoke(bm25_retriever, fake_llm):
    first_stage = [d.id for d in bm25_retriever.invoke(QUERY)]
    assert first_stage[0] != "d2" and "d2" in first_stage  # precondition: BM25 misses it
    retriever = RerankingRetriever(
        base_retriever=bm25_retriever, base_compressor=ListwiseRerank(llm=fake_llm, top_n=2)
    )
    out = retriever.invoke(QUERY)
    assert [d.id for d in out][0] == "d2" and len(out) == 2
    assert out[0].metadata["bm25"] is not None  # first-stage metadata kept
    batch = retriever.batch([QUERY, "Rome river"])
    assert [d.id for d in batch[0]] == [d.id for d in out] and len(batch) == 2
    aout = asyncio.run(retriever.ainvoke(QUERY))
    assert [d.id for d in aout] == [d.id for d in out]
    abatch = asyncio.run(retriever.abatch([QUERY, QUERY]))
    assert [[d.id for d in r] for r in abatch] == [[d.id for d in out]] * 2


def test_in_memory_vector_store_first_stage(fake_llm, corpus):
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents([Document(page_content=t, id=i) for i, t in corpus])
    retriever = RerankingRetriever(
        base_retriever=store.as_retriever(search_kwargs={"k": 6}),
        base_compressor=ListwiseRerank(llm=fake_llm, top_n=1),
    )
    assert [d.id for d in retriever.invoke(QUERY)] == ["d2"]
    assert [d.id for d in asyncio.run(retriever.ainvoke(QUERY))] == ["d2"]


def test_lcel_chain(bm25_retriever, fake_llm):
    retriever = RerankingRetriever(
        base_retriever=bm25_retriever, base_compressor=ListwiseRerank(llm=fake_llm, top_n=2)
    )

    def fmt(inputs: dict) -> str:
        context = "\n".join(d.page_content for d in inputs["context"])
        return f"Context:\n{context}\nQuestion: {inputs['question']}"

    async def afmt(inputs: dict) -> str:
        return fmt(inputs)

    chain = RunnableParallel(context=retriever, question=RunnablePassthrough()) | RunnableLambda(
        fmt, afunc=afmt
    )
    prompt = chain.invoke(QUERY)
    assert prompt.splitlines()[1].startswith("The Seine") and prompt.endswith(QUERY)
    assert asyncio.run(chain.ainvoke(QUERY)) == prompt
    assert chain.batch([QUERY, QUERY]) == [prompt, prompt]


def _assert_nested(rec: Recorder, outer: str) -> None:
    runs = {run_id: (kind, name, parent) for kind, name, run_id, parent in rec.events}
    roots = [r for r, (_, name, parent) in runs.items() if parent is None]
    assert len(roots) == 1 and runs[roots[0]][1] == outer
    chats = [r for r, (kind, _, _) in runs.items() if kind == "chat_model"]
    assert chats, "the chat model was never called"
    for r in runs:  # every run descends from the outer retriever run
        while runs[r][2] is not None:
            r = runs[r][2]
        assert r == roots[0]
    assert all(runs[c][2] == roots[0] or runs[runs[c][2]][0] == "chain" for c in chats)


def test_callbacks_nest_llm_calls_under_the_retriever(bm25_retriever, oracle_chat_model):
    comp = ListwiseRerank(llm=oracle_chat_model(), top_n=2, window_size=3, step=2)
    retriever = RerankingRetriever(base_retriever=bm25_retriever, base_compressor=comp)
    rec = Recorder()
    out = retriever.invoke(QUERY, config={"callbacks": [rec]})
    assert out[0].id == "d2"
    assert sum(k == "chat_model" for k, *_ in rec.events) >= 2  # several windows
    _assert_nested(rec, "RerankingRetriever")
    arec = Recorder()
    asyncio.run(retriever.ainvoke(QUERY, config={"callbacks": [arec]}))
    _assert_nested(arec, "RerankingRetriever")


def test_callbacks_nest_parallel_jointrank_calls(bm25_retriever, oracle_chat_model):
    # JointRank sends its blocks concurrently (worker threads on the sync path).
    bm25_retriever.k = 6
    comp = JointRankRerank(llm=oracle_chat_model(), top_n=2, block_size=3, replicas=2)
    retriever = RerankingRetriever(base_retriever=bm25_retriever, base_compressor=comp)
    for run in (retriever.invoke, lambda q, config: asyncio.run(retriever.ainvoke(q, config=config))):
        rec = Recorder()
        assert run(QUERY, config={"callbacks": [rec]})[0].id == "d2"
        assert sum(k == "chat_model" for k, *_ in rec.events) >= 3  # every block traced
        _assert_nested(rec, "RerankingRetriever")


def _decompose_llm(subquestions: list[str], oracle) -> FakeLLM:
    return FakeLLM(lambda messages: oracle(messages, subquestions=subquestions))


def test_decompose_retriever_finds_what_the_question_alone_misses(bm25_retriever, fake_llm, oracle):
    question = "Which river flows through the city that hosts the Louvre?"
    assert [d.id for d in bm25_retriever.invoke(question, k=1)] != ["d2"]  # precondition
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    bm25_retriever.calls.clear()
    retriever = DecomposeRetriever(
        base_retriever=bm25_retriever,
        llm=_decompose_llm(subs, oracle),
        reranker=ListwiseRerank(llm=fake_llm),
        fetch_k=1,  # one document per query: the pool holds at most 3
        k=5,
    )
    out = retriever.invoke(question)
    assert out[0].id == "d2" and len(out) <= 3
    assert len({d.id for d in out}) == len(out)  # merged without duplicates
    assert sorted(bm25_retriever.calls) == sorted([question, *subs])
    scores = [d.metadata["relevance_score"] for d in out]
    assert scores == sorted(scores, reverse=True)
    aout = asyncio.run(retriever.ainvoke(question))
    assert [d.id for d in aout] == [d.id for d in out]


def test_decompose_retriever_nests_runs(bm25_retriever, oracle_chat_model):
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    model = oracle_chat_model(subquestions=subs)
    retriever = DecomposeRetriever(
        base_retriever=bm25_retriever, llm=model, reranker=ListwiseRerank(llm=model), fetch_k=2
    )
    for run in (retriever.invoke, lambda q, config: asyncio.run(retriever.ainvoke(q, config=config))):
        rec = Recorder()
        out = run("Which river flows through the city of the Louvre?", config={"callbacks": [rec]})
        assert out[0].id == "d2"
        assert sum(k == "retriever" for k, *_ in rec.events) == 4  # outer + 3 queries
        _assert_nested(rec, "DecomposeRetriever")


def test_decompose_retriever_bad_config(bm25_retriever, fake_llm):
    with pytest.raises(ValueError, match="merge"):
        DecomposeRetriever(base_retriever=bm25_retriever, llm=fake_llm, merge="zip")
    with pytest.raises(ValueError):
        DecomposeRetriever(base_retriever=bm25_retriever, llm=fake_llm, k=0)
    with pytest.raises(ValueError):
        DecomposeRetriever(base_retriever=bm25_retriever, llm=fake_llm, fetch_k=0)
    with pytest.raises(TypeError, match="rank"):
        DecomposeRetriever(base_retriever=bm25_retriever, llm=fake_llm, reranker=object())


# -- 0.2: k is the number of results; callbacks through wrapped models ---------------------


def test_reranking_retriever_k_at_construction_and_per_invoke(bm25_retriever, fake_llm):
    retriever = RerankingRetriever(
        base_retriever=bm25_retriever, base_compressor=ListwiseRerank(llm=fake_llm), k=2
    )
    assert [d.id for d in retriever.invoke(QUERY)][0] == "d2" and len(retriever.invoke(QUERY)) == 2
    assert [d.id for d in retriever.invoke(QUERY, k=1)] == ["d2"]  # forwarded, not dropped
    assert [d.id for d in asyncio.run(retriever.ainvoke(QUERY, k=1))] == ["d2"]
    default = RerankingRetriever(base_retriever=bm25_retriever,
                                 base_compressor=ListwiseRerank(llm=fake_llm))
    assert len(default.invoke(QUERY)) == 3  # the compressor's top_n
    with pytest.raises(ValueError, match="conflicting"):
        RerankingRetriever(base_retriever=bm25_retriever,
                           base_compressor=ListwiseRerank(llm=fake_llm, top_n=4), k=2)


def test_reranking_retriever_cuts_any_compressors_output_to_k(bm25_retriever):
    from langchain_core.documents import BaseDocumentCompressor

    class Reverse(BaseDocumentCompressor):
        def compress_documents(self, documents, query, callbacks=None):
            return list(reversed(documents))

    retriever = RerankingRetriever(base_retriever=bm25_retriever, base_compressor=Reverse())
    full = [d.id for d in bm25_retriever.invoke(QUERY)]
    assert [d.id for d in retriever.invoke(QUERY)] == full[::-1]
    assert [d.id for d in retriever.invoke(QUERY, k=2)] == full[::-1][:2]


def test_decompose_retriever_k_is_the_number_of_results(bm25_retriever, fake_llm, oracle):
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    llm = _decompose_llm(subs, oracle)
    question = "Which river flows through the city of the Louvre?"
    retriever = DecomposeRetriever(base_retriever=bm25_retriever, llm=llm,
                                   reranker=ListwiseRerank(llm=fake_llm), k=4)
    assert len(retriever.invoke(question)) == 4
    assert [d.id for d in retriever.invoke(question, k=1)] == ["d2"]
    assert [d.id for d in asyncio.run(retriever.ainvoke(question, k=1))] == ["d2"]
    with pytest.warns(DeprecationWarning, match="top_k"):
        old = DecomposeRetriever(base_retriever=bm25_retriever, llm=llm, top_k=2)
    assert old.k == 2 and len(old.invoke(question)) == 2
    with pytest.raises(ValueError, match="fetch_k"):  # 0.1 code: k was the depth per query
        with pytest.warns(DeprecationWarning):
            DecomposeRetriever(base_retriever=bm25_retriever, llm=llm, k=1, top_k=5)


def test_decompose_retriever_honours_the_rerankers_settings(bm25_retriever, fake_llm, oracle):
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    llm = _decompose_llm(subs, oracle)
    question = "Which river flows through the city of the Louvre?"
    reranker = ListwiseRerank(llm=fake_llm, top_n=2, score_key="rerank")
    retriever = DecomposeRetriever(base_retriever=bm25_retriever, llm=llm, reranker=reranker)
    out = retriever.invoke(question)
    assert len(out) == 2 and all("rerank" in d.metadata for d in out)
    assert not any("relevance_score" in d.metadata for d in out)
    assert len(DecomposeRetriever(base_retriever=bm25_retriever, llm=llm, reranker=reranker,
                                  k=2, score_key="rerank").invoke(question)) == 2  # agree: fine
    with pytest.raises(ValueError, match="top_n"):
        DecomposeRetriever(base_retriever=bm25_retriever, llm=llm, reranker=reranker, k=5)
    with pytest.raises(ValueError, match="score_key"):
        DecomposeRetriever(base_retriever=bm25_retriever, llm=llm, reranker=reranker,
                           score_key="relevance_score")
    # a reranker left at its defaults gives way to the retriever's k
    free = ListwiseRerank(llm=fake_llm)
    assert len(DecomposeRetriever(base_retriever=bm25_retriever, llm=llm, reranker=free,
                                  k=5).invoke(question)) == 5


def test_decompose_retriever_blank_query_returns_first_stage(bm25_retriever, fake_llm, caplog):
    retriever = DecomposeRetriever(base_retriever=bm25_retriever, llm=fake_llm,
                                   reranker=ListwiseRerank(llm=fake_llm), k=2)
    with caplog.at_level("WARNING"):
        out = retriever.invoke(" ")
    assert [d.id for d in out] == [d.id for d in bm25_retriever.invoke(" ")][:2]
    assert not fake_llm.calls and "empty query" in caplog.text


WRAPPERS = {
    "with_retry": lambda m: m.with_retry(stop_after_attempt=2),
    "bind": lambda m: m.bind(stop=["\n\n\n"]),
    "with_config": lambda m: m.with_config(tags=["reranker"]),
    "bind+with_retry": lambda m: m.bind(stop=["\n\n\n"]).with_retry(),
}


@pytest.mark.parametrize("wrap", list(WRAPPERS.values()), ids=list(WRAPPERS))
def test_callbacks_reach_wrapped_chat_models(bm25_retriever, oracle_chat_model, wrap):
    bm25_retriever.k = 6
    for comp in (ListwiseRerank(llm=wrap(oracle_chat_model()), window_size=3, step=2),
                 JointRankRerank(llm=wrap(oracle_chat_model()), block_size=3, replicas=2)):
        retriever = RerankingRetriever(base_retriever=bm25_retriever, base_compressor=comp)
        for run in (retriever.invoke, lambda q, config, r=retriever: asyncio.run(
                r.ainvoke(q, config=config))):
            rec = Recorder()
            assert run(QUERY, config={"callbacks": [rec]})[0].id == "d2"
            assert sum(k == "chat_model" for k, *_ in rec.events) >= 2  # several windows/blocks
            _assert_nested(rec, "RerankingRetriever")


def test_callbacks_reach_the_llm_of_any_wrapped_ranker(bm25_retriever, oracle_chat_model):
    from langchain_rerank_rag import RerankRagCompressor
    from rerank_rag import ListwiseRanker

    core = ListwiseRanker(oracle_chat_model().with_retry(), window_size=3, step=2)
    retriever = RerankingRetriever(base_retriever=bm25_retriever,
                                   base_compressor=RerankRagCompressor(ranker=core))
    rec = Recorder()
    assert retriever.invoke(QUERY, config={"callbacks": [rec]})[0].id == "d2"
    _assert_nested(rec, "RerankingRetriever")


def test_decompose_callbacks_reach_wrapped_chat_models(bm25_retriever, oracle_chat_model):
    subs = ["Which city hosts the Louvre?", "Which river crosses the French capital?"]
    model = oracle_chat_model(subquestions=subs).with_retry()
    for sync in (True, False):  # a new retriever each time: decompositions are cached
        retriever = DecomposeRetriever(base_retriever=bm25_retriever, llm=model,
                                       reranker=ListwiseRerank(llm=model), fetch_k=2)
        run = retriever.invoke if sync else (
            lambda q, config, r=retriever: asyncio.run(r.ainvoke(q, config=config)))
        rec = Recorder()
        assert run("Which river flows through the city of the Louvre?",
                   config={"callbacks": [rec]})[0].id == "d2"
        assert sum(k == "chat_model" for k, *_ in rec.events) >= 2  # decomposition + rerank
        _assert_nested(rec, "DecomposeRetriever")
