"""Progress of a long evaluation on stderr (no tqdm dependency).

On a terminal: a bar redrawn in place at most every 0.1 s. Elsewhere (CI logs, nohup,
a pipe): one plain line every ``interval`` seconds (and at the end) with the queries
done, the rate and the ETA, so long runs show life without filling the log::

    [progress] dl19 jointrank: 12/43 queries (28%), 0.81 queries/s, 14.8 s elapsed, ETA 38 s

Safe to use from one thread.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``Progress(total, label="dl19")``; call :meth:`update` per item, :meth:`close` at the end.

    Args:
        total: number of items.
        label: text shown before the counts.
        stream: where to write (default ``sys.stderr``).
        enabled: ``None`` (default): a bar on a terminal, periodic log lines otherwise;
            ``False``: nothing at all; ``True``: the bar.
        width: bar width in characters.
        interval: seconds between two log lines when ``stream`` is not a terminal
            (default 15; 0 logs every update).
        clock: the time source (``time.perf_counter``; replaceable in tests).
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 28,
        interval: float = 15.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval}")
        self.total = max(0, int(total))
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.log_lines = False
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
            enabled, self.log_lines = tty, not tty
        self.enabled = enabled
        self.width = width
        self.interval = float(interval)
        self.clock = clock
        self.done = 0
        self.postfix = ""
        self._t0 = clock()
        self._last = 0.0
        self._last_log = self._t0
        self._logged_done = -1
        self._closed = False

    def update(self, n: int = 1, *, postfix: str | None = None) -> None:
        """Advance by ``n`` items; ``postfix`` is shown after the counts."""
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        now = self.clock()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            self._draw(now)
        elif self.log_lines and now - self._last_log >= self.interval:
            self._log(now)

    def _eta(self, now: float) -> tuple[float, float, float]:
        elapsed = now - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        return elapsed, rate, eta

    def log_line(self, now: float | None = None) -> str:
        """The plain progress line (what is logged when the stream is not a terminal)."""
        now = self.clock() if now is None else now
        elapsed, rate, eta = self._eta(now)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"[progress] {self.label}: {self.done}/{self.total} queries ({pct:.0f}%), {rate:.2f} queries/s, {elapsed:.1f} s elapsed"
        if self.done < self.total:
            text += f", ETA {eta:.0f} s" if eta != float("inf") else ", ETA unknown"
        if self.postfix:
            text += f" {self.postfix}"
        return text

    def _log(self, now: float) -> None:
        self._last_log = now
        self._logged_done = self.done
        try:
            self.stream.write(self.log_line(now) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            self.log_lines = False

    def render(self, now: float | None = None) -> str:
        """The bar as a string (what is drawn on a terminal)."""
        now = self.clock() if now is None else now
        frac = (self.done / self.total) if self.total else 1.0
        frac = min(1.0, max(0.0, frac))
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed, _, eta = self._eta(now)
        text = f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s"
        if self.done and self.done < self.total:
            text += f" eta {eta:5.1f}s"
        if self.postfix:
            text += f" {self.postfix}"
        return text

    def _draw(self, now: float) -> None:
        try:
            self.stream.write("\r" + self.render(now) + "\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        """End the bar's line, or log the final count (once)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw(self.clock())
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        elif self.log_lines and self._logged_done != self.done:
            self._log(self.clock())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
