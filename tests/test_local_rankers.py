"""The original LLM methods (listwise sliding and single pass, JointRank, LLM pointwise),
end to end against the local llama.cpp server (SmolLM2-135M): plumbing only (real HTTP,
real chat template, real first-token logprobs), a few passages, whatever the tiny model
answers. The newer methods have the same test in ``test_family_local.py``. Skipped with
a clear reason when the ``local`` extra or the model package is not installed.
"""

from __future__ import annotations

import pytest

from rerank_rag import (
    JointRanker,
    ListwiseRanker,
    LLMPointwiseRanker,
)

PASSAGES = [
    "Bees make honey from flower nectar.",
    "Paris is the capital and largest city of France.",
    "The Moon orbits the Earth every 27 days.",
    "France's capital city is Paris, on the Seine.",
    "Coffee contains caffeine.",
]


@pytest.mark.local_llm
def test_every_original_method_runs_end_to_end_on_llama_cpp(local_llm_server):
    llm = local_llm_server.llm
    t = 20  # max_passage_tokens: short prompts, the model is only exercised
    joint = {"block_size": 3, "replicas": 2, "max_passage_tokens": t}
    methods = {
        "listwise sliding first-token": ListwiseRanker(
            llm, prompt="first-token", window_size=3, step=2, max_passage_tokens=t
        ),
        "listwise single relevant-only": ListwiseRanker(
            llm, prompt="relevant-only", mode="single", max_passage_tokens=t
        ),
        "jointrank relevant-only (default aggregator)": JointRanker(llm, **joint),
        "jointrank rankgpt, pagerank": JointRanker(
            llm, prompt="rankgpt", aggregator="pagerank", **joint
        ),
        "jointrank first-token, bradley-terry": JointRanker(
            llm, prompt="first-token", aggregator="bradley_terry", **joint
        ),
        "llm pointwise": LLMPointwiseRanker(llm, max_passage_tokens=t),
    }
    n = len(PASSAGES)
    for name, ranker in methods.items():
        r = ranker.rank("What is the capital of France?", PASSAGES)
        assert sorted(r.order) == list(range(n)), name
        assert list(r.scores) == sorted(r.scores, reverse=True), name
        u = r.usage
        assert u.llm_calls > 0 and u.prompt_tokens > 0 and u.failed_calls == 0, (name, u)
        if name.startswith("jointrank"):
            assert u.depth >= 1 and u.llm_calls >= ranker.coverage(n).blocks, (name, u)
    # the first-token variants really received first-token alternatives
    req = ListwiseRanker(llm, prompt="first-token").prompt.build("q", ["a", "b"])
    c = llm.complete(req.messages, **req.params)
    assert c.top_logprobs
