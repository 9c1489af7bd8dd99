"""How ``rerank-rag demo`` picks the LLM for its listwise and JointRank-LLM rows."""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["make_llm"]


def make_llm(args: argparse.Namespace, stack: Any) -> tuple[Any, str, bool, str]:
    """Return ``(llm, description, is_local, model_name)``; may start the local server.

    Order: ``--base-url`` / ``--model`` as given; else a server already running on
    127.0.0.1 (unless ``--no-discover`` or ``--local-model``); else our llama.cpp server
    with ``--local-model`` (default SmolLM2-135M).
    """
    from ..local._models import MODELS

    local_name = args.local_model
    if local_name is None and args.base_url is None and args.model is not None:
        if args.model.lower() in MODELS or os.path.isfile(args.model):
            local_name = args.model
    if args.base_url is not None or (args.model is not None and local_name is None):
        from ..llm import OpenAICompatibleLLM

        if not args.model:
            raise SystemExit("rerank-rag demo: --base-url needs --model NAME")
        key = os.environ.get(args.api_key_env) or None
        llm = OpenAICompatibleLLM(args.model, base_url=args.base_url, api_key=key, timeout=120.0)
        where = args.base_url or os.environ.get("OPENAI_BASE_URL") or "the OpenAI API"
        return llm, f"{args.model} at {where}", False, args.model

    if local_name is None and not args.no_discover:
        from ..local import find_running_server

        found = find_running_server()
        if found is not None:
            from ..llm import OpenAICompatibleLLM

            print(f"Found a running {found.kind} at {found.base_url} serving {found.model!r} "
                  "(--no-discover or --local-model smollm2 to use the bundled model instead)",
                  flush=True)  # fmt: skip
            llm = OpenAICompatibleLLM(found.model, base_url=found.base_url, api_key="local",
                                      timeout=600.0, max_concurrency=1, max_retries=1)  # fmt: skip
            return llm, f"{found.model} on the running {found.kind} at {found.base_url}", True, found.model

    from ..local import LocalLLMServer

    name = local_name or "smollm2"
    print(f"Starting the local llama.cpp server with {name} ...", flush=True)
    server = stack.enter_context(LocalLLMServer(name))
    print(f"  ready on {server.base_url} (pid {server.pid}) in {server.startup_seconds:.1f} s, "
          f"{server.n_threads} thread(s)", flush=True)
    return server.llm, f"{name} on the local llama.cpp server", True, name
