"""How :class:`~rerank_rag.eval.SimulatedLLM` reads a prompt: which known passages it
shows, in order and with the label shown before each, and which judged query it is about.

Passages are matched by a normalised prefix (lower-case ASCII letters and digits only, so
whitespace, punctuation, mojibake and in-passage ``[3]`` -> ``(3)`` rewriting do not
matter); the label is the ``[3]``, ``[C]``, ``Snippet 3`` or ``Passage C`` just before a
passage, else its 1-based position. Without a corpus (a relevance function), passages are
read from lines shaped ``[label] text``. The query is the judged query whose text appears
in the prompt, preferring the one that judged the passages found.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PromptReader", "normalise"]

_ALNUM_RE = re.compile(r"[A-Za-z0-9]+")
_LABEL_BEFORE_RE = re.compile(
    r"(?:\[\s*([A-Za-z]|\d{1,4})\s*\]|\b(?:passage|snippet|document|doc)\s*#?\s*([A-Za-z]|\d{1,4})\b)"
    r"[^A-Za-z0-9\[\]]{0,12}$",
    re.I,
)
_LABEL_LINE_RE = re.compile(r"(?m)^[ \t]*\[\s*([A-Za-z]|\d{1,4})\s*\][ \t]+(\S.*)$")
_QUERY_LINE_RE = re.compile(r"(?im)^\s*(?:search\s+)?query\s*:\s*(.+)$")


def normalise(text: str) -> str:
    """Lower-case ASCII letters and digits only (what passage matching compares)."""
    return "".join(_ALNUM_RE.findall(text)).lower()


@dataclass
class _Found:
    key: str  # docid (corpus mode) or passage text (function mode)
    label: str
    text: str = ""
    bracketed: bool = True


class PromptReader:
    """Finds known passages and the judged query in prompts (see the module docstring).

    Args:
        corpus: ``{docid: text}`` of every passage that may be shown (``None``: read
            ``[label] text`` lines instead).
        queries: ``{qid: query text}``.
        qrels: ``{qid: {docid: grade}}``, to tell which query judged the passages found.
        prefix_chars: normalised prefix length used to look passages up.
        min_match_chars: a passage counts as shown only if at least this many normalised
            characters of it (or all of it) appear.
        keep_text: set ``_Found.text`` to the passage's raw text (a relevance function
            needs it; qrels do not).
    """

    def __init__(
        self,
        corpus: Mapping[str, str] | None,
        queries: Mapping[str, str] | None,
        qrels: Mapping[str, Mapping[str, int]],
        *,
        prefix_chars: int,
        min_match_chars: int,
        keep_text: bool,
    ) -> None:
        self.prefix_chars = prefix_chars
        self.min_match_chars = max(min_match_chars, prefix_chars)
        self._corpus_norm: dict[str, str] = {}
        self._corpus_raw: dict[str, str] = {str(d): t for d, t in corpus.items()} if corpus is not None and keep_text else {}
        self._prefix_index: dict[str, list[str]] = {}
        for docid, text in (corpus or {}).items():
            norm = normalise(text)
            if not norm:
                continue
            docid = str(docid)
            self._corpus_norm[docid] = norm
            self._prefix_index.setdefault(norm[: self.prefix_chars], []).append(docid)
        self._short = sorted({len(k) for k in self._prefix_index if len(k) < self.prefix_chars})
        #: ``True`` when passages are read from ``[label] text`` lines (no corpus)
        self.by_labels = keep_text and not self._corpus_norm
        self.queries_norm = {str(q): normalise(t) for q, t in (queries or {}).items()}
        self._query_grams, self._short_queries = _query_index(self.queries_norm)
        self._query_rank = {q: i for i, q in enumerate(self.queries_norm)}
        self._has_qrels = bool(qrels)
        #: ``{docid: [qid, ...]}``: the queries that judged each passage
        self.doc_qids: dict[str, list[str]] = {}
        for qid, j in qrels.items():
            for d in j:
                self.doc_qids.setdefault(d, []).append(qid)

    def find(self, prompt: str) -> tuple[list[_Found], str | None, str]:
        if self.by_labels:
            return self._find_by_labels(prompt)
        chunks: list[tuple[int, int, int]] = []  # (norm_start, raw_start, length)
        parts: list[str] = []
        n = 0
        for mt in _ALNUM_RE.finditer(prompt):
            s = mt.group(0)
            chunks.append((n, mt.start(), len(s)))
            parts.append(s)
            n += len(s)
        norm = "".join(parts).lower()
        norm_starts = [c[0] for c in chunks]

        def raw_pos(i: int) -> int:
            j = bisect.bisect_right(norm_starts, i) - 1
            ns, rs, _ = chunks[j]
            return rs + (i - ns)

        # query texts shown in the prompt: a passage that merely starts like the query
        # must not be "found" where the query is printed
        present = self.queries_in(norm)
        query_norms = [self.queries_norm[q] for q in present]
        query_text = ""
        mq = _QUERY_LINE_RE.search(prompt)
        if mq:
            query_text = mq.group(1).strip()
            qn = normalise(query_text)
            if qn:
                query_norms.append(qn)

        found: list[_Found] = []
        used: set[str] = set()
        L = self.prefix_chars
        i = 0
        prev_raw_end = 0
        limit = len(norm)
        index = self._prefix_index
        while i < limit:
            docid = None
            cands = index.get(norm[i : i + L])
            if cands is None and self._short:
                for sl in self._short:  # passages shorter than the prefix length
                    cands = index.get(norm[i : i + sl])
                    if cands is not None:
                        break
            if cands is not None:
                docid, matched = self._best_match(cands, norm, i, used)
                if docid is not None and matched < len(self._corpus_norm[docid]):
                    seg = norm[i : i + matched]
                    if any(seg in qn for qn in query_norms):
                        docid = None  # this is the query, not the passage
            if docid is None:
                i += 1
                continue
            start_raw = raw_pos(i)
            before = prompt[max(prev_raw_end, start_raw - 80) : start_raw]
            mt = _LABEL_BEFORE_RE.search(before)
            label = (mt.group(1) or mt.group(2)) if mt else str(len(found) + 1)
            found.append(_Found(key=docid, label=label, bracketed=bool(mt and mt.group(1))))
            used.add(docid)
            i += matched
            prev_raw_end = raw_pos(i - 1) + 1
        qid = self._which_query(present, [f.key for f in found]) if self._has_qrels else None
        if self._corpus_raw:
            for f in found:
                f.text = self._corpus_raw.get(f.key, "")
        return found, qid, query_text

    def queries_in(self, norm: str) -> list[str]:
        """The queries (of 8+ characters) whose text occurs in ``norm``, in input order:
        ``[q for q, t in queries if len(t) >= 8 and t in norm]``, without testing every
        query (that cost grew with the query set: ~6 ms a call at 2,000 queries). A
        query of ``_GRAM + _STRIDE - 1`` or more characters that occurs in ``norm`` covers a
        window ``norm[p:p + _GRAM]`` at some ``p`` divisible by ``_STRIDE``, which is one
        of its indexed grams; only the queries found that way (and the short ones) are
        tested."""
        grams = self._query_grams
        hit: set[str] = set(self._short_queries)
        for p in range(0, len(norm) - _GRAM + 1, _STRIDE):
            qs = grams.get(norm[p : p + _GRAM])
            if qs is not None:
                hit.update(qs)
        if not hit:
            return []
        texts = self.queries_norm
        return [q for q in sorted(hit, key=self._query_rank.__getitem__) if texts[q] in norm]

    def _best_match(self, cands: list[str], norm: str, i: int, used: set[str]) -> tuple[str | None, int]:
        """The candidate sharing the longest prefix with the prompt at ``i``; among equal
        matches (duplicate passages), one not yet found in this prompt, then the one whose
        length is closest to the match."""
        best, best_key, best_len = None, None, 0
        for d in cands:
            text = self._corpus_norm[d]
            k = _common_prefix_len(text, norm, i)
            if k < min(self.min_match_chars, len(text)):
                continue
            key = (k, d not in used, -abs(len(text) - k))
            if best_key is None or key > best_key:
                best, best_key, best_len = d, key, k
        return best, best_len

    def _which_query(self, present: Sequence[str], docids: Sequence[str]) -> str | None:
        votes: dict[str, int] = {}
        for d in docids:
            for q in self.doc_qids.get(d, ()):
                votes[q] = votes.get(q, 0) + 1
        if present:
            return max(present, key=lambda q: (votes.get(q, 0), len(self.queries_norm[q])))
        if votes:
            return max(votes, key=lambda q: votes[q])
        return None

    def _find_by_labels(self, prompt: str) -> tuple[list[_Found], str | None, str]:
        found = [_Found(key=m.group(2).strip(), label=m.group(1), text=m.group(2).strip()) for m in _LABEL_LINE_RE.finditer(prompt)]
        mq = _QUERY_LINE_RE.search(prompt)
        return found, None, (mq.group(1).strip() if mq else "")


_GRAM, _STRIDE = 8, 8


def _query_index(queries_norm: dict[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """``{gram: [qid, ...]}`` of the first ``_STRIDE`` grams of every query long enough,
    and the queries of 8 to ``_GRAM + _STRIDE - 2`` characters (tested one by one)."""
    grams: dict[str, list[str]] = {}
    short: list[str] = []
    for q, t in queries_norm.items():
        if len(t) < 8:
            continue
        if len(t) < _GRAM + _STRIDE - 1:
            short.append(q)
            continue
        for g in dict.fromkeys(t[j : j + _GRAM] for j in range(_STRIDE)):
            grams.setdefault(g, []).append(q)
    return grams, short


def _common_prefix_len(a: str, b: str, offset: int) -> int:
    """Length of the common prefix of ``a`` and ``b[offset:]`` (binary search on slices)."""
    hi = min(len(a), len(b) - offset)
    if a[:hi] == b[offset : offset + hi]:
        return hi
    lo = 0  # invariant: a[:lo] matches, a[:hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[offset : offset + mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _flatten(messages: Sequence[Any]) -> str:
    parts = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts.append("".join(str(p.get("text", "")) for p in c if isinstance(p, dict)))
    return "\n".join(parts)


def _last_user(messages: Sequence[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return str(m["content"])
    return ""
