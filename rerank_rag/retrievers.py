"""First-stage retrievers: an in-memory BM25 index (and, re-exported, the retriever adapter).

:func:`as_retriever` / :class:`Retriever` (defined in :mod:`rerank_rag._retrieval`) turn
any retriever (a callable, a LangChain or LlamaIndex retriever, an object with
``search``) into a uniform ``retrieve(query, k)`` / ``aretrieve(query, k)``.

:class:`BM25Retriever` is a pure-Python BM25 (Lucene variant) over a corpus held in
memory: an inverted index, no dependency. It is meant for demos, tests and evaluation
corpora up to some tens of thousands of passages (indexing 5,183 SciFact abstracts
takes a few seconds; see ``benchmarks/bench_musique.py``).
"""

from __future__ import annotations

import functools
import heapq
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence

from ._retrieval import Retriever, as_retriever
from ._types import Candidate, CandidateLike, as_candidates

__all__ = [
    "BM25Retriever",
    "Retriever",
    "as_retriever",
    "ENGLISH_STOPWORDS",
    "porter_stem",
    "analyze",
]

#: Lucene's classic English stopword list (``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET``).
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the
    their then there these they this to was will with""".split()
)

_TOKEN_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


# --------------------------------------------------------------------------------------
# Porter stemmer (the original 1980 algorithm, as in Lucene's PorterStemFilter)
# --------------------------------------------------------------------------------------


def _is_cons(w: str, i: int) -> bool:
    c = w[i]
    if c in "aeiou":
        return False
    if c == "y":
        return i == 0 or not _is_cons(w, i - 1)
    return True


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem``."""
    n, i, length = 0, 0, len(stem)
    while i < length and _is_cons(stem, i):
        i += 1
    while i < length:
        while i < length and not _is_cons(stem, i):
            i += 1
        if i >= length:
            break
        n += 1
        while i < length and _is_cons(stem, i):
            i += 1
    return n


def _has_vowel(stem: str) -> bool:
    return any(not _is_cons(stem, i) for i in range(len(stem)))


def _double_cons(w: str) -> bool:
    return len(w) >= 2 and w[-1] == w[-2] and _is_cons(w, len(w) - 1)


def _cvc(w: str) -> bool:
    n = len(w)
    return (
        n >= 3
        and _is_cons(w, n - 3)
        and not _is_cons(w, n - 2)
        and _is_cons(w, n - 1)
        and w[-1] not in "wxy"
    )


_STEP2 = sorted(
    {
        "ational": "ate", "tional": "tion", "enci": "ence", "anci": "ance", "izer": "ize",
        "abli": "able", "alli": "al", "entli": "ent", "eli": "e", "ousli": "ous",
        "ization": "ize", "ation": "ate", "ator": "ate", "alism": "al", "iveness": "ive",
        "fulness": "ful", "ousness": "ous", "aliti": "al", "iviti": "ive", "biliti": "ble",
    }.items(),
    key=lambda kv: -len(kv[0]),
)
_STEP3 = sorted(
    {
        "icate": "ic", "ative": "", "alize": "al", "iciti": "ic", "ical": "ic", "ful": "",
        "ness": "",
    }.items(),
    key=lambda kv: -len(kv[0]),
)
_STEP4 = sorted(
    [
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent",
        "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize",
    ],
    key=len,
    reverse=True,
)


def _replace_longest(w: str, rules: Sequence[tuple[str, str]], min_m: int) -> str:
    for suffix, repl in rules:
        if w.endswith(suffix):
            stem = w[: -len(suffix)]
            return stem + repl if _measure(stem) > min_m else w
    return w


