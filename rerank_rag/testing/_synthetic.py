"""Deterministic synthetic query sets, for batch tests and benchmarks.

:func:`synthetic_queries` yields ``n_queries`` queries with ``n_candidates`` passages
each, generated lazily from a seed (the same seed gives the same texts in any process),
so a batch can be fed thousands of queries without holding them. :func:`synthetic_qrels`
gives the matching judgments, corpus and topics for
:class:`~rerank_rag.eval.SimulatedLLM` (which then answers as if it judged relevance).

Passages start with a unique token (``q17p42``), so the simulator recognises each one.
These are test data, not a benchmark of ranking quality.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from .._types import Candidate

__all__ = ["synthetic_queries", "synthetic_qrels"]

_WORDS = (
    "river mountain engine protein market voltage harbor crystal signal forest library "
    "planet vaccine bridge copper winter garden rocket theory canvas delta marble orbit "
    "pepper silver tunnel falcon lantern meadow nickel oyster prairie quartz saddle "
    "timber velvet walnut yarrow zephyr anchor basalt cobalt dynamo ember fjord glacier"
).split()


def _rng(seed: int, *key: object) -> random.Random:
    return random.Random(f"{seed}:" + ":".join(map(str, key)))


def _query_text(seed: int, i: int) -> str:
    r = _rng(seed, "query", i)
    return f"question {i} about " + " ".join(r.choice(_WORDS) for _ in range(5))


def _passage(seed: int, i: int, j: int, words: int) -> str:
    r = _rng(seed, "passage", i, j)
    return f"q{i}p{j} " + " ".join(r.choice(_WORDS) for _ in range(words))


def _grade(seed: int, i: int, j: int) -> int:
    u = _rng(seed, "grade", i, j).random()
    return 3 if u < 0.04 else 2 if u < 0.10 else 1 if u < 0.20 else 0


def synthetic_queries(
    n_queries: int, n_candidates: int, *, seed: int = 0, words: int = 60
) -> Iterator[tuple[str, str, list[Candidate]]]:
    """``(qid, query, candidates)`` for ``n_queries`` queries, generated lazily.

    Candidate ids are ``q{i}p{j}``; texts are ``words`` random words after the id.
    """
    for i in range(n_queries):
        cands = [
            Candidate(text=_passage(seed, i, j, words), id=f"q{i}p{j}", score=float(n_candidates - j))
            for j in range(n_candidates)
        ]
        yield f"q{i}", _query_text(seed, i), cands


def synthetic_qrels(
    n_queries: int, n_candidates: int, *, seed: int = 0, words: int = 60
) -> tuple[dict[str, dict[str, int]], dict[str, str], dict[str, str]]:
    """``(qrels, corpus, topics)`` matching :func:`synthetic_queries` (same arguments)."""
    qrels: dict[str, dict[str, int]] = {}
    corpus: dict[str, str] = {}
    topics: dict[str, str] = {}
    for i in range(n_queries):
        topics[f"q{i}"] = _query_text(seed, i)
        grades = {}
        for j in range(n_candidates):
            corpus[f"q{i}p{j}"] = _passage(seed, i, j, words)
            g = _grade(seed, i, j)
            if g:
                grades[f"q{i}p{j}"] = g
        qrels[f"q{i}"] = grades
    return qrels, corpus, topics
