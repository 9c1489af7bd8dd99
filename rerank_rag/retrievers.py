"""First-stage retrievers: an in-memory BM25 index (and, re-exported, the retriever adapter).

:func:`as_retriever` / :class:`Retriever` (defined in :mod:`rerank_rag._retrieval`) turn
any retriever (a callable, a LangChain or LlamaIndex retriever, an object with
``search``) into a uniform ``retrieve(query, k)`` / ``aretrieve(query, k)``.

:class:`BM25Retriever` is a BM25 (Lucene variant) over a corpus held in memory. With
the ``bm25`` extra (``bm25s`` + PyStemmer) it indexes into a sparse score matrix;
without it, a pure-Python inverted index gives the same results, more slowly
(``benchmarks/bench_bm25.py`` prints both).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable, Sequence

from ._retrieval import Retriever, as_retriever
from ._types import Candidate, CandidateLike, as_candidates

__all__ = [
    "BM25Retriever",
    "Retriever",
    "as_retriever",
    "ENGLISH_STOPWORDS",
    "porter_stem",
    "fast_porter_stemmer",
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

    As in Lucene's ``PorterStemFilter``: words of one or two characters are returned
    unchanged; in longer ones every character other than a vowel (digits and
    accented letters included) counts as a consonant, so ``"1990s"`` stems to
    ``"1990"``. Gives the same stems as Snowball's ``porter`` algorithm (PyStemmer)
    on every word of SciFact (tests/test_retrievers.py).
    """
    w = word
    if len(w) <= 2:
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


def fast_porter_stemmer() -> Callable[[str], str]:
    """The Porter stemmer to use: PyStemmer's C implementation when it is installed
    (extra ``bm25``), otherwise :func:`porter_stem`. Both give the same stems."""
    import importlib.util

    if importlib.util.find_spec("Stemmer") is None:
        return porter_stem
    import Stemmer

    stem_word = Stemmer.Stemmer("porter").stemWord

    def stem(word: str) -> str:
        return word if len(word) <= 2 else stem_word(word)

    return stem


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


_NOT_DROPPED = (-1).__ne__


