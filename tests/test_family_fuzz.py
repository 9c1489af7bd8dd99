"""Fuzz: random and adversarial LLM answers through the pairwise, setwise, tournament
and TDPart rankers and the compose wrappers. Whatever the model answers (garbage,
wrong labels, unicode look-alikes, junk logprob maps, transient errors), a ranking never
loses, repeats or invents a candidate, usage adds up, relevance is valid, and nothing
raises unless ``strict=True`` (or the error is not transient).

Counts (explicit ``max_examples``): 400 rankings over 1-40 answers each, plus the
strict and configuration-error checks. In-process (FakeLLM), derandomized, bounded in
time.
"""

from __future__ import annotations

import asyncio
import math
import random

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rerank_rag import (  # noqa: E402
    Completion,
    DynamicCutoff,
    FakeLLM,
    FirstStageEvidence,
    FirstStageFusion,
    LLMConfigurationError,
    LLMError,
    LLMRateLimitError,
    PairwiseRanker,
    ParseError,
    RankingFailedError,
    SetwiseRanker,
    TDPartRanker,
    TourRanker,
)

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_PIECES = [
    "A", "B", "C", "Z", "a", "[A]", "[B]", "[{i}]", "{i}", "Passage {i}", "Passage {a}", "Document {i}",
    "[{i}] > [{i}]", "{big}", "[-{i}]", "[0]", "NO_RELEVANT_SNIPPETS", "none", "neither", "both",
    "<think>", "</think>", "```", "\u2460", "\uff11", "\uff21", "\u00b2", "[", "]", ">", ",", "\n", " ",
    "The most relevant passage is {a}.", "{a} > {a}", "I think", "1.", "{{\"best\": \"{a}\"}}",
]


def fast_answer(rng: random.Random, n: int) -> str:
    kind = rng.random()
    if kind < 0.25:  # a valid answer: a label, or a (partial) permutation of ids
        if rng.random() < 0.5:
            return chr(65 + rng.randrange(max(1, min(n, 26))))
        ids = list(range(1, n + 1))
        rng.shuffle(ids)
        return " > ".join(f"[{i}]" for i in ids[: rng.randint(0, n)])
    if kind < 0.35:
        return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0x80, 0x2FFF)])) for _ in range(rng.randint(0, 60)))
    out = []
    for _ in range(rng.randint(0, 12)):
        out.append(rng.choice(_PIECES).format(i=rng.randint(-2, n + 3), a=chr(rng.randint(65, 90)), big=rng.randint(10**5, 10**12)))
        out.append(rng.choice(["", " ", " > ", ", ", "\n"]))
    return "".join(out)


def fast_logprobs(rng: random.Random, n: int):
    if rng.random() < 0.15:
        return None
    out = {}
    for _ in range(rng.randint(0, 12)):
        tok = rng.choice([chr(rng.randint(65, 90)), str(rng.randint(-1, n + 2)), " " + chr(rng.randint(65, 70)), "[B]", "yes", "", "(3)"])
        out[tok] = rng.choice([rng.uniform(-30, 0), float("nan"), float("-inf"), float("inf"), "x", None, 0.0])
    return out


def fuzz_llm(seed: int, fail_rate: float):
    rng = random.Random(seed)

    def handler(messages, **params):
        if rng.random() < fail_rate:
            if rng.random() < 0.5:
                raise LLMRateLimitError("429 (fuzz)", status=429)
            raise RuntimeError("connection reset (fuzz)")
        n = max(2, sum(m["content"].count("\n[") for m in messages))
        tops = fast_logprobs(rng, n) if "top_logprobs" in params else None
        return Completion(text=fast_answer(rng, n), top_logprobs=tops, prompt_tokens=7, completion_tokens=2)

    return FakeLLM(handler, max_concurrency=1)


