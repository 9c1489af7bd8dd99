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
    # a value of the wrong type is a TypeError, as for the query
    with pytest.raises(TypeError, match=f"candidate {idx}"):
        as_candidates(bad)


@pytest.mark.parametrize(
    "bad, error, what",
    [
        ({"text": "a", "metadata": ["not", "a", "mapping"]}, TypeError, "metadata"),
        ({"text": "a", "score": "0.9"}, TypeError, "score"),
        ({"text": "a", "score": True}, TypeError, "score"),
        ({"text": "a", "score": float("nan")}, ValueError, "NaN score"),
        ({"text": "a", "id": ["x"]}, TypeError, "id"),
        (Candidate("a", metadata="oops"), TypeError, "metadata"),  # type: ignore[arg-type]
        (Candidate("a", score="high"), TypeError, "score"),  # type: ignore[arg-type]
    ],
)
def test_candidate_metadata_score_and_id_are_validated(bad, error, what):
    with pytest.raises(error, match=f"candidate 1 .*{what}|candidate 1 has a {what}"):
        as_candidates(["ok", bad])


def test_valid_candidate_fields_are_normalised():
    import fractions

    cands = as_candidates([{"text": "a", "score": 3, "metadata": None, "id": 7},
                           Candidate("b", score=fractions.Fraction(1, 2))])
    assert cands[0].score == 3.0 and isinstance(cands[0].score, float)
    assert cands[0].metadata == {} and cands[0].id == "7" and cands[1].score == 0.5
    assert isinstance(cands[1].score, float)  # a Candidate's score is normalised too
    same = Candidate("c", id="x", metadata={"k": 1}, score=0.5)
    assert as_candidates([same])[0] is same


def test_query_and_candidates_follow_one_type_value_rule():
    from rerank_rag import FakeLLM, ListwiseRanker

    ranker = ListwiseRanker(FakeLLM())
    with pytest.raises(TypeError, match="query"):
        ranker.rank(3, ["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query"):
        ranker.rank("  ", ["a", "b"])
    with pytest.raises(TypeError, match="candidate 0"):
        ranker.rank("q", [3, "b"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="candidate 0"):
        ranker.rank("q", [{"content": "x"}, "b"])


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
    with pytest.raises(TypeError):
        check_top_n(True, 5)  # type: ignore[arg-type]


def test_top_n_accepts_any_integer_type():
    np = pytest.importorskip("numpy")
    assert check_top_n(np.int64(2), 5) == 2 and type(check_top_n(np.int64(2), 5)) is int
    from rerank_rag import FakeLLM, ListwiseRanker

    r = ListwiseRanker(FakeLLM(lambda m: "[2] > [1]")).rank("q", ["a", "b", "c"], top_n=np.int32(2))
    assert len(r) == 2


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
