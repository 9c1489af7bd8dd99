"""Pick the LLM the examples use (shared by every example in this folder).

    python examples/NAME.py                 # an OpenAI-compatible server from the environment:
                                            #   OPENAI_BASE_URL, OPENAI_API_KEY, RERANK_RAG_MODEL
    python examples/NAME.py --local         # local llama.cpp server with SmolLM2 (tiny: plumbing only)
    python examples/NAME.py --local qwen2.5-1.5b   # the opt-in 1.5B model (rerank-rag[local,qwen])
    python examples/NAME.py --fake          # FakeLLM, no model at all (what the test suite runs)

``RERANK_RAG_EXAMPLE_LLM=fake`` (or ``local``) does the same as the flag.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any


def keyword_ranker(messages: Any) -> str:
    """FakeLLM handler: order the prompt's ``[n] passage`` lines by words shared with the query.

    A stand-in for a model, so ``--fake`` output still looks sensible; not a real ranker.
    """
    text = "\n".join(m["content"] for m in messages)
    match = re.search(r"query:\s*(.+)", text, re.IGNORECASE)
    query = set(re.findall(r"\w{4,}", match.group(1).lower())) if match else set()
    passages: dict[int, str] = {}
    for num, passage in re.findall(r"^\[(\d+)\] (.+)$", text, re.MULTILINE):
        passages.setdefault(int(num), passage)
    overlap = {i: len(query & set(re.findall(r"\w{4,}", p.lower()))) for i, p in passages.items()}
    return " > ".join(f"[{i}]" for i in sorted(overlap, key=lambda i: (-overlap[i], i)))


@contextlib.contextmanager
def example_llm(argv: list[str] | None = None, *, serializable: bool = False) -> Iterator[Any]:
    """Yield an LLM backend chosen by ``--fake`` / ``--local [MODEL]`` / the environment.

    With ``serializable=True`` the fake is an ``OpenAICompatibleLLM`` talking to an
    in-process test server (``rerank_rag.testing.ChatServer``), so pipelines holding it
    can be saved and loaded again.
    """
    args = sys.argv[1:] if argv is None else argv
    choice = os.environ.get("RERANK_RAG_EXAMPLE_LLM", "")
    if ("--fake" in args or choice == "fake") and serializable:
        from rerank_rag import OpenAICompatibleLLM
        from rerank_rag.testing import ChatServer

        with ChatServer(lambda body: keyword_ranker(body["messages"])) as srv:
            yield OpenAICompatibleLLM("fake-model", base_url=srv.base_url)
    elif "--fake" in args or choice == "fake":
        from rerank_rag import FakeLLM

        yield FakeLLM(keyword_ranker)
    elif "--local" in args or choice == "local":
        from rerank_rag.local import LocalLLMServer

        rest = args[args.index("--local") + 1 :] if "--local" in args else []
        model = rest[0] if rest and not rest[0].startswith("-") else "smollm2"
        with LocalLLMServer(model) as server:
            yield server.llm
    else:
        from rerank_rag import OpenAICompatibleLLM

        yield OpenAICompatibleLLM(os.environ.get("RERANK_RAG_MODEL", "gpt-4o-mini"))
