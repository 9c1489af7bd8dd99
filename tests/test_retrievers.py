"""In-memory BM25 retriever and the analysis chain (as_retriever: test_as_retriever.py)."""

from __future__ import annotations

import importlib.util
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rerank_rag import Candidate
from rerank_rag.retrievers import BM25Retriever, analyze, fast_porter_stemmer, porter_stem

HAS_BM25S = importlib.util.find_spec("bm25s") is not None
HAS_PYSTEMMER = importlib.util.find_spec("Stemmer") is not None
# every engine installed here: the pure-Python one always, bm25s with the bm25 extra
BACKENDS = ["python"] + (["bm25s"] if HAS_BM25S else [])

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_bm25_scores_match_a_brute_force_reference(backend):
    ret = BM25Retriever(CORPUS, backend=backend)
    assert ret.backend == backend
    tokens = [analyze(d) for d in CORPUS]
    for query in ["cat dog", "dogs dogs pets", "capital of France", "qubits"]:
        ref = bm25_reference(tokens, analyze(query))
        got = ret.get_scores(query)
        assert got == pytest.approx(ref)
        hits = ret(query, k=10)
        # every returned hit is a match, in non-increasing score order
        assert [h.score for h in hits] == pytest.approx(sorted((s for s in ref if s > 0), reverse=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_bm25_results_carry_corpus_position_ids_and_metadata(backend):
    corpus = [
        Candidate("alpha beta", id="a", metadata={"src": 1}),
        {"text": "beta gamma", "id": "b"},
        "gamma delta",
    ]
    ret = BM25Retriever(corpus, backend=backend)
    hits = ret("gamma", k=5)
    assert {h.id for h in hits} == {"b", None}
    for h in hits:
        assert ret.corpus[h.metadata["corpus_index"]].text == h.text
    top = ret("alpha", k=1)[0]
    assert top.id == "a" and top.metadata == {"src": 1, "corpus_index": 0}
    assert top.score is not None and top.score > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_bm25_k_cuts_and_no_match_returns_nothing(backend):
    ret = BM25Retriever(CORPUS, backend=backend)
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_bm25_custom_tokenizer_and_empty_corpus(backend):
    ret = BM25Retriever(["A-B", "C"], tokenizer=lambda t: t.split("-"), backend=backend)
    assert [h.text for h in ret("A", k=3)] == ["A-B"]
    assert BM25Retriever([], backend=backend)("anything") == []
    assert BM25Retriever(["the", ""], backend=backend)("the cat") == []  # no term at all
    assert BM25Retriever(["", "cat"], backend=backend).get_scores("cat")[0] == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_bm25_ties_keep_corpus_order(backend):
    ret = BM25Retriever(["same words here", "other", "same words here"], backend=backend)
    hits = ret("same words", k=3)
    assert [h.metadata["corpus_index"] for h in hits] == [0, 2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bm25_top_k_equals_full_sort_on_random_corpus(backend):
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(40)]
    corpus = [" ".join(rng.choices(vocab, k=rng.randint(3, 30))) for _ in range(200)]
    ret = BM25Retriever(corpus, stemmer=None, backend=backend)
    for _ in range(10):
        q = " ".join(rng.choices(vocab, k=3))
        scores = ret.get_scores(q)
        expected = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], i))[:7]
        assert [h.metadata["corpus_index"] for h in ret(q, k=7)] == expected


def test_bm25_engines_agree_on_a_random_corpus_with_ties():
    # Few distinct words and short passages: many exact score ties at the cut-off.
    rng = random.Random(11)
    vocab = ["apple", "apples", "pear", "plum", "the", "fig", "kiwi", "lime"]
    corpus = [" ".join(rng.choices(vocab, k=rng.randint(0, 6))) for _ in range(300)]
    engines = {b: BM25Retriever(corpus, backend=b) for b in BACKENDS}
    for _ in range(25):
        q = " ".join(rng.choices(vocab, k=rng.randint(1, 4)))  # repeated terms included
        k = rng.choice([1, 3, 10, 50, 400])
        results = {b: [(h.metadata["corpus_index"], h.score) for h in r(q, k)] for b, r in engines.items()}
        ref = results["python"]
        for b, got in results.items():
            assert [i for i, _ in got] == [i for i, _ in ref], (b, q, k)
            assert [s for _, s in got] == pytest.approx([s for _, s in ref], rel=1e-12)


def test_repeated_query_terms_count_again():
    for b in BACKENDS:
        ret = BM25Retriever(CORPUS, backend=b)
        once, twice = ret.get_scores("qubits"), ret.get_scores("qubits qubits")
        assert twice[3] == pytest.approx(2 * once[3]) and once[3] > 0


def test_bm25_backend_choice_and_errors():
    assert BM25Retriever(CORPUS).backend == ("bm25s" if HAS_BM25S else "python")
    assert "backend=" in repr(BM25Retriever(CORPUS, backend="python"))
    with pytest.raises(ValueError, match="backend"):
        BM25Retriever(CORPUS, backend="lucene")


def test_without_the_extra_auto_falls_back_and_bm25s_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['bm25s'] = None; sys.modules['Stemmer'] = None  # as if not installed\n"
        "from rerank_rag.retrievers import BM25Retriever\n"
        "from rerank_rag import MissingDependencyError\n"
        "r = BM25Retriever(['cats purr', 'dogs bark'])\n"
        "print(r.backend, r('cat', 1)[0].text)\n"
        "try:\n"
        "    BM25Retriever(['x'], backend='bm25s')\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, check=True).stdout  # fmt: skip
    assert out.splitlines()[0] == "python cats purr"
    assert "pip install 'rerank-rag[bm25]'" in out


PORTER_WORDS = (
    "caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated "
    "troubled sized hopping tanned falling hissing fizzed failing filing happy sky "
    "relational conditional rational valenci hesitanci digitizer conformabli radicalli "
    "differentli vileli analogousli vietnamization predication operator feudalism "
    "decisiveness hopefulness callousness formaliti sensitiviti sensibiliti triplicate "
    "formative formalize electriciti electrical hopeful goodness revival allowance "
    "inference airliner gyroscopic adjustable defensible irritant replacement adjustment "
    "dependent adoption homologou communism activate angulariti homologous effective "
    "bowdlerize probate rate cease controll roll generalizations oscillators 1990s "
    "2'deoxy 30weeks agées ardèche fcγrs as is ey a yes"
).split()


@pytest.mark.skipif(not HAS_PYSTEMMER, reason="PyStemmer not installed (extra bm25)")
def test_our_porter_and_pystemmer_give_the_same_stems():
    fast = fast_porter_stemmer()
    assert fast is not porter_stem  # the C implementation is picked when installed
    assert [fast(w) for w in PORTER_WORDS] == [porter_stem(w) for w in PORTER_WORDS]
    assert porter_stem("1990s") == "1990" and porter_stem("as") == "as"


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.skipif(not HAS_PYSTEMMER, reason="PyStemmer not installed (extra bm25)")
def test_porter_parity_on_every_scifact_word(shared_data):
    from rerank_rag.eval import load_scifact_corpus
    from rerank_rag.retrievers import _TOKEN_RE

    if not (shared_data / "beir-scifact" / "scifact.zip").is_file():
        pytest.skip("SciFact not in the data folder")
    words = set()
    for title, abstract in load_scifact_corpus(shared_data).values():
        words.update(_TOKEN_RE.findall(f"{title} {abstract}".lower()))
    assert len(words) > 30_000
    fast = fast_porter_stemmer()
    assert [w for w in sorted(words) if fast(w) != porter_stem(w)] == []