class _Analyzer:
    """:func:`analyze` with a per-token memo (one dict lookup per token once warm)."""

    def __init__(
        self, stopwords: Collection[str] | None, stemmer: Callable[[str], str] | None
    ) -> None:
        self.stopwords = stopwords
        self.stemmer = stemmer
        self._memo: dict[str, str] = {}
        self._id_memo: dict[str, int] = {}
        self._id_vocab: dict[str, int] | None = None

    def _one(self, tok: str) -> str:
        if tok.endswith(("'s", "\u2019s")):
            tok = tok[:-2]
        if self.stopwords is not None and tok in self.stopwords:
            return ""
        if self.stemmer is not None:
            tok = self.stemmer(tok)
        return tok

    def term_ids(self, text: str, vocab: dict[str, int]) -> list[int]:
        """The terms of ``text`` as ids in ``vocab`` (new terms are added to it)."""
        if self._id_vocab is not vocab:  # ids are only valid for one vocabulary
            self._id_memo, self._id_vocab = {}, vocab
        memo = self._id_memo
        toks = _TOKEN_RE.findall(text.lower())
        ids = list(map(memo.get, toks))  # C-level lookups; None marks a new token
        if None in ids:
            for j, i in enumerate(ids):
                if i is None:
                    tok = toks[j]
                    i = memo.get(tok)
                    if i is None:
                        term = self._one(tok)
                        i = memo[tok] = vocab.setdefault(term, len(vocab)) if term else -1
                    ids[j] = i
        return list(filter(_NOT_DROPPED, ids))  # -1: a stopword or an emptied token

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
    """In-memory BM25 over a fixed corpus.

    Scoring is Lucene's BM25: for each query term *t* (repeated terms count again),
    ``idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` with
    ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``. The score is therefore a
    non-negative, unbounded number, comparable only between passages for the same
    query. Passages that share no term with the query are not returned.

    Two engines compute it (same passages, same order, scores equal to rounding):
    ``bm25s`` (a sparse score matrix; extra ``bm25``: ``pip install
    'rerank-rag[bm25]'``) and a pure-Python inverted index that needs nothing. On
    SciFact (5,183 abstracts) both give nDCG@10 0.677 (Lucene: 0.676-0.679);
    ``benchmarks/bench_bm25.py`` prints their index and search times.

    Args:
        corpus: the passages (``Candidate``, strings, or mappings with ``"text"``).
        k1: BM25 term-frequency saturation (default 0.9, Anserini's default for BEIR).
        b: BM25 length normalisation (default 0.4).
        tokenizer: a function ``text -> list[str]`` replacing the whole analysis chain
            (then ``stopwords`` and ``stemmer`` are ignored).
        stopwords: ``True`` (Lucene's 33-word English list, the default), ``False`` /
            ``None`` for none, or your own collection of lower-case words.
        stemmer: ``"porter"`` (default: PyStemmer's C Porter when installed, else
            :func:`porter_stem`; the two agree), ``"light"`` (plural/-ing/-ed
            stripping), ``None`` for none, or a function ``word -> stem``.
        backend: ``"auto"`` (default: ``bm25s`` when installed, otherwise pure
            Python), ``"bm25s"`` (raises :class:`~rerank_rag.MissingDependencyError`
            naming the extra when missing) or ``"python"``.

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
        backend: str = "auto",
    ) -> None:
        if k1 < 0:
            raise ValueError(f"k1 must be >= 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"b must be in [0, 1], got {b}")
        if backend not in ("auto", "bm25s", "python"):
            raise ValueError(f"backend must be 'auto', 'bm25s' or 'python', got {backend!r}")
        from ._bm25_engines import PostingsEngine, SparseEngine, sparse_available

        self.k1 = float(k1)
        self.b = float(b)
        self._docs: list[Candidate] = as_candidates(list(corpus))
        self._tokenize = self._make_tokenizer(tokenizer, stopwords, stemmer)
        vocab: dict[str, int] = {}
        tok = self._tokenize
        if isinstance(tok, _Analyzer):
            ids = [tok.term_ids(doc.text, vocab) for doc in self._docs]
        else:
            ids = [[vocab.setdefault(t, len(vocab)) for t in tok(doc.text)] for doc in self._docs]
        self._vocab = vocab
        engine = SparseEngine if backend == "bm25s" or (backend == "auto" and sparse_available()) else PostingsEngine
        self._engine: PostingsEngine | SparseEngine = engine(ids, len(vocab), self.k1, self.b)
        self.avgdl = self._engine.avgdl

    @property
    def backend(self) -> str:
        """The engine in use: ``"bm25s"`` or ``"python"``."""
        return self._engine.name

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
            stem: Callable[[str], str] | None = fast_porter_stemmer()
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
        return f"BM25Retriever(n={len(self._docs)}, k1={self.k1}, b={self.b}, backend={self.backend!r})"

    @property
    def corpus(self) -> list[Candidate]:
        """The indexed passages (normalised to :class:`~rerank_rag.Candidate`)."""
        return list(self._docs)

    def get_scores(self, query: str) -> list[float]:
        """BM25 score of every corpus passage for ``query`` (0.0 where no term matches)."""
        return self._engine.scores(self._query_ids(self._check_query(query)))

    def _query_ids(self, query: str) -> list[int]:
        vocab = self._vocab
        return [vocab[t] for t in self._tokenize(query) if t in vocab]

    @staticmethod
    def _check_query(query: object) -> str:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if not query.strip():
            raise ValueError("query must be a non-empty string")
        return query

    def search(self, query: str, k: int = 10) -> list[Candidate]:
        """The ``k`` best passages for ``query``, best first (ties: corpus order)."""
        query = self._check_query(query)
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        out: list[Candidate] = []
        for i, s in self._engine.top(self._query_ids(query), k):
            doc = self._docs[i]
            meta = dict(doc.metadata)
            meta["corpus_index"] = i
            out.append(Candidate(text=doc.text, id=doc.id, metadata=meta, score=s))
        return out

    __call__ = search
