"""``rerank-rag local``: list, prepare, check and serve the local llama.cpp models.

Sub-commands::

    rerank-rag local models                  # named models and whether they are installed
    rerank-rag local path [MODEL]            # resolve (and for qwen assemble + verify) the GGUF
    rerank-rag local check [--model MODEL]   # start, health-check, one chat call, logprobs, stop
    rerank-rag local serve [--model MODEL] [--port P]   # serve until Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence

from .._errors import MissingDependencyError, RerankRagError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rerank-rag local",
        description="The local llama.cpp model server (offline default LLM).",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("models", help="list the named models and whether they are installed")
    pp = sub.add_parser("path", help="print the GGUF path of a model (assembles qwen once)")
    pp.add_argument("model", nargs="?", default="smollm2")
    for name, help_ in (
        ("check", "start the server, make one chat call (with logprobs), stop it"),
        ("serve", "start the server and keep it running until Ctrl-C"),
    ):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--model", default="smollm2", help="smollm2 | qwen2.5-1.5b | path to a GGUF")
        sp.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: free)")
        sp.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: the idle cores)")
        sp.add_argument("--n-ctx", type=int, default=4096)
        sp.add_argument("--startup-timeout", type=float, default=120.0)
    return p


def _models() -> int:
    from ._models import MODELS, _part_paths

    seen = set()
    for spec in MODELS.values():
        if spec.name in seen:
            continue
        seen.add(spec.name)
        try:
            _part_paths(spec)
            status = "installed"
        except MissingDependencyError:
            status = f"not installed (pip install 'rerank-rag[{spec.extra}]')"
        aliases = sorted(k for k, v in MODELS.items() if v is spec and k != spec.name)
        print(f"{spec.name:<14} {status}")
        print(f"    {spec.description}")
        if aliases:
            print(f"    aliases: {', '.join(aliases)}")
    print("Any other value of --model is taken as the path of a GGUF file.")
    return 0


def _path(model: str) -> int:
    from ._models import resolve_model

    path = resolve_model(model, progress=lambda m: print(m, file=sys.stderr))
    print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    from ._server import LocalLLMServer

    t0 = time.perf_counter()
    with LocalLLMServer(
        args.model, port=args.port, n_threads=args.threads, n_ctx=args.n_ctx,
        startup_timeout=args.startup_timeout,
    ) as server:  # fmt: skip
        print(f"server ready on {server.base_url} in {time.perf_counter() - t0:.1f} s "
              f"(model {server.model_path}, {server.n_threads} threads)")
        llm = server.llm
        t1 = time.perf_counter()
        c = llm.complete(
            [{"role": "user", "content": "Answer with one word: is Paris in France?"}],
            max_tokens=8, top_logprobs=5,
        )  # fmt: skip
        print(f"chat completion in {time.perf_counter() - t1:.1f} s: {c.text!r} "
              f"({c.prompt_tokens} prompt + {c.completion_tokens} completion tokens)")
        if c.top_logprobs:
            top = ", ".join(f"{k!r}: {v:.2f}" for k, v in list(c.top_logprobs.items())[:5])
            print(f"first-token logprobs: yes ({top})")
        else:
            print("first-token logprobs: not returned")
        pid = server.pid
    print("server stopped" + (f" (pid {pid} gone)" if pid and not _alive(pid) else ""))
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def _serve(args: argparse.Namespace) -> int:
    from ._server import LocalLLMServer

    stop = False

    def _handler(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _handler)
    with LocalLLMServer(
        args.model, port=args.port, n_threads=args.threads, n_ctx=args.n_ctx,
        startup_timeout=args.startup_timeout,
    ) as server:  # fmt: skip
        print(f"serving {server.model_path}")
        print(f"  base_url: {server.base_url}   model: {server.model_name}")
        print(f"  e.g. rerank-rag demo --base-url {server.base_url} --model {server.model_name}")
        print("Ctrl-C to stop.", flush=True)
        try:
            while not stop and server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        if not server.running:
            print("the server exited:\n" + server.log_tail(), file=sys.stderr)
            return 1
    print("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rerank-rag local``."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.cmd == "models":
            return _models()
        if args.cmd == "path":
            return _path(args.model)
        if args.cmd == "check":
            return _check(args)
        return _serve(args)
    except (RerankRagError, FileNotFoundError, ValueError) as exc:
        print(f"rerank-rag local: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
