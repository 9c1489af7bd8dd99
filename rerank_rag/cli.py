"""``rerank-rag`` command line: a thin dispatcher.

Each sub-command lives in its own module and is imported only when used, so
``rerank-rag --help`` stays fast. A sub-command module exposes ``main(argv) -> int``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("rerank_rag.demo", "offline demo: BM25 first stage, then rerankers side by side"),
    "eval": ("rerank_rag.eval._cli", "compare rerankers on your own labelled data, DL19, SciFact or MuSiQue"),
    "simulate": ("rerank_rag.jointrank._simulate", "JointRank designs/aggregators with a simulated block ranker"),
    "local": ("rerank_rag.local._cli", "start / check the local llama.cpp model server"),
    "serve": ("rerank_rag.serve._cli", "rerank HTTP service (Jina/Cohere/TEI APIs) and MCP tools"),
    "batch": ("rerank_rag.batch._cli", "rerank a whole query set into a TREC run (resumable; local or Ray)"),
}


def _usage() -> str:
    lines = ["usage: rerank-rag COMMAND [options]", "", "commands:"]
    for name, (_, help_) in COMMANDS.items():
        lines.append(f"  {name:<10} {help_}")
    lines.append("")
    lines.append("Run 'rerank-rag COMMAND --help' for the options of a command.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from . import __version__

        print(f"rerank-rag {__version__}")
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"rerank-rag: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(entry[0])
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
