"""Chatbot retrieval tuning: compare rerankers on your own labelled questions, pick one.

One JSON line per real user question with the help-centre articles that answer it (grade
2 = answers it, 1 = helps); one command compares the rerankers over BM25's candidates:

    rerank-rag eval --run questions.jsonl --corpus articles.jsonl --method bm25,minilm,jointrank,sliding

This script writes such files, runs that command and picks the best method:

    python examples/chatbot_tuning.py --fake     # LLM rows from the simulator, labelled so
    python examples/chatbot_tuning.py --local    # local llama.cpp server (rerank-rag[local])
    OPENAI_BASE_URL=... RERANK_RAG_MODEL=my-model python examples/chatbot_tuning.py
"""

import json, os, sys, tempfile  # noqa: E401
from pathlib import Path

from rerank_rag.cli import main as rerank_rag

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
LABELS = {  # question -> {article: grade}
    "my internet keeps dropping, what can I do": {"reset": 2, "slow": 2, "outage": 1},
    "where do I find my invoice": {"bill": 2, "pay": 1},
    "how do I stop my subscription": {"cancel": 2},
    "I'm relocating next month": {"move": 2},
    "does my phone plan work in Spain": {"roam": 2},
}


def llm_options(args: list[str]) -> list[str]:
    if "--fake" in args:
        return ["--llm", "sim"]  # no model: the simulator answers from the labels
    if "--local" in args:
        return ["--llm", "local"]
    if not os.environ.get("OPENAI_BASE_URL"):
        sys.exit("set OPENAI_BASE_URL (and RERANK_RAG_MODEL, OPENAI_API_KEY), or pass --fake or --local")
    return ["--llm", "openai", "--base-url", os.environ["OPENAI_BASE_URL"],
            "--model", os.environ.get("RERANK_RAG_MODEL", "gpt-4o-mini")]  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        questions, articles, report = (Path(tmp) / n for n in ("questions.jsonl", "articles.jsonl", "report.json"))
        questions.write_text("".join(json.dumps({"qid": f"q{i}", "query": q, "labels": labels}) + "\n"
                                     for i, (q, labels) in enumerate(LABELS.items())))  # fmt: skip
        articles.write_text("".join(json.dumps({"docid": d, "text": t}) + "\n" for d, t in ARTICLES.items()))
        code = rerank_rag(["eval", "--run", str(questions), "--corpus", str(articles),
                           "--method", "bm25,minilm,jointrank,sliding", "--block-size", "4", "--replicas", "2",
                           "--window", "4", "--step", "2", "--out", str(report), *llm_options(sys.argv[1:])])  # fmt: skip
        if code:
            sys.exit(code)
        reports = json.loads(report.read_text())["reports"]
    best = max(reports, key=lambda r: (r["metrics"]["ndcg@10"], -r["usage"]["per_query"]["llm_calls"]))
    print(f"\nPick: {best['method']} (best nDCG@10; fewest LLM calls on a tie)")


if __name__ == "__main__":
    main()
