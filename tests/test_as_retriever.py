"""as_retriever: adapting user retrievers (callables, framework-like objects), passing k
only by name, rejecting answers that are not lists, and the per-retriever timeout."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rerank_rag import Candidate
from rerank_rag import as_retriever as top_level_as_retriever
from rerank_rag.retrievers import BM25Retriever, Retriever, as_retriever

CORPUS = ["The cat sat on the mat.", "Dogs are loyal animals.", "Cats and dogs are pets."]


def test_both_import_paths_give_the_same_function():
    assert top_level_as_retriever is as_retriever


def test_as_retriever_accepts_plain_and_async_callables():
    def with_k(query, k):
        return [f"{query}-{i}" for i in range(20)][:k]

    def without_k(query):
        return [{"text": f"{query}-{i}", "score": float(-i)} for i in range(20)]

    async def async_fn(query, k=10):
        await asyncio.sleep(0)
        return [(f"{query}-{i}", 1.0 / (i + 1)) for i in range(k)]

    for fn in (with_k, without_k, async_fn):
        r = as_retriever(fn)
        assert isinstance(r, Retriever)
        hits = r.retrieve("q", 3)
        assert [h.text for h in hits] == ["q-0", "q-1", "q-2"]
        assert all(isinstance(h, Candidate) for h in hits)
        ahits = asyncio.run(r.aretrieve("q", 3))
        assert [h.text for h in ahits] == ["q-0", "q-1", "q-2"]
    assert as_retriever(async_fn).retrieve("x", 2)[1].score == pytest.approx(0.5)


def test_as_retriever_keyword_only_k_and_search_method():
    def kw(query, *, k=10):
        return ["x"] * k

    class Searchable:
        def search(self, query, k):
            return [query] * k

    assert len(as_retriever(kw).retrieve("q", 4)) == 4
    assert len(as_retriever(Searchable()).retrieve("q", 2)) == 2
    bm25 = BM25Retriever(CORPUS)
    assert as_retriever(bm25).retrieve("cat", 1)[0].text == bm25("cat", 1)[0].text


def test_as_retriever_framework_like_objects():
    class Node:
        def __init__(self, text):
            self.text, self.node_id, self.metadata = text, f"n-{text}", {}

        def get_content(self):
            return self.text

    class NodeWithScore:
        def __init__(self, text, score):
            self.node, self.score = Node(text), score

    class LlamaLike:
        def retrieve(self, q):
            return [NodeWithScore(q + "1", 0.9), NodeWithScore(q + "2", 0.5)]

        async def aretrieve(self, q):
            return self.retrieve(q)

    class Doc:
        def __init__(self, text):
            self.page_content, self.metadata, self.id = text, {"score": 2.0}, "d1"

    class LangChainLike:
        def invoke(self, q):
            return [Doc(q)]

        async def ainvoke(self, q):
            return [Doc(q)]

    hits = as_retriever(LlamaLike()).retrieve("a", 10)
    assert [(h.text, h.id, h.score) for h in hits] == [("a1", "n-a1", 0.9), ("a2", "n-a2", 0.5)]
    hits = asyncio.run(as_retriever(LangChainLike()).aretrieve("b", 10))
    assert [(h.text, h.id, h.score) for h in hits] == [("b", "d1", 2.0)]


def test_as_retriever_rejects_junk_and_bad_results():
    with pytest.raises(TypeError, match="retriever"):
        as_retriever(42)
    with pytest.raises(TypeError, match="single string"):
        as_retriever(lambda q: "oops").retrieve("q", 3)
    with pytest.raises(TypeError, match="unsupported type"):
        as_retriever(lambda q: [object()]).retrieve("q", 3)
    assert as_retriever(lambda q: []).retrieve("q", 3) == []
    assert as_retriever(lambda q: iter(["a", "b"])).retrieve("q", 3)[1].text == "b"
    haystack_output = {"documents": [{"text": "from a component"}]}
    assert as_retriever(lambda q: haystack_output).retrieve("q", 3)[0].text == "from a component"


# -- item 8: None / a single mapping are errors, not "no results" / "keys as passages" -


@pytest.mark.parametrize(
    "answer, what",
    [
        (None, "returned None"),
        ({"text": "one passage", "id": "p1"}, "single mapping"),
        (Candidate("one passage"), "single Candidate"),
        (42, "single int"),
    ],
)
def test_an_answer_that_is_not_a_list_is_a_clear_error(answer, what):
    # 0.1: None became [] (no failure recorded) and a mapping's keys became passages
    def my_retriever(query):
        return answer

    r = as_retriever(my_retriever)
    for call in (lambda: r.retrieve("q", 3), lambda: asyncio.run(r.aretrieve("q", 3))):
        with pytest.raises(TypeError, match=what) as info:
            call()
        assert "my_retriever" in str(info.value) and "list of passages" in str(info.value)


# -- item 8: k only by a parameter named for it ---------------------------------------


def test_k_is_never_passed_into_an_unrelated_second_parameter():
    seen = {}

    def search(query, filters=None):
        seen["filters"] = filters
        return [f"{query}-{i}" for i in range(10)]

    hits = as_retriever(search).retrieve("q", 3)
    assert seen["filters"] is None  # 0.1 passed k=3 as the filters
    assert len(hits) == 3  # cut to k instead


@pytest.mark.parametrize("name", ["k", "top_k", "n", "limit", "num_results", "similarity_top_k"])
def test_k_is_passed_by_its_name(name):
    seen = {}
    ns: dict = {}
    exec(  # a function whose k parameter has this name, not in second position
        f"def fn(query, lang='en', {name}=10):\n"
        f"    seen['k'] = {name}\n"
        f"    return ['p'] * {name}",
        {"seen": seen}, ns,
    )
    assert len(as_retriever(ns["fn"]).retrieve("q", 4)) == 4
    assert seen["k"] == 4


def test_k_through_kwargs_or_varargs_is_not_guessed():
    seen = {}

    def fn(query, *args, **kwargs):
        seen.update(args=args, kwargs=kwargs)
        return ["a", "b", "c", "d"]

    assert len(as_retriever(fn).retrieve("q", 2)) == 2
    assert seen == {"args": (), "kwargs": {}}


def test_a_required_parameter_that_cannot_be_filled_is_rejected_up_front():
    def lookup(query, index_name):
        return []

    with pytest.raises(TypeError, match="index_name"):
        as_retriever(lookup)


def test_positional_only_k():
    def fn(query, k, /):
        return ["x"] * k

    assert len(as_retriever(fn).retrieve("q", 2)) == 2


# -- item 8: a per-retriever timeout --------------------------------------------------


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()  # let abandoned calls finish


def test_timeout_sync_and_async_sources(release):
    def stuck(query, k):
        release.wait(10)
        return ["late"]

    async def astuck(query, k):
        await asyncio.sleep(10)
        return ["late"]

    for fn in (stuck, astuck):
        r = as_retriever(fn, timeout=0.1)
        t0 = time.perf_counter()
        with pytest.raises(TimeoutError, match="did not answer within 0.1 s"):
            r.retrieve("q", 3)
        with pytest.raises(TimeoutError, match=fn.__name__):
            asyncio.run(r.aretrieve("q", 3))
        assert time.perf_counter() - t0 < 2.0


def test_timeout_is_not_hit_by_a_fast_retriever_and_keeps_its_own_errors():
    def fast(query, k):
        return ["a", "b"]

    def broken(query, k):
        raise TimeoutError("the index said so")

    assert [c.text for c in as_retriever(fast, timeout=5).retrieve("q", 3)] == ["a", "b"]
    with pytest.raises(TimeoutError, match="the index said so"):
        as_retriever(broken, timeout=5).retrieve("q", 3)
    with pytest.raises(TimeoutError, match="the index said so"):
        asyncio.run(as_retriever(broken, timeout=5).aretrieve("q", 3))


def test_timeout_validation_and_rewrapping():
    with pytest.raises(ValueError, match="timeout"):
        as_retriever(lambda q: [], timeout=0)
    with pytest.raises(TypeError, match="timeout"):
        as_retriever(lambda q: [], timeout="1")
    r = as_retriever(lambda q: [])
    assert as_retriever(r) is r
    assert as_retriever(r, timeout=2).timeout == 2.0 and r.timeout is None


def test_async_source_called_from_a_running_loop():
    async def fn(query, k):
        return [query] * k

    async def main():
        return as_retriever(fn).retrieve("q", 2)  # sync call inside a running loop

    assert [c.text for c in asyncio.run(main())] == ["q", "q"]
