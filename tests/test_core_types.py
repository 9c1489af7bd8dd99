from __future__ import annotations

import math

import pytest

from rerank_rag import Candidate, Ranking, Usage, as_candidates
from rerank_rag._types import check_top_n


def test_as_candidates_accepts_str_candidate_and_mapping():
    cands = as_candidates(["a", Candidate("b", id="x"), {"text": "c", "id": 7, "score": 1.5}])
    assert [c.text for c in cands] == ["a", "b", "c"]
    assert cands[1].id == "x" and cands[2].id == "7" and cands[2].score == 1.5


@pytest.mark.parametrize("bad, idx", [([None], 0), (["ok", 3], 1), (["a", "b", {"text": None}], 2)])
def test_bad_text_names_its_index(bad, idx):
    with pytest.raises(ValueError, match=f"candidate {idx}"):
        as_candidates(bad)


def test_mapping_without_text_is_rejected():
    with pytest.raises(ValueError, match="'text'"):
        as_candidates([{"content": "x"}])


def test_single_string_is_not_a_candidate_list():
    with pytest.raises(TypeError):
        as_candidates("just one string")


def test_top_n_rules():
    assert check_top_n(None, 5) == 5
    assert check_top_n(10, 5) == 5
    assert check_top_n(2, 5) == 2
    for bad in (0, -1):
        with pytest.raises(ValueError):
            check_top_n(bad, 5)
    with pytest.raises(TypeError):
        check_top_n(2.0, 5)  # type: ignore[arg-type]


def test_ranking_from_scores_sorts_and_breaks_ties_by_input_order():
    r = Ranking.from_scores([0.1, 0.9, 0.5, 0.9, float("nan")])
    assert r.order == (1, 3, 2, 0, 4)
    assert r.scores[:4] == (0.9, 0.9, 0.5, 0.1) and math.isnan(r.scores[4])
    assert Ranking.from_scores([3, 1, 2], top_n=2).order == (0, 2)


def test_ranking_select_maps_back_by_position_not_text():
    docs = ["same", "same", "other"]
    r = Ranking(order=(2, 1, 0), scores=(3.0, 2.0, 1.0))
    picked = r.select(docs)
    assert picked == ["other", "same", "same"]
    assert [i for i, _ in r] == [2, 1, 0]


def test_ranking_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        Ranking(order=(0, 1), scores=(1.0,))


def test_positional_scores_are_monotone():
    r = Ranking.from_order([2, 0, 1])
    assert r.scores == tuple(sorted(r.scores, reverse=True))
    assert r.scores[0] == 1.0


def test_usage_merge_sequential_and_parallel():
    a = Usage(llm_calls=2, prompt_tokens=10, depth=3, retries=1)
    b = Usage(llm_calls=1, completion_tokens=5, depth=2, fallbacks=1)
    seq = Usage().merge(a).merge(b)
    assert (seq.llm_calls, seq.depth, seq.total_tokens, seq.retries, seq.fallbacks) == (3, 5, 15, 1, 1)
    par = Usage().merge(a, sequential=False).merge(b, sequential=False)
    assert par.depth == 3
    assert seq.as_dict()["total_tokens"] == 15
