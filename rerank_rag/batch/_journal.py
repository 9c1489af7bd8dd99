"""The resumable, lossless result journal and the final outputs made from it.

The journal (``<out>.journal.jsonl``) is append-only: a header line, then one JSON line
per finished query, each ``fsync``'d before the query counts as done. A writer thread
does the I/O (several results that finish together share one ``fsync``), so the event
loop never waits on the disk.

On a rerun with the same output the journal is read back: finished queries are skipped,
and a torn last line (the process was killed mid-write) is cut off before appending.
The header records the method and its settings; a journal made with other settings is
refused instead of mixing two methods in one run.

When every query is done, :func:`finalize` writes the TREC run in input order
(atomically: a temporary file, then a rename) and the JSON usage report with per-query
usage (LLM calls, tokens, retries, fallbacks, failed calls).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ._types import BatchError, BatchResult

__all__ = ["Journal", "JournalEntry", "journal_path", "read_journal", "load_record", "finalize", "FORMAT"]

FORMAT = "rerank-rag-batch/1"

#: Usage fields summed in the report (``Usage.as_dict`` keys).
USAGE_KEYS = (
    "llm_calls",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_hits",
    "retries",
    "fallbacks",
    "failed_calls",
    "parse_repairs",
    "resends",
    "depth",
)


def journal_path(out: str | os.PathLike[str]) -> Path:
    """Where the journal of the run file ``out`` lives."""
    p = Path(out)
    return p.with_name(p.name + ".journal.jsonl")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class JournalEntry(NamedTuple):
    """Where one finished query's record is: byte ``offset``, query id, input index."""

    offset: int
    qid: str
    index: int


def read_journal(path: str | os.PathLike[str]) -> tuple[dict[str, Any] | None, list[JournalEntry], int]:
    """``(header, entries, good_length)`` of a journal, one entry per finished query.

    Records are parsed one at a time and not kept (the index stays small however many
    queries the journal holds; :func:`load_record` reads one back). ``good_length`` is
    the byte length up to the last complete, valid line: anything after it is a torn
    write. A query id seen again is dropped (the first record wins).
    """
    header: dict[str, Any] | None = None
    entries: list[JournalEntry] = []
    seen: set[str] = set()
    good = 0
    with open(path, "rb") as f:
        offset = 0
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn last line
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not isinstance(rec, dict):
                break
            if "_header" in rec:
                if header is None:
                    header = rec["_header"]
            elif isinstance(rec.get("qid"), str):
                if rec["qid"] not in seen:
                    seen.add(rec["qid"])
                    entries.append(JournalEntry(offset, rec["qid"], int(rec.get("i", 0))))
            offset += len(raw)
            good = offset
    return header, entries, good


def load_record(f: Any, entry: JournalEntry) -> dict[str, Any]:
    """The record of ``entry`` from the open (binary) journal ``f``."""
    f.seek(entry.offset)
    return json.loads(f.readline())  # type: ignore[no-any-return]


