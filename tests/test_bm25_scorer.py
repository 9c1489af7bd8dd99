"""BM25Scorer: relevance on a hand-written set, the BM25 formula, tokenisation."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import pytest

from rerank_rag.pointwise import BM25Scorer, PointwiseRanker, default_tokenize

QUERY = "When did Alexander Graham Bell invent the telephone?"
PASSAGES = [
    "Sourdough bread is leavened with a starter of wild yeast and lactic acid bacteria.",
    "The Great Barrier Reef lies off the coast of Queensland in Australia.",
    "Alexander Graham Bell was granted the first US patent for the telephone in 1876.",
    "Photosynthesis turns light energy into chemical energy in plants.",
    "Canberra, not Sydney, is the capital city of Australia.",
]


def _reference_bm25(query: list[str], docs: list[list[str]], k1: float, b: float) -> list[float]:
    """BM25 with Lucene IDF, written out from the textbook formula."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    df = Counter(t for d in docs for t in set(d))
    out = []
    for d in docs:
        tf = Counter(d)
        s = 0.0
        for t in query:
            if tf[t] == 0:
                continue
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            s += idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return out


def test_relevant_passage_ranks_first() -> None:
    r = PointwiseRanker(BM25Scorer()).rank(QUERY, PASSAGES)
    assert r.order[0] == 2
    assert r.scores[0] > 0 and r.scores[1] < r.scores[0]


def test_matches_the_textbook_formula() -> None:
    docs = [
        "the cat sat on the mat with another cat",
        "dogs chase cats and cats chase mice",
        "a quick brown fox",
        "cat food for hungry cats and a cat",
    ]
    query = "hungry cat"
    for k1, b in [(1.5, 0.75), (1.2, 0.0), (0.5, 1.0), (2.0, 1.0)]:
        got = BM25Scorer(k1=k1, b=b).score(query, docs)
        want = _reference_bm25(
            default_tokenize(query), [default_tokenize(d) for d in docs], k1, b
        )
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def _reference_okapi(query: list[str], docs: list[list[str]], k1: float, b: float) -> list[float]:
    """rank-bm25's BM25Okapi, written out: Okapi IDF, negatives floored at 0.25 x mean."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    df = Counter(t for d in docs for t in set(d))
    raw = {t: math.log(n - f + 0.5) - math.log(f + 0.5) for t, f in df.items()}
    floor = 0.25 * sum(raw.values()) / len(raw)
    idf = {t: (floor if v < 0 else v) for t, v in raw.items()}
    out = []
    for d in docs:
        tf = Counter(d)
        out.append(sum(idf.get(t, 0.0) * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(d) / avgdl))
                       for t in query if tf[t]))  # fmt: skip
    return out


def test_okapi_idf_matches_rank_bm25s_formula_with_its_floor() -> None:
    docs = [
        "cat cat dog",           # "cat" is in 3 of 4 passages: negative Okapi IDF, floored
        "cat bird",
        "cat fish fish fish",
        "horse",
    ]
    query = "cat fish horse cat"
    toks = [default_tokenize(d) for d in docs]
    for k1, b in [(1.5, 0.75), (0.9, 0.4), (1.2, 1.0)]:
        got = BM25Scorer(k1=k1, b=b, idf="okapi").score(query, docs)
        want = _reference_okapi(default_tokenize(query), toks, k1, b)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert got[0] > 0  # the floored IDF is positive: "cat" still counts


def test_two_candidates_still_discriminate_with_lucene_idf() -> None:
    # With Okapi IDF a term in 1 of 2 documents has idf log(1.5/1.5) = 0.
    docs = ["the capital of australia is canberra", "bread needs flour and water"]
    lucene = BM25Scorer().score("capital australia", docs)
    assert lucene[0] > 0 and lucene[1] == 0.0
    okapi = BM25Scorer(idf="okapi").score("capital australia", docs)
    assert okapi == [0.0, 0.0]


def test_scores_depend_on_the_candidate_set() -> None:
    # Documented caveat: IDF comes from the passages of the call.
    a = BM25Scorer().score("apple pie", ["apple pie recipe", "apple tree", "pie chart"])
    b = BM25Scorer().score("apple pie", ["apple pie recipe", "apple tree", "apple juice"])
    assert a[0] != b[0]
    assert BM25Scorer.batchable is False


def test_stopword_only_query_gives_zeros_and_keeps_order() -> None:
    scorer = BM25Scorer()
    assert scorer.score("what is the", PASSAGES) == [0.0] * len(PASSAGES)
    r = PointwiseRanker(scorer).rank("what is the", PASSAGES)
    assert r.order == tuple(range(len(PASSAGES)))


@pytest.mark.parametrize("b", [0.0, 0.75, 1.0])
def test_empty_passages_are_scored_zero(b: float) -> None:
    assert BM25Scorer(b=b).score("cats", ["", ""]) == [0.0, 0.0]
    s = BM25Scorer(b=b).score("cats", ["", "cats purr"])
    assert s[0] == 0.0 and s[1] > 0


def test_default_tokenizer() -> None:
    assert default_tokenize("The Cat's 3 hats, AND a dog!") == ["cat", "s", "3", "hats", "dog"]
    assert default_tokenize("") == []


def test_custom_tokenizer_is_used() -> None:
    seen: list[str] = []

    def tok(text: str) -> list[str]:
        seen.append(text)
        return text.split("|")

    s = BM25Scorer(tokenizer=tok).score("x", ["x|y", "y|z", "z"])
    assert s[0] > 0 and s[1] == s[2] == 0.0
    assert seen[0] == "x" and len(seen) == 4
    with pytest.raises(TypeError):
        BM25Scorer(tokenizer="split")  # type: ignore[arg-type]


def test_async_equals_sync() -> None:
    scorer = BM25Scorer()
    assert asyncio.run(scorer.ascore(QUERY, PASSAGES)) == scorer.score(QUERY, PASSAGES)
    ranker = PointwiseRanker(scorer, batch_size=2)
    got = asyncio.run(ranker.arank(QUERY, PASSAGES))
    want = ranker.rank(QUERY, PASSAGES)
    assert (got.order, got.scores) == (want.order, want.scores)


def test_needs_no_optional_dependency() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "for m in ('rank_bm25', 'numpy', 'bm25s'):\n"
        "    sys.modules[m] = None  # as if not installed\n"
        "from rerank_rag.pointwise import BM25Scorer\n"
        "print(BM25Scorer().score('cat', ['a cat', 'a dog'])[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.0"
