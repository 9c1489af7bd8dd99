"""Merging per-query result lists: de-duplication, provenance, union / interleave / RRF."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_rag import Candidate
from rerank_rag.decompose import candidate_key, merge_results, passage_text_key
from rerank_rag.decompose._merge import id_conflicts


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
    results = [[C("x", "1", 0.2)], [C("x", "1", 0.9)]]
    [only] = merge_results(results, ["q", "s"])
    assert only.candidate.score == 0.2
    assert [h.score for h in only.hits] == [0.2, 0.9]


def test_text_dedup_when_ids_are_missing_ignores_only_whitespace():
    results = [[C("Paris is  the capital."), C("Berlin")], [C(" Paris is the\ncapital. "), C("Rome")]]
    pool = merge_results(results, ["q", "s"])
    assert [p.candidate.text for p in pool] == ["Paris is  the capital.", "Berlin", "Rome"]
    assert pool[0].key.startswith("text:") and len(pool[0].hits) == 2
    # case and punctuation are part of the passage
    assert len(merge_results([[C("C++ is fast."), C("C is fast."), C("c++ is fast.")]], ["q"])) == 3


# -- item 9: one duplicate rule -------------------------------------------------------


def test_the_same_passage_with_and_without_an_id_is_one_entry():
    # 0.1 kept both: the passage reached the reranker twice
    for results in ([[C("same", "7")], [C("same")]], [[C("same")], [C("same", "7")]]):
        [p] = merge_results(results, ["q", "s"])
        assert p.candidate.id == "7" and p.key == "id:7"  # the id'd copy represents it
        assert [h.query_index for h in p.hits] == [0, 1]
    assert candidate_key(C("same", "7")) == "id:7"


def test_different_texts_under_one_id_are_kept_apart_and_logged(caplog):
    # 0.1 collapsed them: the second passage was lost without a word
    results = [[C("Chunk one of the report.", "doc-1")], [C("Chunk two of the report.", "doc-1")]]
    with caplog.at_level("WARNING", logger="rerank_rag.decompose"):
        pool = merge_results(results, ["q", "s"])
    assert [p.candidate.text for p in pool] == [
        "Chunk one of the report.", "Chunk two of the report."
    ]
    assert [p.key for p in pool] == ["id:doc-1", "id:doc-1#2"]
    assert id_conflicts(pool) == 1
    [record] = [r for r in caplog.records if "different texts" in r.getMessage()]
    assert "doc-1" in record.getMessage()


def test_same_text_under_different_ids_stays_two_passages():
    pool = merge_results([[C("dup", "a"), C("dup", "b")], [C("dup")]], ["q", "s"])
    assert [p.candidate.id for p in pool] == ["a", "b"]
    assert [h.query_index for h in pool[0].hits] == [0, 1]  # the id-less copy joins the first
    assert id_conflicts(pool) == 0


def test_an_id_less_entry_adopts_one_id_only():
    pool = merge_results([[C("t")], [C("t", "a")], [C("t", "b")]], ["q", "s1", "s2"])
    assert [(p.candidate.id, len(p.hits)) for p in pool] == [("a", 2), ("b", 1)]


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


def _same(a, b):
    """The documented rule, written independently: equal text after whitespace
    normalisation, and ids that do not disagree."""
    return passage_text_key(a.text) == passage_text_key(b.text) and (
        a.id is None or b.id is None or a.id == b.id
    )


# Property: merging never loses a distinct candidate and never repeats one, whatever the
# overlap between lists (ids present, missing or conflicting), and every hit is recorded.
_items = st.tuples(
    st.sampled_from(["p", "q", "r", "s "]), st.sampled_from([None, "1", "2", "3"])
)


@settings(max_examples=200, deadline=None)
@given(
    lists=st.lists(st.lists(_items, max_size=8), min_size=1, max_size=5),
    method=st.sampled_from(["union", "interleave", "rrf"]),
)
def test_merge_never_loses_or_repeats(lists, method):
    results = [[C(f"text {t}", id=i) for t, i in lst] for lst in lists]
    queries = [f"query {i}" for i in range(len(results))]
    pool = merge_results(results, queries, method=method)
    keys = [p.key for p in pool]
    assert len(keys) == len(set(keys))
    for qi, lst in enumerate(results):
        for rank, c in enumerate(lst, start=1):
            holders = [p for p in pool if any(h.query_index == qi and h.rank <= rank for h in p.hits)
                       and _same(p.candidate, c)]
            assert holders, f"{c} of query {qi} is in no pool entry"
    # no two entries are the same passage under the rule (an id-less entry shares its
    # text with no other entry; id'd entries with the same text have different ids)
    for a in pool:
        for b in pool:
            if a is not b:
                assert not _same(a.candidate, b.candidate)
    # every candidate text with an id appears under that id
    for lst in results:
        for c in lst:
            if c.id is not None:
                assert any(p.candidate.id == c.id and _same(p.candidate, c) for p in pool)
