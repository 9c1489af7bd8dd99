"""``rerank-rag eval``: compare reranking methods on your own labelled data or on DL19,
SciFact and MuSiQue.

Prints one table (nDCG@10, MRR@10, recall, LLM calls, tokens, depth, wall time) with a
row per method, and optionally writes a JSON report and TREC runs. With ``--llm sim``
LLM figures come from :class:`~rerank_rag.eval.SimulatedLLM` (ranks by the labels plus
noise, settings from a named preset) and every one is labelled simulated, with the
preset's name, in the table and the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import RerankRagError
from ._data import DataNotFoundError, RerankDataset, default_data_dir
from ._methods import MethodSpec, method_help, resolve_method
from ._progress import Progress
from ._report import format_report_table, rank_dataset, run_eval

__all__ = ["main", "build_parser", "run_eval", "format_report_table", "rank_dataset"]

DATASETS = ("dl19", "scifact", "musique")
LLMS = ("sim", "openai", "local")

EPILOG = (
    method_help()
    + """

data (one of):
  --run FILE        your own data: rerank-rag JSONL {qid, query, candidates: [{docid, text,
                    score?}], labels?: {docid: grade}}, RankGPT JSON, or a TREC run (with
                    --topics and --corpus); labels inline or from --qrels FILE
  --multihop FILE   multi-hop questions {qid, question, gold_doc_ids, sub_questions?} with
                    --corpus FILE, for --method decompose
  --dataset NAME    dl19 | scifact | musique from --data-dir

