"""Evaluation harness: loaders for your own labelled data and for DL19 / SciFact /
MuSiQue, trec_eval-compatible metrics, TREC run I/O, multi-hop (decomposition)
evaluation, and an LLM simulator with named presets.

Importing this package is cheap (stdlib only); rankers and the simulator load lazily.

    >>> from rerank_rag.eval import ndcg_at_k
    >>> round(ndcg_at_k(["d2", "d1"], {"d1": 2, "d2": 0}, 10), 4)
    0.6309
"""

from __future__ import annotations

import importlib
from typing import Any

from ._data import (
    DataNotFoundError,
    EvalQuery,
    Hit,
    QueryHits,
    RerankDataset,
    default_data_dir,
    load_dl19,
    load_musique,
    load_qrels,
    load_rankgpt_json,
    load_scifact,
    load_scifact_corpus,
    load_topics,
    parse_numpy_string_list,
)
from ._loaders import FORMATS, dataset_name, detect_format, iter_queries, load_corpus, load_dataset
from ._metrics import (
    AVERAGING,
    DEFAULT_METRICS,
    EvalResult,
    evaluate,
    judged_at_k,
    mrr_at_k,
    ndcg_at_k,
    parse_metric,
    recall_at_k,
)
from ._progress import Progress
from ._trec import read_run, run_to_lists, write_run

_LAZY = {
    "SimulatedLLM": "rerank_rag.eval._simulator",
    "LatencyModel": "rerank_rag.eval._sim_config",
    "FaultConfig": "rerank_rag.eval._sim_config",
    "METHODS": "rerank_rag.eval._methods",
    "build_method": "rerank_rag.eval._methods",
    "run_eval": "rerank_rag.eval._report",
    "rank_dataset": "rerank_rag.eval._report",
    "format_report_table": "rerank_rag.eval._report",
    "MultiHopData": "rerank_rag.eval._multihop",
    "MultiHopQuestion": "rerank_rag.eval._multihop",
    "load_multihop": "rerank_rag.eval._multihop",
    "evaluate_multihop": "rerank_rag.eval._multihop",
    "format_multihop_table": "rerank_rag.eval._multihop",
    "load_musique_eval": "rerank_rag.eval._musique",
    "evaluate_musique": "rerank_rag.eval._musique",
    "SimPreset": "rerank_rag.eval._sim_config",
    "PRESETS": "rerank_rag.eval._sim_config",
    "DEFAULT_PRESET": "rerank_rag.eval._sim_config",
    "get_preset": "rerank_rag.eval._sim_config",
}

__all__ = [
    "AVERAGING",
    "DEFAULT_METRICS",
    "FORMATS",
    "Progress",
    "dataset_name",
    "detect_format",
    "iter_queries",
    "load_corpus",
    "load_dataset",
    "DataNotFoundError",
    "EvalQuery",
    "EvalResult",
    "Hit",
    "QueryHits",
    "RerankDataset",
    "default_data_dir",
    "evaluate",
    "judged_at_k",
    "load_dl19",
    "load_musique",
    "load_qrels",
    "load_rankgpt_json",
    "load_scifact",
    "load_scifact_corpus",
    "load_topics",
    "mrr_at_k",
    "ndcg_at_k",
    "parse_metric",
    "parse_numpy_string_list",
    "read_run",
    "recall_at_k",
    "run_to_lists",
    "write_run",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rerank_rag.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
