"""Reading sub-questions out of an LLM answer, and when two questions are the same.

Two questions are the same when :func:`question_key` gives the same string: Unicode
NFC, runs of whitespace collapsed, ends stripped, and the final ``?``/``.``/``!``
dropped ("What is C ?" = "What is C?" = "What is C"). Nothing else is touched:
punctuation and operators inside the question carry meaning ("What is C++?" is not
"What is C?", "1+1" is not "1-1"), and so does case ("US" is not "us"). The
decomposer's cache and the de-duplication of sub-questions both use this key.

Sub-questions are read one per line, or one per numbered item when a line holds a
numbered list ("1. What ...? 2. Who ...?"); a line is never cut at a question mark,
so a quoted title ("Who hosted Who Wants to Be a Millionaire? in 2000?") survives.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["parse_subquestions", "dedupe_subquestions", "question_key", "subquestion_items"]

_WH_START = re.compile(
    r"^(what|who|whom|whose|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
    r"should|would|will|has|have|had|in\s+which|on\s+which|at\s+which|from\s+which|to\s+which|"
    r"name|list|find|identify)\b",
    re.IGNORECASE,
)
_MARKER = re.compile(
    r"^\s*(?:"
    r"[-*\u2022\u00b7\u2013\u2014>]+"  # bullets
    r"|\(?\d{1,2}\s*[.):\]]"  # 1. 1) (1) 1:
    r"|(?-i:\(?[a-h][.)])(?=\s)"  # a) b.
    r"|\[\d{1,2}\]"  # [1]
    r"|(?:sub[- ]?questions?|sub[- ]?quer(?:y|ies)|question|step|query)\s*\d{0,2}\s*[:.)]"
    r"|q\d{0,2}\s*[:.)]"  # Q1: Q:
    r")\s*",
    re.IGNORECASE,
)
#: A numbered item inside a line: "1. ", "(2) ", "3) ".
_INLINE_ITEM = re.compile(r"(?:^|(?<=\s))\(?(\d{1,2})[.)]\s")
_CHATTY = re.compile(
    r"^(sure|okay|ok|certainly|of course|here|these|this|the (?:following|sub-?questions?)|"
    r"note|i (?:would|will|can|have)|let me|answer|explanation)\b",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```(?:json|text|markdown)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_JSON_KEYS = (
    "sub_questions", "subquestions", "sub-questions", "sub_queries", "subqueries",
    "sub-queries", "questions", "queries", "decomposition",
)
_FINAL_MARK = "?.!\uff1f\u3002\uff01"


def question_key(text: str) -> str:
    """The comparison form of a question (see the module docs): only whitespace, Unicode
    composition and the final question mark / full stop are normalised."""
    s = " ".join(unicodedata.normalize("NFC", text).split())
    if s and s[-1] in _FINAL_MARK:
        s = s[:-1].rstrip()
    return s


def _clean(item: str) -> str:
    s = item.strip()
    for _ in range(3):  # markers may be nested ("1. - **Q1:** ...")
        s = s.strip().strip("*_`").strip()
        new = _MARKER.sub("", s, count=1)
        if new == s:
            break
        s = new
    s = s.strip().strip("*_`").strip()
    if len(s) >= 2 and s[0] in "\"'\u201c\u2018" and s[-1] in "\"'\u201d\u2019":
        s = s[1:-1].strip()
    return " ".join(s.split())


def _split_items(line: str) -> list[str]:
    """Cut a line holding a numbered list ("Here: 1. What A? 2. Who B?") into its items.

    Only a run numbered 1, 2, 3, ... counts, and an item after the first must follow
    the end of a sentence (``?``, ``.``, ``!``, ``;``, ``:``), so "the 2. Bundesliga"
    or a title with a question mark never cuts a line.
    """
    cuts: list[int] = []
    for m in _INLINE_ITEM.finditer(line):
        if int(m.group(1)) != len(cuts) + 1:
            continue
        if cuts:
            i = m.start() - 1
            while i > 0 and line[i].isspace():  # the whitespace before this item only
                i -= 1
            if line[i] not in "?.!;:":
                continue
        cuts.append(m.start())
    if len(cuts) < 2:
        return [line]
    bounds = [0, *cuts] if cuts[0] > 0 else cuts
    return [line[a:b] for a, b in zip(bounds, [*bounds[1:], len(line)])]


def _from_json(text: str) -> list[str] | None:
    """Items from a JSON answer, or ``None`` when the text holds no usable JSON."""
    for opener, closer in (("[", "]"), ("{", "}")):
        start = text.find(opener)
        end = text.rfind(closer)
        if start < 0 or end <= start:
            continue
        try:
            data = json.loads(text[start : end + 1])
        except (ValueError, RecursionError):
            continue
        items = _json_items(data)
        if items is not None:
            return items
    return None


def _json_items(data: Any) -> list[str] | None:
    if isinstance(data, Mapping):
        lowered = {str(k).lower(): v for k, v in data.items()}
        for key in _JSON_KEYS:
            if key in lowered:
                return _json_items(lowered[key])
        return None
    if isinstance(data, list):
        out: list[str] = []
        for item in data:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, Mapping):
                for key in ("question", "sub_question", "subquestion", "query", "text"):
                    if isinstance(item.get(key), str):
                        out.append(item[key])
                        break
        return out
    return None


def _from_lines(body: str) -> list[str]:
    """Lines (or numbered items) with a question mark; else list items; else lines that
    start like a question. Preambles ("Sure! Here they are:") are dropped."""
    with_q: list[str] = []
    marked: list[str] = []
    wh: list[str] = []
    for line in body.splitlines():
        for part in _split_items(line.strip()):
            content = _clean(part)
            if _CHATTY.match(content) and ":" in content:
                content = _clean(content.split(":", 1)[1])  # "Here it is: 1. What ...?"
            if not content or _CHATTY.match(content):
                continue
            if "?" in content:
                with_q.append(content)
            elif content.endswith(":"):
                continue
            elif _MARKER.match(part):
                marked.append(content)
            elif _WH_START.match(content):
                wh.append(content)
    return with_q or marked or wh


def subquestion_items(text: str) -> list[str]:
    """Every candidate sub-question in an LLM answer, cleaned, in order (no de-duplication,
    no cap). ``[]`` when nothing usable is found; never raises."""
    if not isinstance(text, str) or not text.strip():
        return []
    fenced = _FENCE.findall(text)
    body = "\n".join(fenced) if fenced else text
    items = _from_json(body)
    if items is None:
        items = _from_lines(body)
    return [c for c in (_clean(i) for i in items) if len(c) >= 3]


def dedupe_subquestions(
    items: Sequence[str],
    *,
    question: str | None = None,
    max_subquestions: int | None = None,
) -> list[str]:
    """Drop blanks, repeats of ``question`` and of each other (by :func:`question_key`);
    keep order and the first spelling; cut to ``max_subquestions``."""
    seen: set[str] = set()
    if question is not None:
        seen.add(question_key(question))
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        s = " ".join(item.split())
        key = question_key(s)
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(s)
        if max_subquestions is not None and len(out) >= max_subquestions:
            break
    return out


def parse_subquestions(
    text: str,
    *,
    question: str | None = None,
    max_subquestions: int | None = 5,
) -> list[str]:
    """Read sub-questions out of an LLM answer; never raises on malformed text.

    Understands JSON (a list of strings or of ``{"question": ...}`` objects, or an
    object with a ``sub_questions`` / ``questions`` / ``queries`` key), numbered and
    bulleted lists (one item per line, or several numbered items on one line),
    ``Q1:``/``Sub-question 1:`` labels, code fences, markdown emphasis and chatty
    preambles. Lines containing a ``?`` are preferred; without any, list items and
    lines that start like a question are kept. The result is de-duplicated (see
    :func:`question_key`), the original ``question`` is removed from it, and it is cut
    to ``max_subquestions``. Returns ``[]`` when nothing usable is found.
    """
    return dedupe_subquestions(
        subquestion_items(text), question=question, max_subquestions=max_subquestions
    )
