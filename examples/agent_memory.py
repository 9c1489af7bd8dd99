"""Agent memory pruning: keep the memories that matter for the current turn, within budget.

A long-running agent cannot put its whole conversation memory in every prompt. Rank the
older memories against the current user turn, keep the best ones that fit a token
budget (plus the last few turns, always), and put them back in chronological order.

    python examples/agent_memory.py --fake      # no model (what the tests run)
    python examples/agent_memory.py --local     # local llama.cpp server (rerank-rag[local])
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 RERANK_RAG_MODEL=my-model python examples/agent_memory.py
"""

from _llm import example_llm

from rerank_rag import ListwiseRanker

MEMORY = [
    "User: I'm planning a trip to Japan in April.",
    "Assistant: April is cherry blossom season; book hotels early.",
    "User: My daughter is allergic to peanuts.",
    "User: Can you recommend a laptop for video editing?",
    "Assistant: Look for 32 GB of RAM and a dedicated GPU.",
    "User: We will spend four days in Kyoto and three in Tokyo.",
    "User: What's a good recipe for banana bread?",
    "Assistant: Mash three ripe bananas, add flour, sugar, butter and an egg; bake 60 min.",
    "User: My budget for hotels is about 150 euros a night.",
    "User: Remind me to renew my passport, it expires in May.",
    "User: I prefer vegetarian food when I travel.",
    "User: How do I reset my router?",
]
CURRENT_TURN = "Which restaurants should we try in Kyoto?"
BUDGET_TOKENS = 60   # for the older memories
KEEP_RECENT = 2      # the last turns are always kept


def tokens(text: str) -> int:
    return max(1, len(text) // 4)  # rough estimate; use tiktoken for exact counts


def prune(memory: list[str], turn: str, ranker: ListwiseRanker) -> list[str]:
    older, recent = memory[:-KEEP_RECENT], memory[-KEEP_RECENT:]
    ranking = ranker.rank(turn, older)  # positions into `older`, best first
    kept, used = [], 0
    for i in ranking.order:
        if used + tokens(older[i]) <= BUDGET_TOKENS:
            kept.append(i)
            used += tokens(older[i])
    print(f"ranked {len(older)} memories with {ranking.usage.llm_calls} LLM call(s), "
          f"kept {len(kept)} ({used} of {BUDGET_TOKENS} tokens)")
    return [older[i] for i in sorted(kept)] + recent  # back in chronological order


if __name__ == "__main__":
    with example_llm() as llm:
        context = prune(MEMORY, CURRENT_TURN, ListwiseRanker(llm, window_size=10, step=5))
    print(f"\nCurrent turn: {CURRENT_TURN}\nMemory sent to the model:")
    for line in context:
        print("  " + line)
