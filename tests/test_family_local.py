"""Every new ranking method and wrapper, end to end against the local llama.cpp server
(SmolLM2-135M): plumbing only (real HTTP, real chat template, real first-token logprobs),
a few passages, whatever the tiny model answers. Skipped with a clear reason when the
``local`` extra or the model package is not installed.
"""

from __future__ import annotations

import pytest

from rerank_rag import (
    DynamicCutoff,
    FirstStageEvidence,
    FirstStageFusion,
    PairwiseRanker,
    SetwiseRanker,
    TDPartRanker,
    TourRanker,
)

PASSAGES = [
    "Bees make honey from flower nectar.",
    "Paris is the capital and largest city of France.",
    "The Moon orbits the Earth every 27 days.",
]


@pytest.mark.local_llm
def test_every_new_method_runs_end_to_end_on_llama_cpp(local_llm_server):
    llm = local_llm_server.llm
    t = 20  # max_passage_tokens: short prompts, the model is only exercised
    methods = {
        "pairwise allpair": PairwiseRanker(llm, method="allpair", max_passage_tokens=t),
        "pairwise heapsort logprobs": PairwiseRanker(llm, scoring="logprobs", max_passage_tokens=t),
        "pairwise bubblesort": PairwiseRanker(llm, method="bubblesort", sort_depth=1, max_passage_tokens=t),
        "setwise heapsort": SetwiseRanker(llm, block_size=3, max_passage_tokens=t),
        "setwise bubblesort logprobs": SetwiseRanker(
            llm, method="bubblesort", block_size=3, scoring="logprobs", sort_depth=1, max_passage_tokens=t
        ),
        "tournament": TourRanker(llm, tournaments=1, block_size=3, max_passage_tokens=t),
        "tdpart": TDPartRanker(llm, block_size=3, sort_depth=1, max_passage_tokens=t),
        # InsertRank evidence, fusion and the cut-off, composed over one call
        "cut-off": DynamicCutoff(
            FirstStageFusion(
                FirstStageEvidence(TDPartRanker(llm, prompt="relevant-only", block_size=3, sort_depth=1, max_passage_tokens=t))
            ),
            ceiling=2,
        ),
    }
    n = len(PASSAGES)
    for name, ranker in methods.items():
        r = ranker.rank("What is the capital of France?", PASSAGES)
        assert len(set(r.order)) == len(r.order) and set(r.order) <= set(range(n)), name
        if name != "cut-off":
            assert sorted(r.order) == list(range(n)), name
        else:
            assert 1 <= r.usage.kept == len(r.order) <= 2
        u = r.usage
        assert u.llm_calls > 0 and u.prompt_tokens > 0 and u.failed_calls == 0, (name, u)
        assert r.relevance is not None and len(r.relevance) == len(r.order), name
    # the logprob variants really got first-token alternatives from the server
    c = llm.complete(
        PairwiseRanker(llm, scoring="logprobs").prompt.build("q", ["a", "b"]).messages,
        max_tokens=1,
        top_logprobs=20,
    )
    assert c.top_logprobs
