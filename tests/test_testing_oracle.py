from rerank_rag import ListwiseRanker
from rerank_rag.testing import FakeLLM, keyword_oracle


def test_keyword_oracle_ranks_keyword_passages_first_in_presentation_order():
    msgs = [{"role": "user", "content": "[1] apples\n[2] the seine river\n[3] SEINE banks\n[4] x"}]
    assert keyword_oracle(msgs, "seine") == "[2] > [3] > [1] > [4]"


def test_keyword_oracle_answers_subquestions_without_passages():
    msgs = [{"role": "user", "content": "split this question"}]
    assert keyword_oracle(msgs, "x", ["a?", "b?"]) == "1. a?\n2. b?"


def test_keyword_oracle_drives_a_real_ranker():
    docs = ["Berlin is in Germany.", "Rome is in Italy.", "The Seine crosses Paris."]
    ranker = ListwiseRanker(FakeLLM(lambda m: keyword_oracle(m, "seine")))
    assert ranker.rank("river of Paris?", docs).order[0] == 2
