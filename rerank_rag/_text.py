"""Token budgets for passages shown to an LLM: counting, truncation, sanitising.

Two token counters, chosen once per process:

* **tiktoken** (``cl100k_base``), used when the ``tiktoken`` package is installed
  *and* its encoding file is already in tiktoken's local cache (``TIKTOKEN_CACHE_DIR``,
  ``DATA_GYM_CACHE_DIR`` or ``<tmp>/data-gym-cache``). tiktoken downloads encodings on
  first use; rerank-rag never triggers that download (it would hang or fail offline).
  Any failure while loading is caught once, remembered, and the estimate is used.
* **the estimate** otherwise (documented, deterministic, no dependency). Text is split
  into units: each CJK character (Han, Kana, Hangul, CJK punctuation, fullwidth forms)
  is one token; every other run of non-space characters (a word with its punctuation)
  costs ``ceil(len / 4)`` tokens, at least 1 (about 4 characters per token for long
  words, URLs and code; short words are one token). It slightly over-counts English
  compared with ``cl100k_base``, which keeps budgets on the safe side.

Set ``RERANK_RAG_TOKENIZER=estimate`` to force the estimate (reproducible budgets
whatever is installed).

Truncation always collapses whitespace (runs of spaces, tabs and line breaks become one
space) and never cuts inside a character: with tiktoken the token prefix is decoded
as bytes and a trailing partial UTF-8 sequence is dropped; with the estimate the cut
falls on a word boundary, CJK text is cut between characters (it has no spaces), and a
single word longer than the whole budget is cut by characters (4 per token).
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache
from typing import Any

__all__ = [
    "count_tokens",
    "truncate_tokens",
    "collapse_whitespace",
    "sanitize_passage",
    "prepare_passage",
    "clear_passage_cache",
    "tokenizer_name",
]

_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"

# CJK-like scripts: one estimated token per character; cut between characters.
_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u31ff"  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul Jamo extended-A
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff00-\uffef"  # Halfwidth and fullwidth forms
    "\U00020000-\U0003134f"  # CJK extensions B..G
)
_UNIT_RE = re.compile(f"(?P<cjk>[{_CJK}])|[^\\s{_CJK}]+")
_SPACE_RUN_RE = re.compile(r"\S+")
_CJK_RE = re.compile(f"[{_CJK}]")
# A bracketed id inside a passage ("[3]", "[ 12 ]", "[B]", fullwidth/lenticular brackets):
# rewritten to "(3)" so a passage cannot forge the ids the model is asked to output.
_FORGED_ID_RE = re.compile(r"[\[\uff3b\u3010\u3014]\s*(\d{1,9}|[A-Za-z])\s*[\]\uff3d\u3011\u3015]")


class _EncoderHolder:
    """Lazily loads the tiktoken encoding once per process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._encoder: Any = None
        self.reason = "not loaded yet"

    def get(self) -> Any:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._encoder, self.reason = _load_tiktoken()
                    self._loaded = True
        return self._encoder

    def set(self, encoder: Any, reason: str = "set explicitly") -> None:
        """Use ``encoder`` (an object with ``encode_ordinary`` and ``decode_bytes``,
        like a tiktoken ``Encoding``), or ``None`` for the estimate. Clears caches."""
        with self._lock:
            self._encoder = encoder
            self.reason = reason
            self._loaded = True
        clear_passage_cache()

    def reset(self) -> None:
        """Forget the choice; the next call loads again (used by tests)."""
        with self._lock:
            self._encoder = None
            self._loaded = False
            self.reason = "not loaded yet"
        clear_passage_cache()


def _tiktoken_cache_file(url: str) -> str | None:
    """Where tiktoken caches ``url`` (mirrors ``tiktoken.load.read_file_cached``)."""
    import hashlib
    import tempfile

    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:  # caching disabled: loading would always download
        return None
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())


def _load_tiktoken() -> tuple[Any, str]:
    if os.environ.get("RERANK_RAG_TOKENIZER", "").strip().lower() == "estimate":
        return None, "estimate forced by RERANK_RAG_TOKENIZER=estimate"
    try:
        import importlib.util

        if importlib.util.find_spec("tiktoken") is None:
            return None, "tiktoken is not installed (pip install 'rerank-rag[tiktoken]')"
        path = _tiktoken_cache_file(_CL100K_URL)
        if path is None or not os.path.isfile(path):
            return None, (
                "tiktoken's cl100k_base encoding is not cached locally (rerank-rag never "
                "downloads it); set TIKTOKEN_CACHE_DIR to a folder holding it"
            )
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base")
        enc.encode_ordinary("warm up")
        return enc, "tiktoken cl100k_base"
    except Exception as exc:  # noqa: BLE001 - any failure means: use the estimate
        return None, f"tiktoken failed to load ({type(exc).__name__}: {exc})"


_ENCODER = _EncoderHolder()


def tokenizer_name() -> str:
    """``"tiktoken:cl100k_base"`` or ``"estimate"``: the counter in use in this process."""
    return "tiktoken:cl100k_base" if _ENCODER.get() is not None else "estimate"