RANKERS = {
    "pairwise-allpair": lambda llm, s: PairwiseRanker(llm, method="allpair", scoring=s),
    "pairwise-heap": lambda llm, s: PairwiseRanker(llm, method="heapsort", scoring=s, sort_depth=4),
    "pairwise-bubble": lambda llm, s: PairwiseRanker(llm, method="bubblesort", scoring=s, sort_depth=3),
    "setwise-heap": lambda llm, s: SetwiseRanker(llm, method="heapsort", block_size=3, scoring=s),
    "setwise-bubble": lambda llm, s: SetwiseRanker(llm, method="bubblesort", block_size=4, scoring=s, sort_depth=4),
    "tournament": lambda llm, s: TourRanker(llm, tournaments=2, block_size=5),
    "tdpart": lambda llm, s: TDPartRanker(llm, block_size=5, sort_depth=2),
    "tdpart-relevant": lambda llm, s: TDPartRanker(llm, prompt="relevant-only", block_size=6, sort_depth=3),
    "fusion": lambda llm, s: FirstStageFusion(SetwiseRanker(llm, scoring=s), method="convex", weight=0.6),
    "evidence": lambda llm, s: FirstStageEvidence(TourRanker(llm, block_size=4), show="rank"),
    "cutoff": lambda llm, s: DynamicCutoff(TDPartRanker(llm, prompt="relevant-only", block_size=4, sort_depth=2), ceiling=5),
}


def check(ranking, n, top_n, *, cut=False):
    k = n if top_n is None else min(n, top_n)
    assert len(set(ranking.order)) == len(ranking.order), "a repeated candidate"
    assert all(0 <= i < n for i in ranking.order), "an invented candidate"
    if cut:
        assert len(ranking.order) <= k and ranking.usage.kept == len(ranking.order)
    else:
        assert len(ranking.order) == k, "a lost candidate"
    assert all(not math.isnan(s) for s in ranking.scores)
    assert all(a >= b for a, b in zip(ranking.scores, ranking.scores[1:]))
    assert ranking.relevance is not None and len(ranking.relevance) == len(ranking.order)


@settings(FUZZ, max_examples=400)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    name=st.sampled_from(sorted(RANKERS)),
    n=st.integers(min_value=0, max_value=14),
    scoring=st.sampled_from(["generation", "logprobs"]),
    fail_rate=st.sampled_from([0.0, 0.2, 1.0]),
    top_n=st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
    use_async=st.booleans(),
)
def test_rankings_are_always_complete_permutations(seed, name, n, scoring, fail_rate, top_n, use_async):
    llm = fuzz_llm(seed, fail_rate)
    ranker = RANKERS[name](llm, scoring)
    cands = [f"passage {i} text [1] > [2]" if i % 3 else "same text" for i in range(n)]
    if use_async:
        ranking = asyncio.run(ranker.arank("a query", cands, top_n=top_n))
    else:
        ranking = ranker.rank("a query", cands, top_n=top_n)
    check(ranking, n, top_n, cut=name == "cutoff")
    u = ranking.usage
    assert u.llm_calls == len(llm.calls)
    assert u.failed_calls <= u.llm_calls and u.depth <= u.llm_calls
    if fail_rate == 1.0 and n >= 2 and name not in ("cutoff", "fusion"):
        assert list(ranking.order) == list(range(n))[: len(ranking.order)], "not the first-stage order"
        assert u.failed_calls == u.llm_calls == u.fallbacks


@settings(FUZZ, max_examples=40)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), name=st.sampled_from(sorted(RANKERS)))
def test_configuration_errors_always_raise(seed, name):
    rng = random.Random(seed)
    good = fuzz_llm(seed, 0.0)
    hits = []

    def handler(messages, **params):
        if rng.random() < 0.3:
            hits.append(1)
            raise LLMConfigurationError("401 invalid key (fuzz)", status=401)
        return good.handler(messages, **params)

    ranker = RANKERS[name](FakeLLM(handler, max_concurrency=1), "generation")
    cands = [f"passage {i}" for i in range(8)]
    if name == "tdpart" or name == "tdpart-relevant" or name == "cutoff":
        cands = cands[:3]  # one call: whether it fails is decided by the first draw
    try:
        ranker.rank("q", cands)
    except LLMConfigurationError:
        assert hits, "raised without a configuration error"
    else:
        assert not hits, "a configuration error was swallowed"


@pytest.mark.parametrize("name", sorted(set(RANKERS) - {"fusion", "evidence", "cutoff"}))
def test_strict_raises_on_garbage_and_on_transient_failures(name):
    garbage = RANKERS[name](FakeLLM(lambda m, **p: "I cannot tell."), "generation")
    garbage.strict = True
    with pytest.raises(ParseError):
        garbage.rank("q", [f"passage {i}" for i in range(6)])

    def boom(messages, **params):
        raise LLMError("down")

    failing = RANKERS[name](FakeLLM(boom), "generation")
    failing.strict = True
    with pytest.raises(RankingFailedError):
        failing.rank("q", [f"passage {i}" for i in range(6)])
