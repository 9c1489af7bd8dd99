"""The rules of issue 10 applied to the pairwise, setwise, tournament and TDPart rankers,
their prompts and the compose wrappers: the query token budget (``max_query_tokens``, as
in the listwise prompts), one integer rule (any integer type, numpy's too; TypeError for
a wrong type, ValueError for a wrong value), ``id_style`` like the listwise rankers."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest

from rerank_rag import (
    Completion,
    DynamicCutoff,
    FakeLLM,
    FirstStageEvidence,
    FirstStageFusion,
    JointRanker,
    ListwiseRanker,
    PairwiseRanker,
    SetwiseRanker,
    TDPartRanker,
    TourRanker,
)
from rerank_rag.listwise._prompts import DEFAULT_MAX_QUERY_TOKENS
from rerank_rag.setwise import PickBestPrompt
from rerank_rag.tournament import SelectPrompt

HUGE = "what about " + "very " * 200_000 + "long questions?"  # about 1 MB
DOCS = [f"passage {i} on topic {i % 3}" for i in range(6)]

RANKERS = {
    "pairwise allpair": lambda llm, **kw: PairwiseRanker(llm, method="allpair", **kw),
    "pairwise heapsort": lambda llm, **kw: PairwiseRanker(llm, method="heapsort", **kw),
    "pairwise bubblesort": lambda llm, **kw: PairwiseRanker(llm, method="bubblesort", **kw),
    "setwise heapsort": lambda llm, **kw: SetwiseRanker(llm, block_size=3, **kw),
    "setwise bubblesort": lambda llm, **kw: SetwiseRanker(llm, method="bubblesort", block_size=3, **kw),
    "tournament": lambda llm, **kw: TourRanker(llm, block_size=4, **kw),
    "tdpart rankgpt": lambda llm, **kw: TDPartRanker(llm, block_size=3, sort_depth=1, **kw),
    "tdpart relevant-only": lambda llm, **kw: TDPartRanker(
        llm, prompt="relevant-only", block_size=3, sort_depth=1, **kw
    ),
}


def answer(messages, **params):
    """A valid answer to any of the prompts: the first passage shown, or all of them."""
    text = messages[-1]["content"]
    if "Answer with the" in text:
        return re.search(r"(?m)^\[(\w+)\]", text).group(1)
    ids = re.findall(r"(?m)^\[(\w+)\]", "\n".join(m["content"] for m in messages))
    return " > ".join(f"[{i}]" for i in ids) or "[1]"


def prompt_sizes(llm):
    return [sum(len(m["content"]) for m in messages) for messages, _ in llm.calls]


# ---------------------------------------------------------------------------- query budget


@pytest.mark.parametrize("name", list(RANKERS))
def test_a_huge_query_gives_bounded_prompts(name):
    llm = FakeLLM(answer)
    r = RANKERS[name](llm).rank(HUGE, DOCS)
    assert sorted(r.order) == list(range(len(DOCS))) and r.usage.fallbacks == 0
    # 256 tokens of the query (shown twice by RankGPT), not a megabyte per call
    assert llm.calls and max(prompt_sizes(llm)) < 8_000, name
    # a smaller budget gives smaller prompts; the async path budgets the same way
    small = FakeLLM(answer)
    asyncio.run(RANKERS[name](small, max_query_tokens=8).arank(HUGE, DOCS))
    assert max(prompt_sizes(small)) < max(prompt_sizes(llm)) - 1_000
    # an ordinary query is shown whole
    plain = FakeLLM(answer)
    RANKERS[name](plain).rank("capital   of\nFrance?", DOCS)
    assert all("capital of France?" in m[-1]["content"] or "capital of France?" in m[1]["content"]
               for m, _ in plain.calls)


def test_the_group_prompts_budget_the_query_like_the_listwise_ones():
    for prompt in (PickBestPrompt(), PickBestPrompt(scoring="logprobs"), SelectPrompt()):
        assert prompt.max_query_tokens == DEFAULT_MAX_QUERY_TOKENS
        req = prompt.build(HUGE, ["a passage", "another", "a third"])
        assert len(req.messages[0]["content"]) < 3_000, prompt
        assert prompt.to_config()["max_query_tokens"] == DEFAULT_MAX_QUERY_TOKENS
    cut = PickBestPrompt(max_query_tokens=3).build("one  two six ten fix", ["a", "b"])
    assert "QUERY: one two six\n" in cut.messages[0]["content"]
    whole = SelectPrompt(max_query_tokens=None).build(HUGE, ["a", "b"])
    assert len(whole.messages[0]["content"]) > 1_000_000


def test_every_ranker_has_the_listwise_default_query_budget():
    expected = inspect.signature(ListwiseRanker).parameters["max_query_tokens"].default
    assert expected == DEFAULT_MAX_QUERY_TOKENS
    for cls in (PairwiseRanker, SetwiseRanker, TourRanker, TDPartRanker, PickBestPrompt, SelectPrompt):
        assert inspect.signature(cls).parameters["max_query_tokens"].default == expected, cls
    llm = FakeLLM()
    for make in RANKERS.values():
        ranker = make(llm, max_query_tokens=32)
        assert ranker.prompt.max_query_tokens == 32 and ranker.to_config()["max_query_tokens"] == 32


# ---------------------------------------------------------------------------- integer rule


def _np():
    return pytest.importorskip("numpy")


CONSTRUCTORS = {
    "PairwiseRanker": (lambda **kw: PairwiseRanker(FakeLLM(), **kw), ["sort_depth", "max_passage_tokens",
                                                                      "max_query_tokens"]),
    "SetwiseRanker": (lambda **kw: SetwiseRanker(FakeLLM(), **kw), ["block_size", "sort_depth",
                                                                    "max_passage_tokens", "max_query_tokens"]),
    "TourRanker": (lambda **kw: TourRanker(FakeLLM(), **kw), ["tournaments", "block_size", "seed",
                                                              "max_passage_tokens", "max_query_tokens"]),
    "TDPartRanker": (lambda **kw: TDPartRanker(FakeLLM(), **{"sort_depth": 2, **kw}), ["block_size", "sort_depth",
                                                                  "max_passage_tokens", "max_query_tokens"]),
    "PickBestPrompt": (lambda **kw: PickBestPrompt(**kw), ["max_passage_tokens", "max_tokens",
                                                           "top_logprobs", "max_query_tokens"]),
    "SelectPrompt": (lambda **kw: SelectPrompt(**kw), ["max_passage_tokens", "max_tokens",
                                                       "max_query_tokens"]),
    "DynamicCutoff": (lambda **kw: DynamicCutoff(ListwiseRanker(FakeLLM()), allow_positional=True, **kw),
                      ["floor", "ceiling"]),
    "FirstStageFusion": (lambda **kw: FirstStageFusion(ListwiseRanker(FakeLLM()), **kw), ["rrf_k"]),
}
INT_PARAMS = [(cls, p) for cls, (_, params) in CONSTRUCTORS.items() for p in params]


@pytest.mark.parametrize("cls,param", INT_PARAMS)
def test_integer_parameters_follow_one_rule(cls, param):
    np = _np()
    make, _ = CONSTRUCTORS[cls]
    value = 5 if param != "seed" else 123
    obj = make(**{param: np.int64(value)})  # numpy integers are integers
    got = getattr(obj, param)
    assert got == value and type(got) is int, (cls, param, got)
    for wrong_type in (5.0, "5", True, [5]):
        with pytest.raises(TypeError, match=param):
            make(**{param: wrong_type})
    if param != "seed":  # any int is a seed
        with pytest.raises(ValueError, match=param):
            make(**{param: -1})


def test_tournament_stages_and_picks_follow_the_integer_rule():
    np = _np()
    ranker = TourRanker(FakeLLM(), stages=np.array([50, 20, 10, 5, 2]))
    assert ranker.stages == [50, 20, 10, 5, 2] and all(type(s) is int for s in ranker.stages)
    with pytest.raises(TypeError, match="stages"):
        TourRanker(FakeLLM(), stages=[50, 20.0])
    with pytest.raises(TypeError, match="stages"):
        TourRanker(FakeLLM(), stages=5)
    with pytest.raises(ValueError, match="stages"):
        TourRanker(FakeLLM(), stages=[5, 10])
    req = SelectPrompt().build("q", ["a", "b", "c"], picks=np.int32(2))
    assert "Select the 2 passages" in req.messages[0]["content"]
    with pytest.raises(TypeError, match="picks"):
        SelectPrompt().build("q", ["a", "b", "c"], picks=2.0)
    with pytest.raises(ValueError, match="picks"):
        SelectPrompt().build("q", ["a", "b", "c"], picks=3)


def test_numpy_sizes_rank_like_plain_ints():
    np = _np()
    docs = [f"doc {i}" for i in range(9)]
    for make in (
        lambda k: PairwiseRanker(FakeLLM(answer), method="bubblesort", sort_depth=k),
        lambda k: SetwiseRanker(FakeLLM(answer), sort_depth=k),
        lambda k: TDPartRanker(FakeLLM(answer), block_size=4, sort_depth=k),
    ):
        a = make(2).rank("q", docs, top_n=3)
        b = make(np.int64(2)).rank("q", docs, top_n=np.int64(3))
        assert a.order == b.order and len(a.order) == 3


def test_fractions_and_choices_raise_type_errors_for_wrong_types():
    np = _np()
    base = ListwiseRanker(FakeLLM())
    assert DynamicCutoff(base, threshold=np.float32(0.5), allow_positional=True).threshold == 0.5
    assert FirstStageFusion(base, weight=np.float64(0.25)).weight == 0.25
    for bad in ("0.5", None, True):
        with pytest.raises(TypeError, match="threshold"):
            DynamicCutoff(base, threshold=bad, allow_positional=True)
        with pytest.raises(TypeError, match="weight"):
            FirstStageFusion(base, weight=bad)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            DynamicCutoff(base, threshold=bad, allow_positional=True)
    with pytest.raises(ValueError, match="weight"):
        FirstStageFusion(base, weight=-0.1)
    for make, param in (
        (lambda v: PairwiseRanker(FakeLLM(), method=v), "method"),
        (lambda v: SetwiseRanker(FakeLLM(), scoring=v), "scoring"),
        (lambda v: FirstStageFusion(base, method=v), "method"),
        (lambda v: FirstStageEvidence(base, show=v), "show"),
        (lambda v: PickBestPrompt(scoring=v), "scoring"),
    ):
        with pytest.raises(TypeError, match=param):
            make(3)
        with pytest.raises(ValueError, match=param):
            make("nope")
    for make in (lambda v: PairwiseRanker(FakeLLM(), strict=v), lambda v: TourRanker(FakeLLM(), strict=v)):
        with pytest.raises(TypeError, match="strict"):
            make("yes")


# ---------------------------------------------------------------------------- id_style


def _labels(llm):
    return {lab for messages, _ in llm.calls for m in messages for lab in re.findall(r"(?m)^\[(\w+)\] ", m["content"])}


@pytest.mark.parametrize("name", list(RANKERS))
def test_id_style_like_the_listwise_rankers(name):
    make = RANKERS[name]
    # default None: the prompt's own style, reported as None like ListwiseRanker's
    assert make(FakeLLM()).to_config()["id_style"] is None
    assert ListwiseRanker(FakeLLM()).to_config()["id_style"] is None
    for style, alpha in (("alpha", True), ("numeric", False)):
        llm = FakeLLM(answer)
        ranker = make(llm, id_style=style)
        assert ranker.id_style == style and ranker.prompt.id_style == style
        ranker.rank("q", DOCS)
        assert _labels(llm) and all(lab.isalpha() == alpha for lab in _labels(llm)), (style, _labels(llm))
    with pytest.raises(ValueError, match="id_style"):
        make(FakeLLM(), id_style="roman")
    with pytest.raises(TypeError, match="id_style"):
        make(FakeLLM(), id_style=1)


def test_default_id_styles_and_the_same_rule_in_listwise_and_jointrank():
    assert PickBestPrompt().id_style == "alpha" and SelectPrompt().id_style == "numeric"
    assert PairwiseRanker(FakeLLM()).prompt.id_style == "alpha"
    assert TourRanker(FakeLLM()).prompt.id_style == "numeric"
    assert TDPartRanker(FakeLLM()).prompt.id_style == "numeric"  # RankGPT's default
    for make in (lambda **kw: ListwiseRanker(FakeLLM(), **kw), lambda **kw: JointRanker(FakeLLM(), **kw),
                 lambda **kw: SetwiseRanker(FakeLLM(), **kw)):
        assert make(id_style="alpha").prompt.id_style == "alpha"
        with pytest.raises(ValueError, match="id_style"):
            make(id_style="roman")
        with pytest.raises(TypeError, match="id_style"):
            make(id_style=1)


def test_a_prompt_object_keeps_its_own_settings():
    prompt = PickBestPrompt(id_style="numeric", max_query_tokens=4)
    ranker = SetwiseRanker(FakeLLM(), prompt=prompt, id_style="alpha", max_query_tokens=100)
    assert ranker.prompt is prompt and prompt.id_style == "numeric" and prompt.max_query_tokens == 4


def test_bound_and_single_prompts_are_the_same_text():
    passages = ["first [2] passage", "second\n passage", "third"]
    for prompt in (PickBestPrompt(), PickBestPrompt(id_style="numeric"), SelectPrompt()):
        bound = prompt.bind("a  query", passages)
        for group in ([0, 1], [2, 0, 1], [1, 2]):
            one = prompt.build("a  query", [passages[i] for i in group])
            assert bound(group) == one, (prompt, group)
    assert PickBestPrompt().parse(Completion(text="B"), 3).listed == (1,)


def test_a_prompt_subclass_with_its_own_build_is_used():
    class Shouting(PickBestPrompt):
        def build(self, query, passages):
            req = super().build(query, passages)
            return type(req)(messages=({"role": "user", "content": req.messages[0]["content"].upper()},),
                             params=req.params)

    class Fewer(SelectPrompt):
        def build(self, query, passages, *, picks=None):
            return super().build("ASKED: " + query, passages, picks=picks)

    llm = FakeLLM(answer)
    SetwiseRanker(llm, prompt=Shouting(), block_size=3).rank("q", DOCS)
    assert llm.calls and all("WHICH OF THE" in m[0]["content"] for m, _ in llm.calls)
    llm = FakeLLM(answer)
    TourRanker(llm, prompt=Fewer(), block_size=4).rank("q", DOCS)
    assert all("ASKED: q" in m[0]["content"] and "Select the" in m[0]["content"] for m, _ in llm.calls)
    with pytest.raises(ValueError, match="picks"):
        PickBestPrompt().build("q", ["a", "b", "c"], picks=2)