# the ASCII characters str.split() splits on, besides the space
_ASCII_BREAKS = ("\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def collapse_whitespace(text: str) -> str:
    """Replace every run of whitespace (including line breaks) by one space; strip ends."""
    if (
        type(text) is str
        and text.isascii()
        and text[:1] != " "
        and text[-1:] != " "
        and "  " not in text
    ):
        for c in _ASCII_BREAKS:
            if c in text:
                break
        else:  # already collapsed (the common case): no split and join
            return text
    return " ".join(text.split())


def _estimate_unit_cost(m: re.Match[str]) -> int:
    if m.group("cjk") is not None:
        return 1
    return (len(m.group()) + 3) // 4


def _word_cost(word: str) -> int:
    """Estimated tokens of one whitespace-free run (a word, maybe with CJK inside)."""
    if word.isascii() or _CJK_RE.search(word) is None:
        return (len(word) + 3) // 4
    return sum(_estimate_unit_cost(m) for m in _UNIT_RE.finditer(word))


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` (tiktoken ``cl100k_base`` or the documented estimate)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    enc = _ENCODER.get()
    if enc is not None:
        return len(enc.encode_ordinary(text))
    return sum(_word_cost(w) for w in text.split())


def _collapsed_prefix(text: str, limit_chars: int) -> tuple[str, bool]:
    """Whitespace-collapsed text, bounded to about ``limit_chars`` characters.

    Returns ``(prefix, cut)``; ``cut`` tells whether text was left out.
    """
    if len(text) <= limit_chars:
        return collapse_whitespace(text), False
    parts: list[str] = []
    total = 0
    for m in _SPACE_RUN_RE.finditer(text):
        word = m.group()
        if total + len(word) >= limit_chars:
            parts.append(word[: max(0, limit_chars - total)])
            return " ".join(parts), True
        parts.append(word)
        total += len(word) + 1
    return " ".join(parts), False


def _decode_prefix(data: bytes) -> str:
    """Decode UTF-8 bytes, dropping a trailing partial character (at most 3 bytes)."""
    for cut in range(4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="ignore")


def _truncate_estimate(text: str, max_tokens: int) -> str:
    """Cut whitespace-collapsed ``text`` to ``max_tokens`` estimated tokens."""
    out: list[str] = []
    budget = max_tokens
    for word in text.split(" "):
        cost = _word_cost(word)
        if cost <= budget:
            out.append(word)
            budget -= cost
            continue
        if word.isascii() or _CJK_RE.search(word) is None:
            if not out:  # one word longer than the whole budget: cut by characters
                out.append(word[: 4 * budget])
            break
        # CJK inside the word: keep the units (characters, glued words) that fit
        end = 0
        for m in _UNIT_RE.finditer(word):
            c = _estimate_unit_cost(m)
            if c > budget:
                if end == 0 and not out:
                    end = len(m.group()[: 4 * budget])
                break
            budget -= c
            end = m.end()
        if end:
            out.append(word[:end])
        break
    return " ".join(out)


def truncate_tokens(text: str, max_tokens: int | None) -> str:
    """Collapse whitespace and keep at most ``max_tokens`` tokens of ``text``.

    ``None`` keeps everything (whitespace is still collapsed); ``0`` returns ``""``.
    Never cuts inside a character; see the module docstring for the cut rules.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if max_tokens is None:
        return collapse_whitespace(text)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(f"max_tokens must be an int or None, got {type(max_tokens).__name__}")
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
    if max_tokens == 0:
        return ""
    enc = _ENCODER.get()
    if enc is None:
        # every estimated unit costs at least 1 token and at most its length; an ASCII
        # word of L characters costs ceil(L / 4) and words are space-separated, so
        # ASCII text of L characters costs at most (L + 1) / 2: no cut needed below that
        if len(text) <= max_tokens or (len(text) < 2 * max_tokens and text.isascii()):
            return collapse_whitespace(text)
        # a kept unit of length L costs >= L/4 tokens: 4 chars per token plus a space
        prefix, _ = _collapsed_prefix(text, 5 * max_tokens + 8)
        return _truncate_estimate(prefix, max_tokens)
    # a cl100k token is rarely longer than 64 characters; bound the work on huge texts
    prefix, _ = _collapsed_prefix(text, 64 * max_tokens + 64)
    tokens = enc.encode_ordinary(prefix)
    if len(tokens) <= max_tokens:
        return prefix
    return _decode_prefix(enc.decode_bytes(tokens[:max_tokens])).rstrip()


def sanitize_passage(text: str) -> str:
    """Make a passage safe to show in a ranking prompt.

    Rewrites bracketed ids inside the passage (``[3]``, ``[B]``) to ``(3)``/``(B)`` so
    the passage cannot forge the identifiers the model is asked to output (RankGPT's
    trick), and collapses whitespace (line breaks become spaces).
    """
    if "[" in text or "\uff3b" in text or "\u3010" in text or "\u3014" in text:
        text = _FORGED_ID_RE.sub(r"(\1)", text)
    return collapse_whitespace(text)


_CACHE_MAX_CHARS = 16_384  # larger passages are not kept alive by the cache


def _prepare(text: str, max_tokens: int | None) -> str:
    if max_tokens is not None and len(text) > _CACHE_MAX_CHARS:
        # cut first (bounded work), sanitise the short result, cut again (the rewrite
        # may change the token count slightly)
        return truncate_tokens(sanitize_passage(truncate_tokens(text, max_tokens)), max_tokens)
    return truncate_tokens(sanitize_passage(text), max_tokens)


@lru_cache(maxsize=4096)
def _prepare_cached(text: str, max_tokens: int | None) -> str:
    return _prepare(text, max_tokens)


def prepare_passage(text: str, max_tokens: int | None) -> str:
    """:func:`sanitize_passage` then :func:`truncate_tokens`.

    Results for passages up to 16k characters are cached per process (overlapping
    windows show the same passages repeatedly); longer ones are cut first, then
    sanitised, and not cached.
    """
    if len(text) > _CACHE_MAX_CHARS:
        return _prepare(text, max_tokens)
    return _prepare_cached(text, max_tokens)


def clear_passage_cache() -> None:
    """Empty the per-process cache of :func:`prepare_passage`."""
    _prepare_cached.cache_clear()
