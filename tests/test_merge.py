"""Merging per-query result lists: de-duplication, provenance, union / interleave / RRF."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_rag import Candidate
from rerank_rag.decompose import candidate_key, merge_results


def C(text, id=None, score=None):
    return Candidate(text=text, id=id, score=score)


def test_union_keeps_first_seen_order_and_provenance():
    results = [
        [C("a", "1", 9.0), C("b", "2", 8.0)],
        [C("c", "3", 5.0), C("a", "1", 7.5)],
        [C("b", "2", 1.0)],
    ]
    pool = merge_results(results, ["q", "s1", "s2"])
    assert [p.candidate.id for p in pool] == ["1", "2", "3"]
    a = pool[0]
    assert [(h.query_index, h.query, h.rank, h.score) for h in a.hits] == [
        (0, "q", 1, 9.0),
        (1, "s1", 2, 7.5),
    ]
    assert a.best_rank == 1 and a.found_by_original
    assert pool[2].queries == ("s1",) and not pool[2].found_by_original
    assert all(p.fused_score is None for p in pool)


def test_duplicates_with_different_scores_keep_first_candidate_and_all_scores():
    results = [[C("x", "1", 0.2)], [C("x (other copy)", "1", 0.9)]]
    [only] = merge_results(results, ["q", "s"])
    assert only.candidate.score == 0.2 and only.candidate.text == "x"
    assert [h.score for h in only.hits] == [0.2, 0.9]


def test_text_hash_dedup_when_ids_are_missing():
    results = [[C("Paris is  the capital."), C("Berlin")], [C("paris IS the capital. "), C("Rome")]]
    pool = merge_results(results, ["q", "s"])
    assert [p.candidate.text for p in pool] == ["Paris is  the capital.", "Berlin", "Rome"]
    assert pool[0].key.startswith("text:") and len(pool[0].hits) == 2


def test_id_and_no_id_are_never_merged():
    pool = merge_results([[C("same", "7")], [C("same")]], ["q", "s"])
    assert len(pool) == 2
    assert candidate_key(C("same", "7")) == "id:7"


def test_duplicate_inside_one_list_keeps_its_best_rank():
    [p] = merge_results([[C("a", "1"), C("a", "1")]], ["q"])
    assert [(h.rank) for h in p.hits] == [1]


def test_interleave_is_round_robin_by_rank():
    results = [[C("a", "a"), C("b", "b")], [C("c", "c"), C("a", "a"), C("d", "d")]]
    pool = merge_results(results, ["q", "s"], method="interleave")
    assert [p.candidate.id for p in pool] == ["a", "c", "b", "d"]


def test_rrf_scores_and_order():
    results = [
        [C("a", "a"), C("b", "b"), C("c", "c")],
        [C("c", "c"), C("b", "b")],
    ]
    pool = merge_results(results, ["q", "s"], method="rrf", rrf_k=60)
    expected = {
        "a": 1 / 61,
        "b": 1 / 62 + 1 / 62,
        "c": 1 / 63 + 1 / 61,
    }
    assert {p.candidate.id: p.fused_score for p in pool} == pytest.approx(expected)
    assert [p.candidate.id for p in pool] == sorted(expected, key=lambda k: -expected[k])


def test_empty_and_invalid_inputs():
    assert merge_results([[], []], ["q", "s"]) == []
    assert merge_results([], []) == []
    with pytest.raises(ValueError, match="result lists"):
        merge_results([[]], ["q", "s"])
    with pytest.raises(ValueError, match="merge must be one of"):
        merge_results([[]], ["q"], method="max")
    with pytest.raises(ValueError, match="rrf_k"):
        merge_results([[]], ["q"], rrf_k=-1)


# Property: merging never loses a distinct candidate and never repeats one, whatever the
# overlap between lists, and every hit is recorded.
_items = st.tuples(st.sampled_from(["p", "q", "r", "s", "t", "u"]), st.booleans())


@settings(max_examples=150, deadline=None)
@given(
    lists=st.lists(st.lists(_items, max_size=8), min_size=1, max_size=5),
    method=st.sampled_from(["union", "interleave", "rrf"]),
)
def test_merge_never_loses_or_repeats(lists, method):
    results = [
        [C(f"text {t}", id=(t if with_id else None)) for t, with_id in lst] for lst in lists
    ]
    queries = [f"query {i}" for i in range(len(results))]
    pool = merge_results(results, queries, method=method)
    keys = [p.key for p in pool]
    assert len(keys) == len(set(keys))
    assert set(keys) == {candidate_key(c) for lst in results for c in lst}
    for qi, lst in enumerate(results):
        for rank, c in enumerate(lst, start=1):
            [p] = [p for p in pool if p.key == candidate_key(c)]
            assert any(h.query_index == qi and h.rank <= rank for h in p.hits)