@functools.lru_cache(maxsize=200_000)
def porter_stem(word: str) -> str:
    """Stem one lower-case word with the original Porter (1980) algorithm.

    Words of one or two letters, and words containing non-ASCII-letter characters
    (numbers, accented letters), are returned unchanged.
    """
    w = word
    if len(w) <= 2 or not w.isascii() or not w.isalpha():
        return w
    # Step 1a
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies"):
        w = w[:-2]
    elif w.endswith("ss"):
        pass
    elif w.endswith("s"):
        w = w[:-1]
    # Step 1b
    step1b_extra = False
    if w.endswith("eed"):
        if _measure(w[:-3]) > 0:
            w = w[:-1]
    elif w.endswith("ed") and _has_vowel(w[:-2]):
        w, step1b_extra = w[:-2], True
    elif w.endswith("ing") and _has_vowel(w[:-3]):
        w, step1b_extra = w[:-3], True
    if step1b_extra:
        if w.endswith(("at", "bl", "iz")):
            w += "e"
        elif _double_cons(w) and w[-1] not in "lsz":
            w = w[:-1]
        elif _measure(w) == 1 and _cvc(w):
            w += "e"
    # Step 1c
    if w.endswith("y") and _has_vowel(w[:-1]):
        w = w[:-1] + "i"
    # Steps 2 and 3
    w = _replace_longest(w, _STEP2, 0)
    w = _replace_longest(w, _STEP3, 0)
    # Step 4
    for suffix in _STEP4:
        if w.endswith(suffix):
            stem = w[: -len(suffix)]
            if _measure(stem) > 1 and (suffix != "ion" or stem.endswith(("s", "t"))):
                w = stem
            break
    # Step 5a
    if w.endswith("e"):
        stem = w[:-1]
        m = _measure(stem)
        if m > 1 or (m == 1 and not _cvc(stem)):
            w = stem
    # Step 5b
    if _measure(w) > 1 and _double_cons(w) and w.endswith("l"):
        w = w[:-1]
    return w


def light_stem(word: str) -> str:
    """A light English suffix stripper (plural ``-s``/``-es``/``-ies``, ``-ing``, ``-ed``).

    Cheaper and more conservative than Porter; offered as ``stemmer="light"``.
    """
    w = word
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "shes", "ches", "xes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    if w.endswith("ing") and len(w) > 5:
        return w[:-3]
    if w.endswith("ed") and len(w) > 4:
        return w[:-2]
    return w


def analyze(
    text: str,
    *,
    stopwords: Collection[str] | None = ENGLISH_STOPWORDS,
    stemmer: Callable[[str], str] | None = porter_stem,
) -> list[str]:
    """The default BM25 analysis chain.

    Lower-cases, splits into Unicode word tokens (letters/digits, inner apostrophes
    kept), removes the English possessive ``'s``, drops ``stopwords`` and applies
    ``stemmer`` (Porter by default), like Lucene's ``EnglishAnalyzer``.
    """
    out: list[str] = []
    for tok in _TOKEN_RE.findall(text.lower()):
        if tok.endswith(("'s", "\u2019s")):
            tok = tok[:-2]
        if stopwords is not None and tok in stopwords:
            continue
        if stemmer is not None:
            tok = stemmer(tok)
        if tok:
            out.append(tok)
    return out


class _Analyzer:
    """:func:`analyze` with a per-token memo (one dict lookup per token once warm)."""

    def __init__(
        self, stopwords: Collection[str] | None, stemmer: Callable[[str], str] | None
    ) -> None:
        self.stopwords = stopwords
        self.stemmer = stemmer
        self._memo: dict[str, str] = {}

    def _one(self, tok: str) -> str:
        if tok.endswith(("'s", "\u2019s")):
            tok = tok[:-2]
        if self.stopwords is not None and tok in self.stopwords:
            return ""
        if self.stemmer is not None:
            tok = self.stemmer(tok)
        return tok

    def __call__(self, text: str) -> list[str]:
        memo = self._memo
        out: list[str] = []
        append = out.append
        for tok in _TOKEN_RE.findall(text.lower()):
            term = memo.get(tok)
            if term is None:
                term = memo[tok] = self._one(tok)
            if term:
                append(term)
        return out


# --------------------------------------------------------------------------------------
# BM25
# --------------------------------------------------------------------------------------


