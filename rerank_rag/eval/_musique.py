"""MuSiQue-100 as multi-hop evaluation data (see :mod:`rerank_rag.eval._multihop`).

Data: ``<data_dir>/musique-100`` (100 MuSiQue-Ans questions with gold sub-question
decompositions and 2-4 gold paragraphs each; the pooled 1,890-passage corpus; see its
PROVENANCE.md). Every question retrieves from the *pooled* corpus. Passage text is
``"<title>\\n<paragraph>"``; ids are corpus positions. The gold decomposition replaces
every ``#n`` by the gold answer of step n (an ideal decomposer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._types import Candidate
from ._data import DataNotFoundError, load_musique
from ._multihop import MultiHopData, MultiHopQuestion, evaluate_multihop, format_multihop_table

__all__ = [
    "MusiqueData",
    "load_musique_eval",
    "gold_subquestions",
    "evaluate_musique",
    "format_table",
    "musique_sim_decomposer",
]

#: MuSiQue data is :class:`MultiHopData` with the raw records kept.
MusiqueData = MultiHopData


def _resolve_dir(data_dir: str | Path) -> Path:
    d = Path(data_dir)
    if (d / "musique-100").is_dir():
        d = d / "musique-100"
    if not (d / "musique_train.json").is_file():
        raise DataNotFoundError(
            f"MuSiQue-100 data not found under {Path(data_dir)} (expected musique-100/musique_train.json "
            "and musique_train_corpus.json; see the project's data README)"
        )
    return d


def gold_subquestions(record: Mapping[str, Any]) -> list[str]:
    """The gold decomposition with ``#n`` references replaced by the gold answers.

    ``"Who was the first president of #1 ?"`` with step 1 answered
    ``"American Psychological Association"`` becomes
    ``"Who was the first president of American Psychological Association?"``.
    """
    steps = record["question_decomposition"]
    answers = [str(s.get("answer", "")) for s in steps]

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return answers[n - 1] if 1 <= n <= len(answers) else m.group(0)

    out = []
    for s in steps:
        q = re.sub(r"#(\d+)", sub, str(s["question"]))
        out.append(re.sub(r"\s+([?.,!])", r"\1", " ".join(q.split())))
    return out


def load_musique_eval(data_dir: str | Path) -> MultiHopData:
    """Load the sample and map every gold paragraph to its corpus position.

    Raises:
        DataNotFoundError: the data is absent (a ``FileNotFoundError``).
        ValueError: a gold paragraph is not in the pooled corpus.
    """
    d = _resolve_dir(data_dir)
    records, raw_corpus = load_musique(d)
    corpus: list[Candidate] = []
    index: dict[tuple[str, str], str] = {}
    for i, p in enumerate(raw_corpus):
        cid = str(i)
        text = f"{p['title']}\n{p['text']}" if p["title"] else p["text"]
        corpus.append(Candidate(text, id=cid, metadata={"title": p["title"]}))
        index.setdefault((p["title"], p["text"]), cid)
    questions: list[MultiHopQuestion] = []
    for r in records:
        ids = set()
        for p in r["paragraphs"]:
            if p.get("is_supporting"):
                key = (p["title"], p["paragraph_text"])
                if key not in index:
                    raise ValueError(f"gold paragraph {p['title']!r} of {r['id']} is not in the corpus")
                ids.add(index[key])
        questions.append(MultiHopQuestion(
            str(r["id"]), r["question"], frozenset(ids), tuple(gold_subquestions(r)), len(r["question_decomposition"]),
        ))  # fmt: skip
    return MultiHopData("musique-100", questions, corpus, source=str(d.resolve()), records=records)


def evaluate_musique(data_dir: str | Path, **kw: Any) -> dict[str, Any]:
    """:func:`~rerank_rag.eval.evaluate_multihop` on MuSiQue-100 (loaded once per process).

    Takes the same keyword arguments (``decomposer``, ``reranker``, ``first_stage``,
    ``llm``, ``k``, ``top_n``, ``merge``, ``limit``, ``pool_matched``, ``progress``,
    ``label``, ...); ``decomposer="gold"`` is the ideal decomposer (``#n`` replaced by
    the gold answers).
    """
    from ._multihop import _shared

    data = _shared(f"musique:{Path(data_dir).resolve()}", lambda: load_musique_eval(data_dir))
    return evaluate_multihop(data, **kw)


def format_table(results: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> str:
    """A Markdown table of MuSiQue results (see :func:`~rerank_rag.eval.format_multihop_table`)."""
    return format_multihop_table(results)


def musique_sim_decomposer(records: Sequence[Mapping[str, Any]]) -> Callable[[dict[str, Any]], str]:
    """A :class:`~rerank_rag.eval.SimulatedLLM` fallback that answers decomposition
    prompts for MuSiQue questions with their gold sub-questions, the bridge answers
    unknown (``#n`` -> ``it``): what a decomposer that understands the structure but
    not yet the intermediate answers would write. Simulated, not a model."""
    from ._multihop import sim_decomposer

    pairs = []
    for r in records:
        subs = [re.sub(r"\s*#\d+\s*", " it ", s["question"]).strip() for s in r["question_decomposition"]]
        pairs.append((r["question"], [re.sub(r"\s+", " ", s).replace(" ?", "?") for s in subs]))
    return sim_decomposer(pairs)
