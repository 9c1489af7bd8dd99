"""What the compose wrappers share: the wrapped ranker, and their argument checks."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["RankerWrapper", "check_fraction"]


def check_fraction(name: str, value: Any, *, zero_ok: bool) -> float:
    """A real number in ``[0, 1]`` (``(0, 1]`` unless ``zero_ok``): TypeError for a
    non-number (a bool too), ValueError out of range (NaN too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    out = float(value)
    low_ok = out >= 0.0 if zero_ok else out > 0.0
    if not (low_ok and out <= 1.0):
        interval = "[0, 1]" if zero_ok else "(0, 1]"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return out


class RankerWrapper:
    """Base of the wrappers: holds ``ranker`` (anything with ``rank`` and ``arank``)
    and reports its ``judges_relevance``."""

    kind = "wrapper"

    def __init__(self, ranker: Any) -> None:
        rank, arank = getattr(ranker, "rank", None), getattr(ranker, "arank", None)
        if not callable(rank) or not callable(arank):
            raise TypeError(f"ranker must have rank() and arank(), got {type(ranker).__name__}")
        self.ranker = ranker

    @property
    def judges_relevance(self) -> Any:
        return getattr(self.ranker, "judges_relevance", None)

    def _config(self, **fields: Any) -> dict[str, Any]:
        """``to_config``: this wrapper's settings, the wrapped ranker's own config last."""
        inner = getattr(self.ranker, "to_config", None)
        ranker = inner() if callable(inner) else repr(self.ranker)
        return {"type": self.kind, **fields, "ranker": ranker}
