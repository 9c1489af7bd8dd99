"""``rerank-rag batch``: rerank a whole query set into a TREC run, resumably.

    rerank-rag batch --input queries.jsonl --method jointrank --out run.trec \\
        --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --max-in-flight 64

Results are journaled per query as they finish (``run.trec.journal.jsonl``, fsync'd);
rerunning the same command after an interrupt skips the finished queries. When all are
done, ``run.trec`` (input order) and ``run.trec.usage.json`` are written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .._errors import LLMError, MissingDependencyError
from ._types import BatchError

__all__ = ["main", "build_parser"]

EPILOG = """
inputs (--format auto guesses):
  rankgpt  RankGPT / pyserini JSON: [{query, hits: [{qid, docid, content, score}]}] (.json or .jsonl)
  jsonl    one query per line: {"qid", "query", "candidates": [{"docid", "text", "score"?}]}
           (records without candidates: their BM25 top --depth over --corpus)
  trec     a TREC run file (--input) with --topics (qid<TAB>query) and --corpus
           (docid<TAB>text, or JSONL {docid|_id, text, title?})

outputs:
  OUT                      the TREC run, queries in input order (written when all are done)
  OUT.journal.jsonl        one fsync'd line per finished query (what a rerun resumes from)
  OUT.usage.json           usage totals and per query (LLM calls, tokens, retries, fallbacks)

engines:
  local   one process: one event loop, one client, --max-in-flight calls at once
  ray     Ray Data (pip install 'rerank-rag[ray]'): --ray-address auto|ray://HOST:10001
          (default: a local Ray instance), --ray-actors N LLM clients

examples:
  rerank-rag batch --input dl19.json --method jointrank --out dl19.trec \\
      --base-url http://127.0.0.1:8000/v1 --model my-model --max-in-flight 64
  rerank-rag batch --input run.bm25 --topics topics.tsv --corpus collection.tsv \\
      --method sliding --out run.trec --engine ray --ray-address auto --ray-actors 8 ...
