"""Read a ranking (a permutation of window ids) out of whatever an LLM answered.

:func:`parse_permutation` never raises on malformed output (unless ``strict=True``).
What it accepts, in order of preference (the first rule that finds ids wins):

1. Bracketed ids: ``[3] > [1] > [2]``, also inside chatty sentences ("Here are the 20
   passages ranked: [3] > [1]": bare numbers are ignored when bracketed ids exist).
2. JSON-like lists: ``[3, 1, 2]``, ``{"ranking": ["3", "1"]}``.
3. Labelled ids: ``Passage 3``, ``Snippet 3``, ``Document #3``, ``doc 3`` (used when
   they give at least as many ids as rule 4; "I ranked 20 documents: 3, 1, 2" is read
   by rule 4).
4. Bare numbers: ``3, 1, 2``, ``3 > 1 > 2``, ``3 1 2``, a numbered list ``1. 3\\n2. 1``.
   When a chain of numbers separated by ``>``, commas or spaces exists, only the
   longest chain is read (so "the 20 passages ranked: 3 > 1 > 2" gives 3, 1, 2);
   otherwise every number is read.

Letter ids (``id_style="alpha"``: A = 1, B = 2, ...) are read the same way: ``[B] > [A]``,
``["B", "A"]``, ``Passage B``, ``B > A > C``, and a single letter after an answer label
(``Answer: B``, ``The answer is B.``, as numeric mode reads ``Answer: 2``). An alpha
answer that contains only numeric ids is read as numbers (and marked repaired).

Before that, reasoning is removed: ``<think>...</think>`` blocks, an unclosed leading
block (everything up to ``</think>``, for chat templates that open the block in the
prompt) and an unclosed trailing ``<think>`` (the answer was cut off while thinking).
An answer still longer than :data:`MAX_ANSWER_CHARS` (64K characters) is read from its
first and last 32K characters (marked repaired). Every step is linear in the length of
the answer (a 1 MB adversarial answer parses in milliseconds).
Look-alike digits (fullwidth, superscript, subscript, circled, parenthesized,
mathematical, Arabic-Indic and other Unicode decimal digits) and fullwidth brackets are
mapped to ASCII first.

Ids are 1-based in the text and 0-based in the result. Duplicates keep their first
occurrence; ids out of range (including 0) are dropped. The result lists only the ids
the model gave; :meth:`~rerank_rag.WindowParse.full_order` appends the others in their
previous order. ``repaired`` is true whenever something had to be fixed: a duplicate,
an out-of-range or unreadable id, missing ids (when ``expect_all``), or a fallback rule.

An answer saying that nothing is relevant (``NO_RELEVANT_SNIPPETS``, ``NO_RELEVANT_...``,
"no relevant passages") returns an empty list that is *not* repaired, unless it also
holds ids found by rules 1-4 other than "every bare number" ("[2] is the only one; no
relevant other passage" gives [2]; "no relevant passage among the 20" gives nothing).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import lru_cache

from .._errors import ParseError
from .._protocols import WindowParse

__all__ = ["parse_permutation", "fold_lookalikes", "strip_reasoning", "IdStyle"]

IdStyle = str  # "numeric" | "alpha"

_MAX_ID_DIGITS = 6  # longer digit runs are never valid ids (and int() stays cheap)

# every reasoning tag, open (group 1: name) or close (group 2: name), in one linear scan
_THINK_NAMES = ("think", "thinking", "reasoning")
_THINK_OPEN_RE = re.compile(r"<(?:think|thinking|reasoning)>", re.I)
_THINK_CLOSE_RE = re.compile(r"</(?:think|thinking|reasoning)\s*+>", re.I)
_OPEN_RES = {n: re.compile(rf"<{n}>", re.I) for n in _THINK_NAMES}
_CLOSE_RES = {n: re.compile(rf"</{n}\s*+>", re.I) for n in _THINK_NAMES}
# greedy ".*" then backtracking: the *last* closing tag of a region, found by the engine
_LAST_CLOSE_RE = re.compile(r"(?s:.*)(</(?:think|thinking|reasoning)\s*+>)", re.I)
_LAST_CLOSE_OF = {n: re.compile(rf"(?s:.*)(</{n}\s*+>)", re.I) for n in _THINK_NAMES}

#: Longer answers (after removing reasoning) are read from their first and last halves
#: of this many characters: a ranking of any window fits many times over, and every
#: rule then runs in bounded time whatever the model sent.
MAX_ANSWER_CHARS = 65_536

# Linear-time rules for every pattern below (answers may be megabytes of adversarial
# text): no two adjacent quantifiers that can match the same characters unless the
# first is possessive (``*+``, ``++``), so a failed match never retries the ways to split
# a run of spaces or digits between them.
_NO_RELEVANT_RE = re.compile(
    r"NO[_\s-]*+RELEVANT(?:[_\s-]*+(?:SNIPPETS?|PASSAGES?|DOCUMENTS?|DOCS?|RESULTS?|CANDIDATES?|IDS?))?",
    re.I,
)

# numeric mode
_BRACKET_NUM_RE = re.compile(r"\[\s*+(\d++)\s*+\]")
_JSON_LIST_RE = re.compile(r"\[\s*+[\"']?\d++[\"']?\s*+(?:,\s*+[\"']?\d++[\"']?\s*+)++\]")
_LABEL = r"(?:passage|snippet|document|doc|candidate|item|identifier|id)s?"
_LABEL_NUM_RE = re.compile(
    rf"\b{_LABEL}\s*+:?\s*+(?:#|no\.?|number|nr\.?)?\s*+[(\[]?\s*+(\d++)", re.I
)
_ENUM_LINE_RE = re.compile(r"^[ \t]*+(\d++)[ \t]*+[.):][ \t]++(?=\S)", re.M)
# possessive quantifiers and the look-behind keep this linear on long digit runs
_NUM_CHAIN_RE = re.compile(
    r"(?<!\d)\d++(?:(?:[ \t]*+(?:>>|>|,|;|\||->|=>|\u2192|\u00bb|\u227b)[ \t]*+|\s++)\d++)+"
)
_DIGITS_RE = re.compile(r"\d+")

# alpha mode
_BRACKET_ALPHA_RE = re.compile(r"\[\s*+([A-Za-z])\s*+\]")
_JSON_ALPHA_RE = re.compile(r"\[\s*+[\"']([A-Za-z])[\"'](?:\s*+,\s*+[\"'][A-Za-z][\"'])*+\s*+\]")
_QUOTED_ALPHA_RE = re.compile(r"[\"']([A-Za-z])[\"']")
_LABEL_ALPHA_RE = re.compile(rf"\b(?i:{_LABEL})\s*+(?:#\s*+)?[(\[]?\s*+([A-Z])\b")
_ALPHA_ONLY_RE = re.compile(
    r"\s*+[A-Za-z](?:(?:\s*+(?:>>|>|,|;|\||->|=>|\u2192|\u00bb|\u227b)\s*+|\s++)[A-Za-z])*+"
    r"\s*+[.!]?\s*+"
)
_ALPHA_CHAIN_RE = re.compile(
    r"\b[A-Z]\b(?:\s*+(?:>>|>|,|;|\||->|=>|\u2192|\u00bb|\u227b)\s*+\b[A-Z]\b)++"
)
# "Answer: B", "The answer is B.", "Ranking: (C)": one letter after an answer label
_ANSWER_ALPHA_RE = re.compile(
    r"\b(?i:answer|ranking|result|output|choice)(?:\s++(?i:is))?\s*+[:=-]?\s*+[(\[]?\s*+([A-Z])\b"
)
_ALPHA_RE = re.compile(r"[A-Za-z]")

_BRACKETS = {
    "\u3010": "[",
    "\u3011": "]",
    "\u3014": "[",
    "\u3015": "]",
    "\u301a": "[",
    "\u301b": "]",
}


@lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    """ASCII stand-in for a look-alike digit, letter or bracket; else the char itself."""
    cat = unicodedata.category(c)
    if cat == "Nd":  # fullwidth, Arabic-Indic, Devanagari, mathematical digits, ...
        return str(unicodedata.decimal(c))
    if cat == "No":
        name = unicodedata.name(c, "")
        if "SUPERSCRIPT" in name or "SUBSCRIPT" in name:
            d = unicodedata.digit(c, None)
            return c if d is None else str(d)
        v = unicodedata.numeric(c, None)
        if (
            v is not None
            and float(v).is_integer()
            and 0 <= v <= 100
            and "FRACTION" not in name
            and "ROMAN" not in name
        ):
            return f" {int(v)} "  # circled / parenthesized / "1." forms: a number on its own
        return c
    if c in _BRACKETS:
        return _BRACKETS[c]
    nf = unicodedata.normalize("NFKC", c)
    if len(nf) == 1 and nf.isascii():
        if nf.isalpha():
            name = unicodedata.name(c, "")
            if "CIRCLED" in name or "PARENTHESIZED" in name or "SQUARED" in name:
                return f" {nf} "
            return nf
        if nf in "[](){}<>,;:.|\"'#-":
            return nf
    if c in "\u2192\u00bb\u227b\u203a\u276f":  # arrows / "succeeds" used as separators
        return ">"
    if cat == "Zs":
        return " "
    return c


def fold_lookalikes(text: str) -> str:
    """Map look-alike digits, letters and brackets to ASCII (fast path for ASCII text).

    Each distinct non-ASCII character is looked up once; the text is then mapped in one
    ``str.translate`` pass (linear, no Python call per character).
    """
    if text.isascii():
        return text
    table = {}
    for c in set(text):
        if not c.isascii():
            folded = _fold_char(c)
            if folded != c:
                table[ord(c)] = folded
    return text.translate(table) if table else text


def strip_reasoning(text: str) -> str:
    """Remove ``<think>`` blocks (closed, unclosed leading, unclosed trailing).

    Tags are ``<think>``, ``<thinking>`` and ``<reasoning>`` (any case; a closing tag may
    have spaces before ``>``). In order:

    1. every closed block, from an opening tag to the next closing tag of the same
       name, is replaced by a space (scanning left to right; blocks do not nest);
    2. if a closing tag is left (the block was opened in the prompt), only the text
       after the last one is kept;
    3. if an opening tag is left (the answer was cut off while thinking), the text
       from the first one on is dropped.

    Linear in the length whatever the tags: the text between blocks is scanned by the
    regex engine, and an opening tag with no closing tag of its name after it is never
    searched past (a megabyte of unclosed or mismatched tags takes milliseconds).
    """
    if "<" not in text:
        return text
    if _THINK_CLOSE_RE.search(text) is None:  # no block, nothing opened in the prompt
        m = _THINK_OPEN_RE.search(text)
        return text if m is None else text[: m.start()]
    # where the last closing tag of each name starts (-1: none): an opening tag of that
    # name before it has a block; one after it never will
    last_close = {name: _last_close_span(text, name) for name in _THINK_NAMES}
    live = frozenset(name for name, (at, _) in last_close.items() if at >= 0)
    removed: list[tuple[int, int]] = []  # [start, end) of each closed block
    lo = 0  # end of the last closing tag left outside the blocks
    pos = 0
    while True:
        m = _open_re(live).search(text, pos) if live else None
        region_end = m.start() if m is not None else len(text)
        c = _LAST_CLOSE_RE.match(text, pos, region_end) if region_end > pos else None
        if c is not None:
            lo = c.end()
        if m is None:
            break
        name = m.group(1).lower()
        if last_close[name][0] < m.end():  # no closing tag of its name after it
            live = live - {name}
            pos = m.end()
            continue
        close = _CLOSE_RES[name].search(text, m.end())
        assert close is not None  # a closing tag of this name starts after m
        removed.append((m.start(), close.end()))
        pos = close.end()
    # the first opening tag after lo outside the removed blocks: an opening tag outside
    # every block is one with no closing tag of its name after it
    hi = len(text)
    starts = [a for a, _ in removed]
    for name in _THINK_NAMES:
        p = max(lo, last_close[name][1])
        while p < hi:
            m = _OPEN_RES[name].search(text, p, hi)
            if m is None:
                break
            i = bisect_right(starts, m.start()) - 1
            if i >= 0 and m.start() < removed[i][1]:  # inside a block
                p = removed[i][1]
                continue
            hi = m.start()
    parts: list[str] = []
    cut = lo
    for a, b in removed:
        if b <= lo or a >= hi:
            continue
        parts.append(text[cut:a])
        parts.append(" ")
        cut = b
    parts.append(text[cut:hi])
    return "".join(parts)


def _last_close_span(text: str, name: str) -> tuple[int, int]:
    """Start and end of the last closing tag ``name`` in ``text``; ``(-1, 0)``: none."""
    m = _LAST_CLOSE_OF[name].match(text)
    return (-1, 0) if m is None else m.span(1)


@lru_cache(maxsize=8)
def _open_re(names: frozenset[str]) -> re.Pattern[str]:
    alts = "|".join(sorted(names, key=len, reverse=True))
    return re.compile(rf"<({alts})>", re.I)


def _strip_enumeration(text: str) -> str:
    """Drop "1. ", "2) " line prefixes when several lines are numbered 1, 2, 3, ..."""
    marks = list(_ENUM_LINE_RE.finditer(text))
    if len(marks) < 2:
        return text
    if [int(m.group(1)) for m in marks] != list(range(1, len(marks) + 1)):
        return text
    return _ENUM_LINE_RE.sub("", text)


def _digits_to_ids(tokens: list[str]) -> list[int]:
    # too-long digit runs become 0 (always out of range) without a costly int()
    return [int(t) if len(t) <= _MAX_ID_DIGITS else 0 for t in tokens]


def _numeric_ids(text: str) -> tuple[list[int], bool]:
    """Ids in numeric mode, and whether only the weakest rule (every bare number) found them."""
    found = _BRACKET_NUM_RE.findall(text)
    if found:
        return _digits_to_ids(found), False
    lists = _JSON_LIST_RE.findall(text)
    if lists:
        return _digits_to_ids([d for lst in lists for d in _DIGITS_RE.findall(lst)]), False
    labelled = _LABEL_NUM_RE.findall(text)
    text = _strip_enumeration(text)
    chain: list[str] = []
    for c in _NUM_CHAIN_RE.findall(text):
        digits = _DIGITS_RE.findall(c)
        if len(digits) > len(chain):  # the first longest chain
            chain = digits
    if labelled and len(labelled) >= len(chain):
        return _digits_to_ids(labelled), False
    if chain:
        return _digits_to_ids(chain), False
    return _digits_to_ids(_DIGITS_RE.findall(text)), True


def _letter_id(c: str) -> int:
    return ord(c.upper()) - 64


def _alpha_ids(text: str) -> tuple[list[int], bool, bool]:
    """Ids in alpha mode, whether the numeric fallback was used, and whether it was weak."""
    found = _BRACKET_ALPHA_RE.findall(text)
    if not found:
        lists = _JSON_ALPHA_RE.findall(text)
        if lists:
            found = [
                c
                for m in _JSON_ALPHA_RE.finditer(text)
                for c in _QUOTED_ALPHA_RE.findall(m.group())
            ]
    if not found:
        found = _LABEL_ALPHA_RE.findall(text)
    if not found and _ALPHA_ONLY_RE.fullmatch(text):
        found = _ALPHA_RE.findall(text)
    if not found:
        chains = _ALPHA_CHAIN_RE.findall(text)
        if chains:
            best = max(chains, key=lambda c: len(_ALPHA_RE.findall(c)))
            found = _ALPHA_RE.findall(best)
    if not found:
        found = _ANSWER_ALPHA_RE.findall(text)[:1]
    if found:
        return [_letter_id(c) for c in found], False, False
    ids, weak = _numeric_ids(text)
    return ids, bool(ids), weak


def _excerpt(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_permutation(
    text: str | None,
    n: int,
    *,
    id_style: IdStyle = "numeric",
    strict: bool = False,
    expect_all: bool = True,
) -> WindowParse:
    """Parse an LLM ranking of ``n`` window ids into 0-based positions.

    Args:
        text: the model's answer (``None`` is treated as empty).
        n: how many passages the window had (valid ids are 1..n, or A..).
        id_style: ``"numeric"`` ([1], [2], ...) or ``"alpha"`` ([A], [B], ...).
        strict: raise :class:`~rerank_rag.ParseError` (with a short excerpt of the
            answer) when no valid id can be read, instead of returning an empty list.
        expect_all: whether the prompt asked for every id (RankGPT) or allowed omitting
            some (relevant-only); with ``True`` missing ids mark the parse repaired.

    Returns:
        :class:`~rerank_rag.WindowParse` with ``listed`` (unique, in range, best first)
        and ``repaired``. Never raises when ``strict`` is false.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if id_style not in ("numeric", "alpha"):
        raise ValueError(f"id_style must be 'numeric' or 'alpha', got {id_style!r}")
    raw = "" if text is None else str(text)
    if n == 0:
        return WindowParse(listed=())
    cleaned = strip_reasoning(raw)
    cut = len(cleaned) > MAX_ANSWER_CHARS
    if cut:  # NUL between the halves: no id, chain or label can span the cut
        half = MAX_ANSWER_CHARS // 2
        cleaned = cleaned[:half] + "\x00" + cleaned[-half:]
    cleaned = fold_lookalikes(cleaned)
    if id_style == "alpha":
        ids, fallback, weak = _alpha_ids(cleaned)
    else:
        (ids, weak), fallback = _numeric_ids(cleaned), False
    if (not ids or weak) and _NO_RELEVANT_RE.search(cleaned):
        # "NO_RELEVANT_SNIPPETS", or "no relevant passage among the 20" (20 is no id)
        return WindowParse(listed=(), repaired=False)
    listed: list[int] = []
    seen: set[int] = set()
    for i in ids:
        if 1 <= i <= n and i not in seen:
            seen.add(i)
            listed.append(i - 1)
    if not listed:
        if strict:
            raise ParseError(
                f"could not read a ranking of {n} {id_style} ids from the LLM answer: "
                f"{_excerpt(raw)!r}"
            )
        return WindowParse(listed=(), repaired=True)
    repaired = cut or fallback or len(listed) != len(ids) or (expect_all and len(listed) < n)
    return WindowParse(listed=tuple(listed), repaired=repaired)
