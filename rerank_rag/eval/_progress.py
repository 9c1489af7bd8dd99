"""A small progress bar on stderr (no tqdm dependency).

Drawn only when the stream is a terminal (and not disabled), redrawn at most every
0.1 s; ``close()`` ends the line. Safe to use from one thread.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``Progress(total, label="dl19")``; call :meth:`update` per item, :meth:`close` at the end.

    Args:
        total: number of items.
        label: text shown before the bar.
        stream: where to draw (default ``sys.stderr``).
        enabled: ``None`` draws only if ``stream`` is a TTY; ``False`` never draws.
        width: bar width in characters.
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 28,
    ) -> None:
        self.total = max(0, int(total))
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.width = width
        self.done = 0
        self.postfix = ""
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._closed = False

    def update(self, n: int = 1, *, postfix: str | None = None) -> None:
        """Advance by ``n`` items; ``postfix`` is shown after the counts."""
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        now = time.perf_counter()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            self._draw(now)

    def render(self, now: float | None = None) -> str:
        """The bar as a string (what is drawn)."""
        now = time.perf_counter() if now is None else now
        frac = (self.done / self.total) if self.total else 1.0
        frac = min(1.0, max(0.0, frac))
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self._t0
        eta = (elapsed / self.done * (self.total - self.done)) if self.done else 0.0
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
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw(time.perf_counter())
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