"""


def build_parser() -> argparse.ArgumentParser:
    from ..eval._methods import method_help

    p = argparse.ArgumentParser(
        prog="rerank-rag batch",
        description="Rerank a whole query set into a TREC run (resumable; local or Ray engine).",
        epilog=method_help() + "\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("input and output")
    g.add_argument("--input", required=True, help="queries with their candidates (see 'inputs')")
    g.add_argument("--format", default="auto", choices=("auto", "rankgpt", "jsonl", "trec"))
    g.add_argument("--topics", help="TREC input: qid<TAB>query file")
    g.add_argument("--corpus", help="TREC input: docid<TAB>text TSV or JSONL corpus")
    g.add_argument("--depth", type=int, default=None, help="rerank the first N candidates per query (default all)")
    g.add_argument("--out", required=True, help="the TREC run to write")
    g.add_argument("--usage-out", help="usage report (default OUT.usage.json)")
    g.add_argument("--tag", help="run tag (default rerank-rag-METHOD)")
    g.add_argument("--top-n", type=int, default=None, help="keep the best N per query (default all)")
    g.add_argument("--restart", action="store_true", help="ignore an existing journal and start over")
    g.add_argument("--progress", default="auto", choices=("auto", "bar", "log", "off"), help="bar on a TTY, log lines otherwise")
    g.add_argument("--log-every", type=float, default=10.0, help="seconds between progress log lines")

    g = p.add_argument_group("method")
    g.add_argument("--method", required=True, help="see the list above")
    g.add_argument("--prompt", default=None, help="rankgpt | relevant-only | first-token")
    g.add_argument("--window", type=int, default=20)
    g.add_argument("--step", type=int, default=10)
    g.add_argument("--block-size", type=int, default=20)
    g.add_argument("--replicas", type=int, default=4)
    g.add_argument("--design", default="auto")
    g.add_argument("--aggregator", default=None, help="JointRank aggregator (default: JointRanker's, borda)")
    g.add_argument("--seed", type=int, default=0, help="JointRank design seed (and the LLM seed)")
    g.add_argument("--max-passage-tokens", type=int, default=300)
    g.add_argument("--model-path", default=None, help="bi-encoder / cross-encoder model folder")

    g = p.add_argument_group("LLM")
    g.add_argument("--llm", default="openai", choices=("openai", "local"), help="openai: any OpenAI-compatible server (vLLM, llama.cpp, ...); local: the bundled llama.cpp model")
    g.add_argument("--base-url", default=None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--model", default=None, help="model name")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--max-in-flight", type=int, default=64, help="global cap on LLM calls in flight (default 64)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP attempt")
    g.add_argument("--max-retries", type=int, default=4, help="retries per call (429, 5xx, timeouts)")

    g = p.add_argument_group("engine")
    g.add_argument("--engine", default="local", choices=("local", "ray"))
    g.add_argument("--max-queries-in-flight", type=int, default=None, help="local: queries ranked at once, at most (default 4 x --max-in-flight)")
    g.add_argument("--ray-address", default=None, help="ray: cluster address (auto, ray://HOST:10001); default a local instance")
    g.add_argument("--ray-actors", type=int, default=2, help="ray: actors (LLM clients) in the pool")
    g.add_argument("--ray-batch-size", type=int, default=None, help="ray: rows per actor call")
    g.add_argument("--ray-actor-cpus", type=float, default=0.5, help="ray: CPUs reserved per actor")
    g.add_argument("--ray-split", default="auto", choices=("auto", "blocks", "queries"), help="ray: block rows (one-round methods) or whole queries per actor")
    g.add_argument("--ray-runtime-env", default=None, help='ray: runtime environment as JSON, e.g. \'{"pip": ["rerank-rag[openai]"]}\'')
    return p


def _open_llm(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[Any, dict[str, Any]]:
    if args.llm == "local":
        from ..local import LocalLLMServer

        server = LocalLLMServer(model=args.model or "smollm2")
        stack.enter_context(server)
        return server.llm, {"kind": "local", "model": args.model or "smollm2"}
    if not args.base_url or not args.model:
        raise BatchError("an LLM method needs --base-url URL and --model NAME (or --llm local)")
    from ..llm._openai import OpenAICompatibleLLM

    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    llm = OpenAICompatibleLLM(
        args.model,
        base_url=args.base_url,
        api_key=key,
        max_concurrency=args.max_in_flight,
        timeout=args.timeout,
        max_retries=args.max_retries,
        seed=args.seed,
    )
    return llm, {"kind": "openai", "model": args.model, "base_url": args.base_url}


async def _run(args: argparse.Namespace, ranker: Any, source: Any, header: dict[str, Any], tag: str, engine_kw: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    from ._run import arerank_to_run

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    terminated = []

    def on_term() -> None:
        terminated.append(True)
        if task is not None:
            task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await arerank_to_run(
            ranker, source, args.out, engine=args.engine, header=header, report_out=args.usage_out,
            report_extra=extra, tag=tag, restart=args.restart, progress=args.progress,
            log_every=args.log_every, total=source.total, **engine_kw,
        )
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated() from None
        raise


class _Terminated(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rerank-rag batch``; returns the exit code."""
    from ..eval._methods import resolve_method
    from ._inputs import read_input
    from ._journal import journal_path, read_journal

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        spec = resolve_method(args.method)
    except ValueError as exc:
        parser.error(str(exc))
    if spec.name == "decompose":
        parser.error("--method decompose is not a reranker of candidate lists; use rerank-rag eval")
    for name in ("depth", "top_n", "max_in_flight", "max_queries_in_flight", "ray_actors", "ray_batch_size"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.max_retries < 0:
        parser.error("--max-retries must be >= 0")
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    tag = args.tag or f"rerank-rag-{spec.name}"
    try:
        source = read_input(args.input, format=args.format, topics=args.topics, corpus=args.corpus, depth=args.depth)
        with contextlib.ExitStack() as stack:
            llm, llm_info = (None, {"kind": None})
            if spec.needs_llm:
                llm, llm_info = _open_llm(args, stack)
            ranker = spec.build(args, llm)
            config = dict(spec.config(args))
            config.update(max_passage_tokens=args.max_passage_tokens, seed=args.seed)
            header = {"method": spec.name, "config": config, "top_n": args.top_n, "depth": args.depth, "model": llm_info.get("model")}
            if args.engine == "local":
                engine_kw: dict[str, Any] = {"max_calls_in_flight": args.max_in_flight, "max_queries_in_flight": args.max_queries_in_flight, "top_n": args.top_n}
            else:
                engine_kw = {
                    "max_calls_in_flight": args.max_in_flight, "top_n": args.top_n, "address": args.ray_address,
                    "num_actors": args.ray_actors, "batch_size": args.ray_batch_size,
                    "actor_num_cpus": args.ray_actor_cpus, "split": args.ray_split,
                    "runtime_env": _json_arg(args.ray_runtime_env, "--ray-runtime-env"),
                }
            extra = {"method": spec.name, "llm": llm_info, "input": source.describe, "command": "rerank-rag batch " + " ".join(argv)}
            report = asyncio.run(_run(args, ranker, source, header, tag, engine_kw, extra))
    except (KeyboardInterrupt, _Terminated) as exc:
        done = _done_count(journal_path(args.out), read_journal)
        code = 143 if isinstance(exc, _Terminated) else 130
        print(
            f"\nrerank-rag batch: interrupted; {done} queries are saved in {journal_path(args.out)}. "
            "Rerun the same command to resume.",
            file=sys.stderr,
        )
        return code
    except LLMError as exc:  # a permanent error (wrong key, unknown model): stop, no fallbacks
        done = _done_count(journal_path(args.out), read_journal)
        print(
            f"rerank-rag batch: stopped by a permanent LLM error ({type(exc).__name__}): {exc}\n"
            f"No fallback ranking was written for it; {done} finished queries are saved. "
            "Fix the setting and rerun the same command to resume.",
            file=sys.stderr,
        )
        return 1
    except (BatchError, MissingDependencyError, ValueError, TypeError, OSError) as exc:
        print(f"rerank-rag batch: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    t = report["usage"]["totals"]
    this = report["this_run"]
    usage_out = args.usage_out or f"{args.out}.usage.json"
    print(
        f"{report['queries']} queries -> {args.out} (usage: {usage_out}); this run ranked "
        f"{this['queries_ranked']} in {this['wall_time_s']:.1f} s ({this['queries_per_s']:.2f} q/s, "
        f"{this['calls_per_s']:.1f} calls/s); total {t['llm_calls']} LLM calls, {t['retries']} retries, "
        f"{t['fallbacks']} fallbacks, {t['failed_calls']} failed calls"
    )
    return 0


def _json_arg(text: str | None, name: str) -> Any:
    if text is None:
        return None
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BatchError(f"{name} must be JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BatchError(f"{name} must be a JSON object")
    return value


def _done_count(path: Any, reader: Any) -> int:
    try:
        return len(reader(path)[1])
    except OSError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