class BM25Retriever:
    """In-memory BM25 over a fixed corpus (pure Python inverted index).

    Scoring is Lucene's BM25: for each query term *t* (repeated terms count again),
    ``idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` with
    ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``. The score is therefore a
    non-negative, unbounded number, comparable only between passages for the same
    query. Passages that share no term with the query are not returned.

    Args:
        corpus: the passages (``Candidate``, strings, or mappings with ``"text"``).
        k1: BM25 term-frequency saturation (default 0.9, Anserini's default for BEIR).
        b: BM25 length normalisation (default 0.4).
        tokenizer: a function ``text -> list[str]`` replacing the whole analysis chain
            (then ``stopwords`` and ``stemmer`` are ignored).
        stopwords: ``True`` (Lucene's 33-word English list, the default), ``False`` /
            ``None`` for none, or your own collection of lower-case words.
        stemmer: ``"porter"`` (default), ``"light"`` (plural/-ing/-ed stripping),
            ``None`` for none, or a function ``word -> stem``.

    Calling the retriever returns new :class:`~rerank_rag.Candidate` objects: the corpus
    entry's text, id and metadata, with ``score`` set to the BM25 score and
    ``metadata["corpus_index"]`` set to the passage's position in ``corpus``.
    """

    def __init__(
        self,
        corpus: Sequence[CandidateLike] | Iterable[CandidateLike],
        *,
        k1: float = 0.9,
        b: float = 0.4,
        tokenizer: Callable[[str], list[str]] | None = None,
        stopwords: bool | Collection[str] | None = True,
        stemmer: str | Callable[[str], str] | None = "porter",
    ) -> None:
        if k1 < 0:
            raise ValueError(f"k1 must be >= 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"b must be in [0, 1], got {b}")
        self.k1 = float(k1)
        self.b = float(b)
        self._docs: list[Candidate] = as_candidates(list(corpus))
        self._tokenize = self._make_tokenizer(tokenizer, stopwords, stemmer)

        postings: dict[str, list[tuple[int, int]]] = {}
        lengths: list[int] = []
        for i, doc in enumerate(self._docs):
            terms = self._tokenize(doc.text)
            lengths.append(len(terms))
            for term, tf in Counter(terms).items():
                postings.setdefault(term, []).append((i, tf))
        n = len(self._docs)
        avgdl = (sum(lengths) / n) if n else 0.0
        self.avgdl = avgdl
        self._postings = postings
        self._idf = {
            t: math.log(1.0 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()
        }
        # per-document length normaliser k1 * (1 - b + b * dl / avgdl)
        self._norm = [
            self.k1 * (1.0 - self.b + self.b * (dl / avgdl if avgdl else 0.0)) for dl in lengths
        ]

    @staticmethod
    def _make_tokenizer(
        tokenizer: Callable[[str], list[str]] | None,
        stopwords: bool | Collection[str] | None,
        stemmer: str | Callable[[str], str] | None,
    ) -> Callable[[str], list[str]]:
        if tokenizer is not None:
            if not callable(tokenizer):
                raise TypeError("tokenizer must be a callable text -> list[str]")
            return tokenizer
        if stopwords is True:
            stops: Collection[str] | None = ENGLISH_STOPWORDS
        elif stopwords is False or stopwords is None:
            stops = None
        else:
            stops = frozenset(stopwords)
        if stemmer == "porter":
            stem: Callable[[str], str] | None = porter_stem
        elif stemmer == "light":
            stem = light_stem
        elif stemmer is None or callable(stemmer):
            stem = stemmer  # type: ignore[assignment]
        else:
            raise ValueError(f"stemmer must be 'porter', 'light', None or a callable, got {stemmer!r}")
        return _Analyzer(stops, stem)

    def __len__(self) -> int:
        return len(self._docs)

    def __repr__(self) -> str:
        return f"BM25Retriever(n={len(self._docs)}, k1={self.k1}, b={self.b})"

    @property
    def corpus(self) -> list[Candidate]:
        """The indexed passages (normalised to :class:`~rerank_rag.Candidate`)."""
        return list(self._docs)

    def get_scores(self, query: str) -> list[float]:
        """BM25 score of every corpus passage for ``query`` (0.0 where no term matches)."""
        scores = [0.0] * len(self._docs)
        for i, s in self._accumulate(self._check_query(query)).items():
            scores[i] = s
        return scores

    @staticmethod
    def _check_query(query: object) -> str:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if not query.strip():
            raise ValueError("query must be a non-empty string")
        return query

    def _accumulate(self, query: str) -> dict[int, float]:
        acc: dict[int, float] = {}
        k1p1 = self.k1 + 1.0
        norm = self._norm
        for term, qtf in Counter(self._tokenize(query)).items():
            plist = self._postings.get(term)
            if not plist:
                continue
            w = self._idf[term] * qtf
            for i, tf in plist:
                acc[i] = acc.get(i, 0.0) + w * tf * k1p1 / (tf + norm[i])
        return acc

    def search(self, query: str, k: int = 10) -> list[Candidate]:
        """The ``k`` best passages for ``query``, best first (ties: corpus order)."""
        query = self._check_query(query)
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        acc = self._accumulate(query)
        best = heapq.nsmallest(k, acc.items(), key=lambda kv: (-kv[1], kv[0]))
        out: list[Candidate] = []
        for i, s in best:
            doc = self._docs[i]
            meta = dict(doc.metadata)
            meta["corpus_index"] = i
            out.append(Candidate(text=doc.text, id=doc.id, metadata=meta, score=s))
        return out

    __call__ = search
