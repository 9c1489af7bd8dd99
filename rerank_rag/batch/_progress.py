"""Progress of a batch: a bar on a terminal, periodic log lines otherwise.

Shows queries done of the total, queries/s, LLM calls/s, tokens and the ETA. On a TTY
it redraws :class:`rerank_rag.eval._progress.Progress` (the same bar ``rerank-rag
eval`` draws); when the stream is not a terminal (a CI log, a file, ``nohup``) it writes
one line every ``log_every`` seconds instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..eval._progress import Progress

__all__ = ["BatchProgress", "human"]


def human(n: float) -> str:
    """``1234567`` -> ``"1.2M"``."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def _eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class BatchProgress:
    """Progress of ``total`` queries (``None``: unknown).

    Args:
        total: queries to rank in this run (finished ones from an earlier run excluded).
        stats: ``stats() -> {"calls": int, "tokens": int, ...}`` of the engine.
        stream: where to write (default ``sys.stderr``).
        mode: ``"auto"`` (bar on a TTY, log lines otherwise), ``"bar"``, ``"log"`` or
            ``"off"``.
        log_every: seconds between log lines.
        label: shown first.
    """

    def __init__(
        self,
        total: int | None,
        *,
        stats: Callable[[], dict[str, Any]] | None = None,
        stream: TextIO | None = None,
        mode: str = "auto",
        log_every: float = 10.0,
        label: str = "batch",
    ) -> None:
        if mode not in ("auto", "bar", "log", "off"):
            raise ValueError(f"mode must be auto, bar, log or off, got {mode!r}")
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            mode = "bar" if isatty is not None and isatty() else "log"
        self.mode = mode
        self.total = total
        self.stats = stats or (lambda: {})
        self.log_every = float(log_every)
        self.label = label
        self.done = 0
        self._t0 = time.perf_counter()
        self._last_log = self._t0
        self._bar = (
            Progress(total or 0, label=label, stream=self.stream, enabled=True) if mode == "bar" else None
        )

    def rates(self, now: float | None = None) -> dict[str, float]:
        """queries/s, calls/s, tokens and ETA (seconds, ``nan`` if unknown) so far."""
        now = time.perf_counter() if now is None else now
        el = max(1e-9, now - self._t0)
        s = self.stats()
        qps = self.done / el
        left = (self.total - self.done) if self.total is not None else None
        eta = (left / qps) if (left is not None and qps > 0) else float("nan")
        return {
            "elapsed": el,
            "queries_per_s": qps,
            "calls_per_s": float(s.get("calls", 0)) / el,
            "tokens": float(s.get("tokens", 0)),
            "eta": eta,
        }

    def line(self, now: float | None = None) -> str:
        r = self.rates(now)
        total = "?" if self.total is None else str(self.total)
        eta = "?" if r["eta"] != r["eta"] else _eta(r["eta"])
        return (
            f"[{self.label}] {self.done}/{total} queries, {r['queries_per_s']:.2f} q/s, "
            f"{r['calls_per_s']:.1f} calls/s, {human(r['tokens'])} tokens, "
            f"elapsed {_eta(r['elapsed'])}, eta {eta}"
        )

    def _postfix(self) -> str:
        r = self.rates()
        return f"{r['queries_per_s']:.2f} q/s {r['calls_per_s']:.1f} calls/s {human(r['tokens'])} tok"

    def update(self, n: int = 1) -> None:
        """``n`` more queries finished."""
        self.done += n
        self.tick()
        if self._bar is not None:
            self._bar.update(n, postfix=self._postfix())

    def tick(self) -> None:
        """Refresh (call periodically: rates change between finished queries)."""
        now = time.perf_counter()
        if self.mode == "log" and now - self._last_log >= self.log_every:
            self._last_log = now
            self._write(self.line(now) + "\n")
        elif self._bar is not None:
            self._bar.postfix = self._postfix()
            self._bar.update(0)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.mode = "off"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log":
            self._write(self.line() + "\n")