class Journal:
    """Append-only, fsync'd per-query results; ``done`` holds the finished query ids.

    Args:
        path: the journal file.
        header: what the results depend on (method, settings); compared on resume.
        restart: discard an existing journal instead of resuming it.
    """

    def __init__(self, path: str | os.PathLike[str], header: Mapping[str, Any], *, restart: bool = False) -> None:
        self.path = Path(path)
        # through JSON once, so a header read back compares equal (tuples become lists)
        self.header = json.loads(json.dumps({"format": FORMAT, **dict(header)}, default=str))
        self.done: set[str] = set()
        self.resumed = 0
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._written = 0
        self._cond = threading.Condition()
        self._enqueued = 0
        self._thread: threading.Thread | None = None
        self._file: Any = None
        self._open(restart)

    def _open(self, restart: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not restart:
            header, entries, good = read_journal(self.path)
            if header is not None:
                old, new = dict(header), self.header
                if old != new:
                    raise BatchError(
                        f"{self.path} was written by a batch with other settings "
                        f"({_diff(old, new)}); use another output file or --restart"
                    )
            self.done = {e.qid for e in entries}
            self.resumed = len(self.done)
            f = open(self.path, "r+b")
            size = f.seek(0, os.SEEK_END)
            if good < size:
                f.truncate(good)  # drop a torn last line before appending
            f.seek(good)
            if header is None:
                f.truncate(0)
                f.seek(0)
                self.done = set()
                self.resumed = 0
                f.write((json.dumps({"_header": self.header}) + "\n").encode())
            self._file = f
        else:
            f = open(self.path, "wb")
            f.write((json.dumps({"_header": self.header}) + "\n").encode())
            self._file = f
        self._file.flush()
        os.fsync(self._file.fileno())
        _fsync_dir(self.path.parent)
        self._thread = threading.Thread(target=self._writer, name="rerank-rag-journal", daemon=True)
        self._thread.start()

    # -- the writer thread ------------------------------------------------------------
    def _writer(self) -> None:
        f = self._file
        while True:
            item = self._q.get()
            batch = [item]
            while True:  # group commit: everything queued shares one fsync
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            stop = any(x is None for x in batch)
            recs = [x for x in batch if x is not None]
            try:
                if recs and self._error is None:
                    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
                    f.write(data.encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                self._error = exc
            with self._cond:
                self._written += len(recs)
                self._cond.notify_all()
            if stop:
                return

    # -- API ------------------------------------------------------------------------
    def append(self, result: BatchResult) -> None:
        """Queue one result for writing (durable once :meth:`flush` returns)."""
        if self._error is not None:
            raise BatchError(f"cannot write {self.path}: {self._error}") from self._error
        if result.qid in self.done:
            return  # a duplicate delivery (e.g. a retried Ray task): keep the first
        self.done.add(result.qid)
        self._enqueued += 1
        self._q.put(result.to_record())

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued result is on disk."""
        with self._cond:
            self._cond.wait_for(lambda: self._written >= self._enqueued or self._error is not None, timeout)
        if self._error is not None:
            raise BatchError(f"cannot write {self.path}: {self._error}") from self._error

    def close(self) -> None:
        """Flush, stop the writer thread and close the file."""
        if self._thread is None:
            return
        self._q.put(None)
        self._thread.join()
        self._thread = None
        self._file.close()
        if self._error is not None:
            raise BatchError(f"cannot write {self.path}: {self._error}") from self._error

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    parts = [f"{k}: {old.get(k)!r} != {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(parts[:3]) or "different header"


def _records_in_order(path: Path) -> Iterator[dict[str, Any]]:
    _, entries, _ = read_journal(path)
    entries.sort(key=lambda e: e.index)
    with open(path, "rb") as f:
        for e in entries:
            yield load_record(f, e)


def finalize(
    journal: str | os.PathLike[str],
    run_out: str | os.PathLike[str],
    *,
    tag: str = "rerank-rag",
    report_out: str | os.PathLike[str] | None = None,
    report_extra: Mapping[str, Any] | None = None,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """Write the TREC run (input order, each query once) and the usage report.

    ``only``: the input's query ids; journal records of other queries are left out,
    and a missing one raises :class:`BatchError` (the run would be incomplete).
    Returns the report (also written to ``report_out`` when given).
    """
    from ..eval._trec import write_run

    jpath = Path(journal)
    run_path = Path(run_out)
    tmp = run_path.with_name(run_path.name + ".tmp")
    totals = {k: 0 for k in USAGE_KEYS}
    per_query: dict[str, dict[str, int]] = {}
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in _records_in_order(jpath):
            if only is not None and rec["qid"] not in only:
                continue
            docids = rec.get("docids")
            if docids is None:
                raise BatchError(f"query {rec['qid']!r} has candidates without ids: no run file can be written")
            write_run(f, {rec["qid"]: list(zip(docids, rec["scores"]))}, tag=tag)
            u = rec.get("usage") or {}
            for k in USAGE_KEYS:
                totals[k] += int(u.get(k, 0) or 0)
            per_query[rec["qid"]] = {
                k: int(u.get(k, 0) or 0)
                for k in ("llm_calls", "total_tokens", "retries", "fallbacks", "failed_calls", "parse_repairs", "resends", "depth")
            }
            n += 1
        f.flush()
        os.fsync(f.fileno())
    if only is not None and n != len(only):
        missing = sorted(set(only) - set(per_query))
        tmp.unlink()
        raise BatchError(f"{len(missing)} input queries have no result in {jpath} (e.g. {missing[0]!r})")
    os.replace(tmp, run_path)
    _fsync_dir(run_path.parent)
    report: dict[str, Any] = {
        "tool": "rerank-rag batch",
        "run": str(run_path),
        "journal": str(jpath),
        "queries": n,
        "usage": {"totals": totals, "per_query_mean": {k: (totals[k] / n if n else 0.0) for k in USAGE_KEYS}},
        "queries_with_retries": sum(1 for u in per_query.values() if u["retries"]),
        "queries_with_fallbacks": sum(1 for u in per_query.values() if u["fallbacks"]),
        **dict(report_extra or {}),
        "per_query": per_query,
    }
    if report_out is not None:
        rp = Path(report_out)
        rtmp = rp.with_name(rp.name + ".tmp")
        rtmp.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(rtmp, rp)
    return report