LLM backends (for methods marked [LLM]):
  sim     the built-in LLM simulator (ranks by the labels + noise; every number it
          produces is SIMULATED and carries its preset's name; --sim-preset, --sim-*)
  openai  any OpenAI-compatible server: --base-url URL --model NAME
          (API key from the environment variable named by --api-key-env)
  local   the offline default model served by llama.cpp (rerank-rag[local])

examples:
  rerank-rag eval --run my_questions.jsonl --method bm25,minilm,jointrank,sliding
  rerank-rag eval --run my_questions.jsonl --method minilm,jointrank,sliding \\
      --llm openai --base-url http://127.0.0.1:8080/v1 --model my-model
  rerank-rag eval --run run.trec --topics topics.tsv --qrels qrels.txt --corpus corpus.jsonl --method minilm
  rerank-rag eval --dataset dl19 --data-dir ../shared/data --method first-stage,jointrank --out report.json
  rerank-rag eval --multihop questions.jsonl --corpus docs.jsonl --method decompose --decomposer none,gold
"""
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rerank-rag eval",
        description="Compare reranking methods on your own labelled data, or on DL19, SciFact or MuSiQue.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--run", help="candidates per query: rerank-rag JSONL, RankGPT JSON or a TREC run (format detected)")
    g.add_argument("--qrels", help="relevance labels (TREC qrels or BEIR TSV); replaces inline 'labels'")
    g.add_argument("--topics", help="query texts of a TREC run: qid<TAB>query, or BEIR queries.jsonl")
    g.add_argument("--corpus", help="passage texts (JSONL {_id|docid, text, title?} or TSV docid<TAB>text): "
                   "for a TREC run, for JSONL records without candidates (BM25 top --depth), for --multihop")  # fmt: skip
    g.add_argument("--multihop", help="multi-hop questions JSONL {qid, question, gold_doc_ids, sub_questions?}")
    g.add_argument("--name", help="dataset name in reports (default: from the file names)")
    g.add_argument("--dataset", choices=DATASETS, help="a public dataset from --data-dir instead of your files")
    g.add_argument("--data-dir", help="folder holding trec-dl19/, beir-scifact/, musique-100/ (default: $RERANK_RAG_DATA or ../shared/data)")
    g.add_argument("--first-stage", default="bm25", choices=("bm25", "dense"), help="DL19 first stage (dense = Contriever run)")

    g = p.add_argument_group("evaluation")
    g.add_argument("--method", help="one method or a comma-separated list (a table row each); see below")
    g.add_argument("--queries", type=int, default=None, help="evaluate only the first N queries")
    g.add_argument("--depth", type=int, default=100, help="first-stage candidates reranked per query (default 100)")
    g.add_argument("--relevance-threshold", type=int, default=None,
                   help="minimum grade counted relevant by MRR/recall (trec_eval -l; default 2 on dl19, else 1)")  # fmt: skip
    g.add_argument("--average", default="run", choices=("run", "judged"),
                   help="average over the judged queries of the run (default, as trec_eval) or over every "
                   "judged query, missing ones scoring 0 (judged, as trec_eval -c)")  # fmt: skip
    g.add_argument("--recall-k", type=int, default=20, help="cutoff of the reported recall (default 20)")
    g.add_argument("--parallel", type=int, default=1, help="queries ranked at once (default 1: per-query latency is clean)")
    g.add_argument("--seed", type=int, default=0, help="seed for JointRank designs and the simulator")
    g.add_argument("--out", help="write the JSON report here")
    g.add_argument("--run-out", help="write the reranked TREC run here (one file per method: NAME.METHOD.txt when several)")
    g.add_argument("--quiet", action="store_true", help="no progress output")
    g.add_argument("--progress-interval", type=float, default=15.0,
                   help="seconds between progress lines when stderr is not a terminal (default 15)")  # fmt: skip

    g = p.add_argument_group("method options")
    g.add_argument("--prompt", default=None, help="rankgpt | relevant-only | first-token (default: rankgpt for listwise, relevant-only for jointrank)")
    g.add_argument("--window", type=int, default=20, help="sliding window size (default 20)")
    g.add_argument("--step", type=int, default=10, help="sliding window step (default 10)")
    g.add_argument("--block-size", type=int, default=20, help="JointRank block size k (default 20)")
    g.add_argument("--replicas", type=int, default=4, help="JointRank blocks per candidate r (default 4)")
    g.add_argument("--design", default="auto", help="JointRank design: auto, equi-replicate, replicate, latin, triangular, random")
    g.add_argument("--aggregator", default=None, help="JointRank aggregator: borda (JointRanker's default), pagerank, win_rate, copeland, bradley_terry, elo")
    g.add_argument("--max-passage-tokens", type=int, default=300)
    g.add_argument("--model-path", default=None, help="bi-encoder / cross-encoder model folder")
    g.add_argument("--decomposer", default="gold", help="decompose: none | gold | llm, or a comma-separated list")
    g.add_argument("--reranker", default="minilm", help="decompose: minilm | biencoder | bm25 | none")
    g.add_argument("--musique-first-stage", "--multihop-first-stage", dest="musique_first_stage", default="bm25",
                   choices=("bm25", "biencoder"), help="decompose: the first stage over the corpus")  # fmt: skip
    g.add_argument("--k", type=int, default=10, help="decompose: passages retrieved per query (default 10)")

    g = p.add_argument_group("LLM")
    g.add_argument("--llm", default="sim", choices=LLMS, help="sim (default) | openai | local")
    g.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (--llm openai)")
    g.add_argument("--model", default=None, help="model name (--llm openai) or local model (--llm local, default smollm2)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--llm-concurrency", type=int, default=None,
                   help="concurrent LLM calls per client (default: the client's, 20: one JointRank round at once)")  # fmt: skip
    g.add_argument("--timeout", type=float, default=60.0, help="per-call timeout in seconds")
    g.add_argument("--max-retries", type=int, default=4)

    g = p.add_argument_group("simulator (--llm sim); unset options come from the preset")
    g.add_argument("--sim-preset", default=None, help="dl19 (default: fitted to published DL19 figures), exact, v0.1")
    g.add_argument("--sim-noise", type=float, default=None, help="per-view noise s.d. in grade units")
    g.add_argument("--sim-noise-growth", type=float, default=None, help="variance growth per extra passage shown")
    g.add_argument("--sim-doc-noise", type=float, default=None, help="persistent per-passage error s.d.")
    g.add_argument("--sim-position-bias", type=float, default=None, help="bonus for early positions in a prompt")
    g.add_argument("--sim-latency", default=None, help="seconds per call, per input token, per output token (e.g. 0.3,0.0002,0.015)")
    g.add_argument("--sim-concurrency", type=int, default=None, help="server-side concurrency limit (default none)")
    g.add_argument("--sim-fault-rate", type=float, default=0.0, help="total injected fault rate, spread over 429/500/timeout/reset/empty/truncated")
    return p


# -- LLM setup -------------------------------------------------------------------------


def _sim_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from ._sim_config import FaultConfig, LatencyModel, get_preset

    kw: dict[str, Any] = {"preset": get_preset(args.sim_preset)}
    for opt, key in (("sim_noise", "noise"), ("sim_noise_growth", "noise_growth"),
                     ("sim_doc_noise", "doc_noise"), ("sim_position_bias", "position_bias")):  # fmt: skip
        if getattr(args, opt) is not None:
            kw[key] = getattr(args, opt)
    if args.sim_latency is not None:
        try:
            parts = [float(x) for x in str(args.sim_latency).split(",")]
        except ValueError:
            raise ValueError(f"--sim-latency must be three numbers 'per_call,per_input_token,per_output_token', got {args.sim_latency!r}") from None
        if len(parts) != 3:
            raise ValueError("--sim-latency must be three numbers: per_call,per_input_token,per_output_token")
        kw["latency"] = LatencyModel(*parts)
    timeout_delay = max(args.timeout * 1.5, 1.0)
    kw["max_concurrency"] = args.sim_concurrency
    kw["faults"] = FaultConfig.uniform(args.sim_fault_rate, retry_after=1, timeout_delay=timeout_delay)
    kw["seed"] = args.seed
    return kw


def _open_llm(
    args: argparse.Namespace, stack: contextlib.ExitStack, ds: RerankDataset | None, fallback: Any = None
) -> tuple[Any, dict[str, Any], Any]:
    """Start the requested backend; returns ``(llm, description, simulator or None)``."""
    if args.llm == "sim":
        from ._simulator import SimulatedLLM

        kw = _sim_kwargs(args)
        if ds is not None:
            sim = SimulatedLLM(
                ds.qrels, corpus=ds.corpus, queries={q.qid: q.text for q in ds.queries}, fallback=fallback, **kw
            )
        else:
            sim = SimulatedLLM(lambda q, p: 0.0, fallback=fallback, **kw)
        stack.enter_context(sim)
        limit = {} if args.llm_concurrency is None else {"max_concurrency": args.llm_concurrency}
        llm = sim.client(timeout=args.timeout, max_retries=args.max_retries, **limit)
        stack.callback(llm.close)
        info = {"kind": "sim", "label": sim.label, "preset": sim.preset.name, "simulator": sim.config()}
        return llm, info, sim
    if args.llm == "openai":
        if not args.base_url or not args.model:
            raise ValueError("--llm openai needs --base-url URL and --model NAME")
        from ..llm._openai import OpenAICompatibleLLM

        key = os.environ.get(args.api_key_env) if args.api_key_env else None
        limit = {} if args.llm_concurrency is None else {"max_concurrency": args.llm_concurrency}
        llm = OpenAICompatibleLLM(
            args.model, base_url=args.base_url, api_key=key,
            timeout=args.timeout, max_retries=args.max_retries, seed=args.seed, **limit,
        )  # fmt: skip
        stack.callback(llm.close)
        return llm, {"kind": "openai", "model": args.model, "base_url": args.base_url}, None
    try:
        from ..local import LocalLLMServer
    except ImportError as exc:  # pragma: no cover - depends on the local module
        raise RuntimeError(f"--llm local needs rerank_rag.local ({exc}); install 'rerank-rag[local]'") from exc
    server = LocalLLMServer(model=args.model or "smollm2")
    stack.enter_context(server)
    return server.llm, {"kind": "local", "model": args.model or "smollm2"}, None


# -- data ------------------------------------------------------------------------------


def _data_dir(args: argparse.Namespace) -> Path:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if data_dir is None or not data_dir.exists():
        raise DataNotFoundError(
            "no data folder; pass --data-dir PATH (the folder holding trec-dl19/, beir-scifact/, "
            "musique-100/) or set RERANK_RAG_DATA"
        )
    return data_dir


def _load(args: argparse.Namespace) -> RerankDataset:
    if args.run:
        from ._loaders import load_dataset

        ds = load_dataset(
            args.run, qrels=args.qrels, topics=args.topics, corpus=args.corpus, depth=args.depth,
            name=args.name, threshold=1 if args.relevance_threshold is None else args.relevance_threshold,
        )  # fmt: skip
    elif args.dataset == "dl19":
        from ._data import load_dl19

        ds = load_dl19(_data_dir(args), first_stage=args.first_stage, depth=args.depth)
    else:
        from ._data import load_scifact

        ds = load_scifact(_data_dir(args), depth=args.depth)
    if args.relevance_threshold is not None:
        ds.threshold = args.relevance_threshold
    return ds.limit(args.queries)


def _write_json(path: str, report: dict[str, Any]) -> None:
    out = {k: v for k, v in report.items() if not k.startswith("_")}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _run_path(template: str, method: str, several: bool) -> str:
    if not several:
        return template
    p = Path(template)
    return str(p.with_name(f"{p.stem}.{method}{p.suffix or '.txt'}"))


# -- multi-hop (decomposition) ----------------------------------------------------------


def _run_multihop(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ._multihop import DECOMPOSERS, evaluate_multihop, format_multihop_table, sim_decomposer

    decomposers = [d.strip() for d in str(args.decomposer).split(",") if d.strip()]
    pairs: list[tuple[str, Any]] = []
    bad = [d for d in decomposers if d not in DECOMPOSERS]
    if bad or not decomposers:
        raise ValueError(f"--decomposer takes {', '.join(DECOMPOSERS)} (comma-separated); got {args.decomposer!r}")
    if args.multihop:
        from ._multihop import load_multihop

        data = load_multihop(args.multihop, args.corpus, name=args.name)
        pairs = [(q.question, q.sub_questions or ()) for q in data.questions]
    else:
        from ._musique import load_musique_eval, musique_sim_decomposer

        data = load_musique_eval(_data_dir(args))
    data = data.limit(args.queries)
    results, infos = [], []
    for dec in decomposers:
        bar = _progress(args, len(data.questions), f"{data.name} decompose/{dec}")
        with contextlib.ExitStack() as stack:
            llm, info, sim = None, {"kind": None}, None
            if dec == "llm":
                fallback = None
                if args.llm == "sim":
                    fallback = sim_decomposer(pairs) if args.multihop else musique_sim_decomposer(data.records)
                llm, info, sim = _open_llm(args, stack, None, fallback=fallback)
            result = evaluate_multihop(
                data, decomposer=dec, reranker=args.reranker, first_stage=args.musique_first_stage, llm=llm,
                k=args.k, progress=lambda i, n, row: bar.update(1),
            )  # fmt: skip
            bar.close()
            if sim is not None:
                info = dict(info, stats=sim.stats)
        simulated = info.get("kind") == "sim"
        result["llm"], result["simulated"] = info, simulated
        if simulated:
            result["label"] += f" ({info['label']} decomposer)"
        results.append(result)
        infos.append(info)
    if any(r["simulated"] for r in results):
        print("SIMULATED: the LLM decomposer is the rerank-rag LLM simulator answering with the gold sub-questions.")
    print(format_multihop_table(results))
    if args.out:
        report = results[0] if len(results) == 1 else {"tool": "rerank-rag eval", "results": results}
        report["command"] = "rerank-rag eval " + " ".join(argv)
        _write_json(args.out, report)
        print(f"report written to {args.out}")
    return 0


# -- main ------------------------------------------------------------------------------


def _progress(args: argparse.Namespace, total: int, label: str) -> Progress:
    return Progress(total, label=label, enabled=False if args.quiet else None, interval=args.progress_interval)


def _methods(parser: argparse.ArgumentParser, value: str | None, multihop: bool) -> list[MethodSpec]:
    if not value:
        if multihop:
            return [resolve_method("decompose")]
        parser.error("--method is required (one method or a comma-separated list)")
    specs = []
    for name in str(value).split(","):
        if name.strip():
            try:
                specs.append(resolve_method(name))
            except ValueError as exc:
                parser.error(str(exc))
    if not specs:
        parser.error("--method is empty")
    return list({s.name: s for s in specs}.values())


def _evaluate(
    args: argparse.Namespace, specs: list[MethodSpec]
) -> tuple[RerankDataset, list[dict[str, Any]], dict[str, str]]:
    """Run every method; a method whose optional dependency is missing is skipped (and
    reported), the others still run."""
    from .._errors import MissingDependencyError

    ds = _load(args)
    reports, skipped = [], {}
    with contextlib.ExitStack() as shared:
        shared_llm = None
        if args.llm != "sim" and any(s.needs_llm for s in specs):
            shared_llm = _open_llm(args, shared, ds)
        for spec in specs:
            with contextlib.ExitStack() as stack:
                llm, info, sim = (None, None, None) if not spec.needs_llm else (shared_llm or _open_llm(args, stack, ds))
                try:
                    ranker = spec.build(args, llm)
                    warm_up = getattr(ranker, "warm_up", None)
                    if callable(warm_up) and not spec.needs_llm:
                        warm_up()  # a missing model surfaces here, not as failed queries
                except MissingDependencyError as exc:
                    skipped[spec.name] = str(exc)
                    print(f"rerank-rag eval: {spec.name} skipped: {exc}", file=sys.stderr)
                    continue
                bar = _progress(args, len(ds.queries), f"{ds.name} {spec.name}")
                report = run_eval(
                    ds, spec, ranker=ranker, options=args, parallel=args.parallel, recall_k=args.recall_k,
                    progress=bar, llm_info=info, queries=args.average,
                )  # fmt: skip
                bar.close()
                if sim is not None:
                    report["llm"]["stats"] = sim.stats
            reports.append(report)
    if not reports:
        raise RuntimeError("no method could run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    return ds, reports, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rerank-rag eval``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    sources = [n for n in ("run", "multihop", "dataset") if getattr(args, n)]
    if len(sources) != 1:
        parser.error(
            "give one data source: --run FILE (your own data), --multihop FILE (with --corpus) or --dataset NAME"
            + (f"; got {', '.join('--' + s for s in sources)}" if sources else "")
        )
    multihop = bool(args.multihop) or args.dataset == "musique"
    specs = _methods(parser, args.method, multihop)
    for name in ("queries", "depth", "parallel", "recall_k", "llm_concurrency", "k"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if multihop and [s.name for s in specs] != ["decompose"]:
        print("rerank-rag eval: multi-hop data (--multihop, --dataset musique) is evaluated with --method decompose",
              file=sys.stderr)  # fmt: skip
        return 2
    if not multihop and any(s.name == "decompose" for s in specs):
        print("rerank-rag eval: --method decompose needs multi-hop data: --multihop FILE --corpus FILE or --dataset musique",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        if multihop:
            return _run_multihop(args, argv)
        ds, reports, skipped = _evaluate(args, specs)
    except DataNotFoundError as exc:
        print(f"rerank-rag eval: {exc}", file=sys.stderr)
        return 2
    except (ValueError, ImportError, RuntimeError) as exc:
        print(f"rerank-rag eval: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except RerankRagError as exc:  # e.g. LLMConfigurationError: a wrong key, an unknown model
        print(f"rerank-rag eval: stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    command = "rerank-rag eval " + " ".join(argv)
    for r in reports:
        r["command"], r["seed"] = command, args.seed
    print(format_report_table(reports))
    for name, why in skipped.items():
        print(f"skipped: {name} ({why})")
    for r in reports:
        if r["errors"]:
            print(f"warning: {r['method']}: {r['errors']} queries failed and kept their first-stage order (see per_query errors)")
    several = len(specs) > 1  # the shape follows the command, not what could run
    if args.run_out:
        from ._trec import write_run

        for r in reports:
            path = _run_path(args.run_out, r["method"], several)
            write_run(path, r["_run"], tag=f"rerank-rag-{r['method']}")
            print(f"run written to {path}")
    if args.out:
        if several:
            clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in reports]
            _write_json(args.out, {"tool": "rerank-rag eval", "dataset": ds.name, "command": command,
                                   "reports": clean, "skipped": skipped})  # fmt: skip
        else:
            _write_json(args.out, reports[0])
        print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
