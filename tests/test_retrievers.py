"""In-memory BM25 retriever and the analysis chain (as_retriever: test_as_retriever.py)."""

from __future__ import annotations

import math
import random

import pytest

from rerank_rag import Candidate
from rerank_rag.retrievers import BM25Retriever, analyze, porter_stem

CORPUS = [
    "The cat sat on the mat.",
    "Dogs are loyal animals; a dog is a friend.",
    "Cats and dogs are common pets.",
    "Quantum computing uses qubits.",
    "The capital of France is Paris.",
]


def bm25_reference(corpus_tokens, query_tokens, k1=0.9, b=0.4):
    """Textbook Lucene BM25, written independently of the index (brute force)."""
    n = len(corpus_tokens)
    avgdl = sum(len(d) for d in corpus_tokens) / n
    scores = []
    for doc in corpus_tokens:
        s = 0.0
        for t in query_tokens:
            df = sum(1 for d in corpus_tokens if t in d)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = doc.count(t)
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(s)
    return scores


def test_porter_stemmer_matches_the_published_examples():
    # Examples from Porter (1980), "An algorithm for suffix stripping".
    pairs = {
        "caresses": "caress", "ponies": "poni", "cats": "cat", "agreed": "agre",
        "plastered": "plaster", "motoring": "motor", "sing": "sing", "conflated": "conflat",
        "hopping": "hop", "falling": "fall", "filing": "file", "happy": "happi",
        "relational": "relat", "conditional": "condit", "rational": "ration",
        "vietnamization": "vietnam", "hopefulness": "hope", "sensibiliti": "sensibl",
        "triplicate": "triplic", "electrical": "electr", "revival": "reviv",
        "replacement": "replac", "adoption": "adopt", "bowdlerize": "bowdler",
        "probate": "probat", "rate": "rate", "cease": "ceas", "controll": "control",
        "generalizations": "gener", "oscillators": "oscil",
    }
    assert {w: porter_stem(w) for w in pairs} == pairs


def test_analyze_drops_stopwords_and_possessives_and_stems():
    assert analyze("The Cat's toys are in the boxes") == ["cat", "toi", "box"]
    assert analyze("The cats", stopwords=None, stemmer=None) == ["the", "cats"]


def test_bm25_scores_match_a_brute_force_reference():
    ret = BM25Retriever(CORPUS)
    tokens = [analyze(d) for d in CORPUS]
    for query in ["cat dog", "dogs dogs pets", "capital of France", "qubits"]:
        ref = bm25_reference(tokens, analyze(query))
        got = ret.get_scores(query)
        assert got == pytest.approx(ref)
        hits = ret(query, k=10)
        # every returned hit is a match, in non-increasing score order
        assert [h.score for h in hits] == sorted((s for s in ref if s > 0), reverse=True)


def test_bm25_results_carry_corpus_position_ids_and_metadata():
    corpus = [
        Candidate("alpha beta", id="a", metadata={"src": 1}),
        {"text": "beta gamma", "id": "b"},
        "gamma delta",
    ]
    ret = BM25Retriever(corpus)
    hits = ret("gamma", k=5)
    assert {h.id for h in hits} == {"b", None}
    for h in hits:
        assert ret.corpus[h.metadata["corpus_index"]].text == h.text
    top = ret("alpha", k=1)[0]
    assert top.id == "a" and top.metadata == {"src": 1, "corpus_index": 0}
    assert top.score is not None and top.score > 0


def test_bm25_k_cuts_and_no_match_returns_nothing():
    ret = BM25Retriever(CORPUS)
    assert len(ret("cat dog pets", k=2)) == 2
    assert ret("zebra", k=5) == []
    assert ret("the of and", k=5) == []  # only stopwords


def test_bm25_bad_input_is_rejected_clearly():
    ret = BM25Retriever(CORPUS)
    with pytest.raises(ValueError, match="non-empty"):
        ret("  ")
    with pytest.raises(TypeError, match="string"):
        ret(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        ret("cat", k=0)
    with pytest.raises(TypeError, match="candidate 1"):
        BM25Retriever(["ok", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="stemmer"):
        BM25Retriever(CORPUS, stemmer="snowball")


def test_bm25_custom_tokenizer_and_empty_corpus():
    ret = BM25Retriever(["A-B", "C"], tokenizer=lambda t: t.split("-"))
    assert [h.text for h in ret("A", k=3)] == ["A-B"]
    assert BM25Retriever([])("anything") == []


def test_bm25_ties_keep_corpus_order():
    ret = BM25Retriever(["same words here", "other", "same words here"])
    hits = ret("same words", k=3)
    assert [h.metadata["corpus_index"] for h in hits] == [0, 2]


def test_bm25_top_k_equals_full_sort_on_random_corpus():
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(40)]
    corpus = [" ".join(rng.choices(vocab, k=rng.randint(3, 30))) for _ in range(200)]
    ret = BM25Retriever(corpus, stemmer=None)
    for _ in range(10):
        q = " ".join(rng.choices(vocab, k=3))
        scores = ret.get_scores(q)
        expected = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], i))[:7]
        assert [h.metadata["corpus_index"] for h in ret(q, k=7)] == expected
