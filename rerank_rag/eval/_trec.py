"""TREC run files: read and write.

A TREC run line is ``qid Q0 docid rank score tag`` (whitespace separated). trec_eval
ignores the rank column and orders each query's documents by score, descending, ties
broken by docid descending; :func:`read_run` does the same by default so metrics
computed here match trec_eval on the same file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar, Union

__all__ = ["Run", "read_run", "write_run", "run_to_lists"]

#: ``{qid: [(docid, score), ...]}`` best first.
Run = dict[str, list[tuple[str, float]]]

PathLike = Union[str, "os.PathLike[str]"]

E = TypeVar("E", bound=tuple[Any, ...])


def read_run(path: PathLike, *, order: str = "trec_eval") -> Run:
    """Read a TREC run file.

    Args:
        path: the run file (6 whitespace-separated columns per line).
        order: ``"trec_eval"`` (score descending, ties by docid descending, as
            trec_eval evaluates), ``"rank"`` (the rank column) or ``"file"`` (line
            order).

    Raises:
        ValueError: naming the file and line of a malformed line, a duplicate
            (qid, docid) or an unknown ``order``.
    """
    if order not in ("trec_eval", "rank", "file"):
        raise ValueError(f"order must be 'trec_eval', 'rank' or 'file', got {order!r}")
    rows: dict[str, list[tuple[str, float, int, int]]] = {}
    seen: set[tuple[str, str]] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, qid, docid, rank_s, score in run_lines(path, f):
            try:
                rank = int(rank_s)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: rank must be an int, got {rank_s!r}") from None
            if (qid, docid) in seen:
                raise ValueError(f"{path}:{lineno}: document {docid!r} appears twice for query {qid!r}")
            seen.add((qid, docid))
            rows.setdefault(qid, []).append((docid, score, rank, lineno))
    run: Run = {}
    for qid, entries in rows.items():
        if order == "trec_eval":
            entries = trec_eval_sorted(entries)
        elif order == "rank":
            entries = sorted(entries, key=lambda e: (e[2], e[3]))
        run[qid] = [(d, s) for d, s, _, _ in entries]
    return run


def run_lines(path: PathLike, lines: Iterable[str]) -> Iterator[tuple[int, str, str, str, float]]:
    """``(lineno, qid, docid, rank, score)`` for each non-blank line of a TREC run read
    as ``lines`` (the rank column as written); ValueError naming ``path`` and the line
    for fewer than 6 columns or a score that is not a number."""
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 6:
            raise ValueError(f"{path}:{lineno}: expected 'qid Q0 docid rank score tag', got {line.strip()!r}")
        qid, _, docid, rank_s, score_s = parts[:5]
        try:
            score = float(score_s)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: score must be a number, got {score_s!r}") from None
        yield lineno, qid, docid, rank_s, score


def trec_eval_sorted(entries: Iterable[E]) -> list[E]:
    """``entries`` (docid first, score second) in the order trec_eval evaluates them:
    score descending, ties by docid descending."""
    by_docid = sorted(entries, key=lambda e: e[0], reverse=True)
    return sorted(by_docid, key=lambda e: e[1], reverse=True)


def run_to_lists(run: Mapping[str, Sequence[tuple[str, float]] | Sequence[str]]) -> dict[str, list[str]]:
    """``{qid: [(docid, score)]}`` or ``{qid: [docid]}`` -> ``{qid: [docid]}``."""
    out: dict[str, list[str]] = {}
    for qid, entries in run.items():
        out[qid] = [e if isinstance(e, str) else e[0] for e in entries]
    return out


def _strictly_decreasing(scores: Sequence[float]) -> bool:
    return all(
        math.isfinite(a) and math.isfinite(b) and a > b for a, b in zip(scores, scores[1:])
    ) and all(math.isfinite(s) for s in scores)


def write_run(
    dest: PathLike | IO[str],
    run: Mapping[str, Sequence[tuple[str, float]] | Sequence[str]],
    *,
    tag: str = "rerank-rag",
    scores: str = "auto",
) -> None:
    """Write a TREC run file whose order trec_eval will evaluate exactly as given.

    Args:
        dest: a path or an open text file.
        run: ``{qid: [(docid, score), ...]}`` or ``{qid: [docid, ...]}``, best first.
        tag: the run tag (last column; whitespace is replaced by ``_``).
        scores: ``"auto"`` writes the given scores when they are finite and strictly
            decreasing, else rank-based scores (``n - rank + 1``), so trec_eval's
            score sort cannot reorder ties; ``"given"`` always writes the given scores;
            ``"rank"`` always writes rank-based scores.

    Raises:
        ValueError: on a docid or qid containing whitespace, a duplicate docid within
            a query, or an unknown ``scores`` mode.
    """
    if scores not in ("auto", "given", "rank"):
        raise ValueError(f"scores must be 'auto', 'given' or 'rank', got {scores!r}")
    tag = "_".join(tag.split()) or "rerank-rag"
    buf = io.StringIO()
    for qid, entries in run.items():
        qid = str(qid)
        if not qid or any(c.isspace() for c in qid):
            raise ValueError(f"query id {qid!r} is empty or contains whitespace")
        docids = [e if isinstance(e, str) else str(e[0]) for e in entries]
        given = [None if isinstance(e, str) else float(e[1]) for e in entries]
        if len(set(docids)) != len(docids):
            raise ValueError(f"query {qid!r} lists a document twice")
        use_given = scores == "given" or (
            scores == "auto" and all(g is not None for g in given) and _strictly_decreasing(given)  # type: ignore[arg-type]
        )
        n = len(docids)
        for rank, docid in enumerate(docids, 1):
            if not docid or any(c.isspace() for c in docid):
                raise ValueError(f"document id {docid!r} (query {qid!r}) is empty or contains whitespace")
            score = given[rank - 1] if use_given and given[rank - 1] is not None else float(n - rank + 1)
            buf.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")
    text = buf.getvalue()
    if hasattr(dest, "write"):
        dest.write(text)  # type: ignore[union-attr]
    else:
        Path(dest).write_text(text, encoding="utf-8")  # type: ignore[arg-type]
