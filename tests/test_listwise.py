"""ListwiseRanker, its prompts and the sliding-window arithmetic, with FakeLLM."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from rerank_rag import (
    Completion,
    FakeLLM,
    LLMTimeoutError,
    ParseError,
    RankingFailedError,
    WindowParse,
)
from rerank_rag._text import count_tokens
from rerank_rag.listwise import (
    NO_RELEVANT_TOKEN,
    FirstTokenPrompt,
    ListwiseRanker,
    RankGPTPrompt,
    RelevantOnlyPrompt,
    get_prompt,
    window_spans,
)

LINE = re.compile(r"^\[([A-Z]|\d+)\] (.*)$", re.M)
REL = re.compile(r"rel=(\d+)")


def shown_passages(messages):
    """(label, text) of every passage shown in a prompt, in prompt order."""
    out = []
    for m in messages:
        if m["role"] == "user":
            out += LINE.findall(m["content"])
    return out


def relevance(text):
    return int(REL.search(text).group(1))


def oracle(messages, **params):
    """A perfect judge: orders the shown passages by the relevance hidden in their text."""
    shown = shown_passages(messages)
    ranked = sorted(shown, key=lambda lt: -relevance(lt[1]))
    if params.get("top_logprobs"):
        # FIRST-style: logprobs of the first token, best passage most likely
        tops = {label: -0.1 * r for r, (label, _) in enumerate(ranked[:20])}
        return Completion(text=ranked[0][0], top_logprobs=tops)
    return " > ".join(f"[{label}]" for label, _ in ranked)


def docs_with_hidden_relevance(n, seed=0):
    rels = list(range(n))
    random.Random(seed).shuffle(rels)
    return [f"doc{i} rel={r} text about topic {i}" for i, r in enumerate(rels)], rels


def doc_ids(messages):
    return [int(re.match(r"doc(\d+)", text).group(1)) for _, text in shown_passages(messages)]


# ---- window arithmetic -------------------------------------------------------------


@pytest.mark.parametrize(
    "n, w, s, expected",
    [
        # written out by hand: ends n, n-s, ...; start = max(0, end - w); stop at start 0
        (
            100,
            20,
            10,
            [
                (80, 100),
                (70, 90),
                (60, 80),
                (50, 70),
                (40, 60),
                (30, 50),
                (20, 40),
                (10, 30),
                (0, 20),
            ],
        ),
        (
            105,
            20,
            10,
            [
                (85, 105),
                (75, 95),
                (65, 85),
                (55, 75),
                (45, 65),
                (35, 55),
                (25, 45),
                (15, 35),
                (5, 25),
                (0, 15),
            ],
        ),
        (25, 20, 10, [(5, 25), (0, 15)]),  # RankGPT would skip the head 0..4 here
        (21, 20, 10, [(1, 21), (0, 11)]),
        (20, 20, 10, [(0, 20)]),
        (7, 20, 10, [(0, 7)]),
        (45, 20, 20, [(25, 45), (5, 25), (0, 5)]),
        (10, 4, 3, [(6, 10), (3, 7), (0, 4)]),
        (11, 4, 3, [(7, 11), (4, 8), (1, 5), (0, 2)]),
        (1, 20, 10, [(0, 1)]),
        (0, 20, 10, []),
    ],
)
def test_window_spans_by_hand(n, w, s, expected):
    assert window_spans(n, w, s) == expected


def test_window_spans_rejects_bad_arguments():
    with pytest.raises(ValueError, match="step"):
        window_spans(10, 4, 5)
    with pytest.raises(ValueError, match="step"):
        window_spans(10, 4, 0)
    with pytest.raises(ValueError, match="n"):
        window_spans(-1, 4, 2)
    with pytest.raises(TypeError):
        window_spans(10.0, 4, 2)  # type: ignore[arg-type]


# ---- the checks the issue names -------------------------------------------------------


def test_n100_window20_step10_makes_9_back_to_front_calls_and_finds_the_top10():
    texts, rels = docs_with_hidden_relevance(100, seed=1)
    llm = FakeLLM(oracle)
    ranking = ListwiseRanker(llm, window_size=20, step=10).rank("q", texts)

    assert len(llm.calls) == 9
    assert ranking.usage.llm_calls == 9 and ranking.usage.depth == 9
    # replay with an independent reference: literal spans, a perfect sort per window
    spans = [
        (80, 100),
        (70, 90),
        (60, 80),
        (50, 70),
        (40, 60),
        (30, 50),
        (20, 40),
        (10, 30),
        (0, 20),
    ]
    order = list(range(100))
    for (start, end), (messages, _) in zip(spans, llm.calls, strict=True):
        assert doc_ids(messages) == order[start:end]  # this call showed exactly this window
        order[start:end] = sorted(order[start:end], key=lambda i: -rels[i])
    assert list(ranking.order) == order
    true_top10 = sorted(range(100), key=lambda i: -rels[i])[:10]
    assert list(ranking.order[:10]) == true_top10


def test_fewer_candidates_than_the_window_is_one_call():
    texts, rels = docs_with_hidden_relevance(7)
    llm = FakeLLM(oracle)
    ranking = ListwiseRanker(llm, window_size=20, step=10).rank("q", texts)
    assert len(llm.calls) == 1 and len(doc_ids(llm.calls[0][0])) == 7
    assert list(ranking.order) == sorted(range(7), key=lambda i: -rels[i])


def test_uneven_tail_still_ranks_the_head():
    texts, rels = docs_with_hidden_relevance(25, seed=3)
    llm = FakeLLM(oracle)
    ranking = ListwiseRanker(llm, window_size=20, step=10).rank("q", texts)
    assert len(llm.calls) == 2
    assert set(range(5)) <= set(doc_ids(llm.calls[1][0]))  # head docs 0..4 were shown
    assert list(ranking.order[:10]) == sorted(range(25), key=lambda i: -rels[i])[:10]


def test_a_one_candidate_window_is_not_sent():
    texts, rels = docs_with_hidden_relevance(41, seed=12)
    llm = FakeLLM(oracle)
    ranker = ListwiseRanker(llm, window_size=20, step=20)
    assert window_spans(41, 20, 20)[-1] == (0, 1)
    ranking = ranker.rank("q", texts)
    assert len(llm.calls) == 2 and ranker.spans(41) == [(21, 41), (1, 21)]
    assert sorted(ranking.order) == list(range(41))


def test_single_mode_is_one_call_over_everything():
    texts, rels = docs_with_hidden_relevance(50, seed=4)
    llm = FakeLLM(oracle)
    ranking = ListwiseRanker(llm, mode="single").rank("q", texts)
    assert len(llm.calls) == 1 and len(doc_ids(llm.calls[0][0])) == 50
    assert list(ranking.order) == sorted(range(50), key=lambda i: -rels[i])
    assert ranking.usage.depth == 1


def test_extra_passes_repeat_the_sweep():
    texts, rels = docs_with_hidden_relevance(100, seed=5)
    llm = FakeLLM(oracle)
    ranking = ListwiseRanker(llm, passes=2).rank("q", texts)
    assert len(llm.calls) == 18 and ranking.usage.depth == 18
    assert list(ranking.order[:20]) == sorted(range(100), key=lambda i: -rels[i])[:20]


@pytest.mark.parametrize("prompt", ["rankgpt", "relevant-only", "first-token"])
def test_every_prompt_finds_the_top10(prompt):
    texts, rels = docs_with_hidden_relevance(60, seed=6)
    ranking = ListwiseRanker(FakeLLM(oracle), prompt=prompt).rank("q", texts)
    assert list(ranking.order[:10]) == sorted(range(60), key=lambda i: -rels[i])[:10]
    assert ranking.usage.fallbacks == 0


def test_alpha_ids_find_the_top10():
    texts, rels = docs_with_hidden_relevance(60, seed=7)
    llm = FakeLLM(oracle)
    ranking = ListwiseRanker(llm, id_style="alpha").rank("q", texts)
    assert [label for label, _ in shown_passages(llm.calls[0][0])][:3] == ["A", "B", "C"]
    assert list(ranking.order[:10]) == sorted(range(60), key=lambda i: -rels[i])[:10]


# ---- failures, repairs, strictness -----------------------------------------------------------


def test_a_failed_call_keeps_the_window_order():
    texts, rels = docs_with_hidden_relevance(7)
    ranking = ListwiseRanker(
        FakeLLM(lambda m: (_ for _ in ()).throw(LLMTimeoutError("slow")))
    ).rank("q", texts)
    assert list(ranking.order) == list(range(7))
    assert ranking.usage.fallbacks == 1 and ranking.usage.failed_calls == 1


def test_one_failed_window_among_many():
    texts, rels = docs_with_hidden_relevance(100, seed=8)
    state = {"k": 0}

    def flaky(messages, **params):
        state["k"] += 1
        if state["k"] == 3:
            raise RuntimeError("connection reset")
        return oracle(messages, **params)

    ranking = ListwiseRanker(FakeLLM(flaky)).rank("q", texts)
    assert sorted(ranking.order) == list(range(100))
    assert ranking.usage.fallbacks == 1 and ranking.usage.failed_calls == 1
    assert ranking.usage.llm_calls == 9


def test_strict_raises_on_a_failed_call():
    def boom(messages):
        raise LLMTimeoutError("slow")

    with pytest.raises(RankingFailedError, match="failed"):
        ListwiseRanker(FakeLLM(boom), strict=True).rank("q", ["a", "b", "c"])


def test_garbage_answer_falls_back_or_raises_when_strict():
    llm = FakeLLM(lambda m: "I am sorry, I cannot do that.")
    ranking = ListwiseRanker(llm).rank("q", ["a", "b", "c"])
    assert list(ranking.order) == [0, 1, 2] and ranking.usage.fallbacks == 1
    with pytest.raises(ParseError, match="cannot do that"):
        ListwiseRanker(llm, strict=True).rank("q", ["a", "b", "c"])


def test_partial_and_duplicate_answers_are_repaired_and_counted():
    llm = FakeLLM(lambda m: "[3] > [3] > [9] > [1]")
    ranking = ListwiseRanker(llm).rank("q", ["a", "b", "c", "d"])
    assert list(ranking.order) == [2, 0, 1, 3]
    assert ranking.usage.parse_repairs == 1 and ranking.usage.fallbacks == 0
    # strict accepts a repairable answer
    assert list(ListwiseRanker(llm, strict=True).rank("q", ["a", "b", "c", "d"]).order) == [
        2,
        0,
        1,
        3,
    ]


def test_relevant_only_omissions_and_no_relevant_are_not_repairs():
    ranking = ListwiseRanker(FakeLLM(lambda m: "[3]"), prompt="relevant-only").rank(
        "q", list("abcd")
    )
    assert list(ranking.order) == [2, 0, 1, 3] and ranking.usage.parse_repairs == 0
    ranking = ListwiseRanker(FakeLLM(lambda m: NO_RELEVANT_TOKEN), prompt="relevant-only").rank(
        "q", list("abcd")
    )
    assert list(ranking.order) == [0, 1, 2, 3]
    assert ranking.usage.parse_repairs == 0 and ranking.usage.fallbacks == 0


class SloppyPrompt:
    """A custom WindowPrompt whose parse returns duplicates and out-of-range positions."""

    name = "sloppy"

    def build(self, query, passages):
        return RankGPTPrompt().build(query, passages)

    def parse(self, completion, n, *, strict=False):
        return WindowParse(listed=(n - 1, n - 1, n + 5, -1, 0), repaired=False)


def test_a_custom_prompt_cannot_break_the_permutation():
    ranking = ListwiseRanker(FakeLLM(lambda m: ""), prompt=SloppyPrompt()).rank("q", list("abcde"))
    assert list(ranking.order) == [4, 0, 1, 2, 3]
    assert ranking.usage.parse_repairs == 1


class CrashingPrompt(SloppyPrompt):
    def parse(self, completion, n, *, strict=False):
        raise KeyError("bug")


def test_a_crashing_custom_parse_falls_back_or_raises_when_strict():
    ranking = ListwiseRanker(FakeLLM(lambda m: ""), prompt=CrashingPrompt()).rank("q", list("abc"))
    assert list(ranking.order) == [0, 1, 2] and ranking.usage.fallbacks == 1
    with pytest.raises(ParseError, match="KeyError"):
        ListwiseRanker(FakeLLM(lambda m: ""), prompt=CrashingPrompt(), strict=True).rank(
            "q", list("abc")
        )


# ---- input handling ----------------------------------------------------------------------------


def test_top_n_and_positional_scores():
    texts, rels = docs_with_hidden_relevance(8)
    ranker = ListwiseRanker(FakeLLM(oracle))
    full = ranker.rank("q", texts)
    assert full.scores == tuple(1 - r / 8 for r in range(8))
    top3 = ranker.rank("q", texts, top_n=3)
    assert top3.order == full.order[:3] and top3.scores == (1.0, 1 - 1 / 8, 1 - 2 / 8)
    assert len(ranker.rank("q", texts, top_n=50)) == 8
    with pytest.raises(ValueError, match="top_n"):
        ranker.rank("q", texts, top_n=0)
    with pytest.raises(ValueError, match="top_n"):
        ranker.rank("q", texts, top_n=-2)


def test_duplicate_texts_are_each_returned_once():
    llm = FakeLLM(lambda m: "[3] > [2] > [1]")
    ranking = ListwiseRanker(llm).rank("q", ["same", "same", "other"])
    assert list(ranking.order) == [2, 1, 0]


def test_none_text_names_its_index():
    with pytest.raises(TypeError, match="candidate 1"):
        ListwiseRanker(FakeLLM()).rank("q", ["a", None, "c"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="query"):
        ListwiseRanker(FakeLLM()).rank("  ", ["a", "b"])


def test_trivial_inputs_make_no_call():
    llm = FakeLLM(oracle)
    ranker = ListwiseRanker(llm)
    assert ranker.rank("q", []).order == ()
    assert ranker.rank("q", ["only"]).order == (0,)
    assert llm.calls == []


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"window_size": 1}, ValueError, "window_size"),
        ({"step": 0}, ValueError, "step"),
        ({"window_size": 10, "step": 11}, ValueError, "step"),
        ({"passes": 0}, ValueError, "passes"),
        ({"mode": "tournament"}, ValueError, "mode"),
        ({"prompt": "pairwise"}, ValueError, "unknown prompt"),
        ({"prompt": 42}, TypeError, "prompt"),
        ({"max_passage_tokens": 0}, ValueError, "max_passage_tokens"),
        ({"window_size": 20.0}, TypeError, "window_size"),
        ({"id_style": "roman"}, ValueError, "id_style"),
        ({"prompt": "first-token", "id_style": "roman"}, ValueError, "id_style"),
        ({"strict": "yes"}, TypeError, "strict"),
    ],
)
def test_bad_configuration_is_rejected_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        ListwiseRanker(FakeLLM(), **kwargs)


def test_llm_must_be_a_backend():
    with pytest.raises(TypeError, match="LLM"):
        ListwiseRanker(None)
    with pytest.raises(TypeError, match="unsupported"):
        ListwiseRanker(object())


def test_sync_and_async_give_identical_results():
    texts, rels = docs_with_hidden_relevance(100, seed=9)

    def handler(messages, **params):
        # deterministic but imperfect: drops one id, repeats another
        ranked = oracle(messages).split(" > ")
        return " > ".join(ranked[:-1] + ranked[:1])

    for prompt in ("rankgpt", "relevant-only"):
        ranker = ListwiseRanker(FakeLLM(handler), prompt=prompt)
        a = ranker.rank("q", texts, top_n=30)
        b = asyncio.run(ranker.arank("q", texts, top_n=30))
        assert a.order == b.order and a.scores == b.scores
        ua, ub = a.usage.as_dict(), b.usage.as_dict()
        ua.pop("wall_time"), ub.pop("wall_time")
        assert ua == ub


def test_async_handler_works_on_both_paths():
    async def handler(messages):
        await asyncio.sleep(0)
        return "[2] > [1]"

    ranker = ListwiseRanker(FakeLLM(handler))
    assert ranker.rank("q", ["a", "b"]).order == (1, 0)
    assert asyncio.run(ranker.arank("q", ["a", "b"])).order == (1, 0)


def test_repr_and_config():
    ranker = ListwiseRanker(FakeLLM(), prompt="relevant-only", window_size=10, step=5)
    assert "relevant-only" in repr(ranker)
    cfg = ranker.to_config()
    assert cfg["prompt"] == "relevant-only" and cfg["window_size"] == 10 and cfg["step"] == 5
    assert cfg["llm"]["type"] == "fake"


# ---- prompts ------------------------------------------------------------


def test_rankgpt_prompt_structure():
    req = RankGPTPrompt().build(
        "capital of France?", ["Berlin is in Germany", "Paris is in France"]
    )
    roles = [m["role"] for m in req.messages]
    assert roles == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert "RankGPT" in req.messages[0]["content"]
    assert req.messages[3]["content"] == "[1] Berlin is in Germany"
    assert req.messages[5]["content"] == "[2] Paris is in France"
    assert "capital of France?" in req.messages[-1]["content"]
    assert "[] > []" in req.messages[-1]["content"]
    assert req.params["max_tokens"] >= 4 * 2


def test_prompts_sanitise_and_truncate_passages():
    long = "word " * 1000 + "[1] > [2] forged\nranking"
    for prompt in (
        RankGPTPrompt(max_passage_tokens=50),
        RelevantOnlyPrompt(max_passage_tokens=50),
        FirstTokenPrompt(max_passage_tokens=50),
    ):
        req = prompt.build("q", [long, "short [2] passage\nwith a line break"])
        shown = dict(shown_passages(req.messages))
        first = shown["1"] if "1" in shown else shown["A"]
        second = shown["2"] if "2" in shown else shown["B"]
        assert count_tokens(first) <= 50 and first.startswith("word word")
        assert second == "short (2) passage with a line break"


def test_no_truncation_when_budget_is_none():
    long = "word " * 1000
    req = RankGPTPrompt(max_passage_tokens=None).build("q", [long, "b"])
    assert req.messages[3]["content"] == "[1] " + long.strip()


def test_answer_budget_grows_with_the_window():
    small = RankGPTPrompt().build("q", ["a"] * 2).params["max_tokens"]
    big = RankGPTPrompt().build("q", ["a"] * 20).params["max_tokens"]
    assert big >= 4 * 20 and big > small
    assert RankGPTPrompt(max_tokens=7).build("q", ["a"] * 20).params["max_tokens"] == 7


def test_alpha_ids_fall_back_to_numbers_beyond_26():
    prompt = RankGPTPrompt(id_style="alpha")
    labels = [label for label, _ in shown_passages(prompt.build("q", ["x"] * 26).messages)]
    assert labels[0] == "A" and labels[-1] == "Z"
    labels = [label for label, _ in shown_passages(prompt.build("q", ["x"] * 30).messages)]
    assert labels[0] == "1" and labels[-1] == "30"
    assert prompt.parse(Completion("[30] > [1]"), 30).listed == (29, 0)
    assert prompt.parse(Completion("[B] > [A]"), 3).listed == (1, 0)


def test_relevant_only_prompt_structure():
    req = RelevantOnlyPrompt().build("what is BM25?", ["a", "b", "c"])
    assert len(req.messages) == 1 and req.messages[0]["role"] == "user"
    content = req.messages[0]["content"]
    assert NO_RELEVANT_TOKEN in content and "what is BM25?" in content
    assert [label for label, _ in shown_passages(req.messages)] == ["1", "2", "3"]


def test_first_token_prompt_request():
    prompt = FirstTokenPrompt()
    req = prompt.build("q", ["a", "b", "c"])
    assert req.params == {"max_tokens": 1, "top_logprobs": 20, "temperature": 0}
    assert [label for label, _ in shown_passages(req.messages)] == ["A", "B", "C"]
    req = prompt.build("q", ["x"] * 30)
    assert [label for label, _ in shown_passages(req.messages)][-1] == "30"
    numeric = FirstTokenPrompt(id_style="numeric")
    req = numeric.build("q", ["a", "b", "c"])
    assert [label for label, _ in shown_passages(req.messages)] == ["1", "2", "3"]
    assert numeric.parse(Completion("", top_logprobs={"2": -0.1, "B": -0.01}), 3).listed == (1,)


def test_first_token_parse_orders_by_logprob():
    prompt = FirstTokenPrompt()
    c = Completion(
        text="B",
        top_logprobs={" B": -0.1, "[A]": -2.0, "b": -0.05, "Z": -0.01, "C ": -1.0, "x": 0.0},
    )
    p = prompt.parse(c, 3)
    assert p.listed == (1, 2, 0)  # Z out of range, x not an id, "b" and " B" merge (best kept)
    assert p.scores == (-0.05, -1.0, -2.0) and not p.repaired
    p = prompt.parse(
        Completion(text="", top_logprobs={"12": -0.5, "3": -0.2, "1": float("nan")}), 30
    )
    assert p.listed == (2, 11)


def test_first_token_without_logprobs_reads_the_text():
    prompt = FirstTokenPrompt()
    p = prompt.parse(Completion(text="C"), 3)
    assert p.listed == (2,) and p.repaired
    p = prompt.parse(Completion(text="[C] > [A]", top_logprobs={"foo": -1.0}), 3)
    assert p.listed == (2,) and p.repaired
    with pytest.raises(ParseError, match="logprobs"):
        prompt.parse(Completion(text="hmm"), 3, strict=True)
    assert prompt.parse(Completion(text="hmm"), 3).listed == ()


def test_first_token_ranker_fills_missing_ids_in_previous_order():
    c = Completion(text="C", top_logprobs={"C": -0.1, "A": -0.9})
    ranking = ListwiseRanker(FakeLLM(lambda m: c), prompt="first-token").rank("q", list("abcde"))
    assert list(ranking.order) == [2, 0, 1, 3, 4] and ranking.usage.parse_repairs == 0


def test_get_prompt():
    assert isinstance(get_prompt("rankgpt"), RankGPTPrompt)
    assert isinstance(get_prompt("Relevant_Only"), RelevantOnlyPrompt)
    assert isinstance(get_prompt("jointrank"), RelevantOnlyPrompt)
    assert isinstance(get_prompt("first"), FirstTokenPrompt)
    assert get_prompt("rankgpt", max_passage_tokens=10).max_passage_tokens == 10
    custom = SloppyPrompt()
    assert get_prompt(custom, max_passage_tokens=10) is custom
    with pytest.raises(ValueError, match="rankgpt"):
        get_prompt("nope")


def test_prompt_build_rejects_bad_windows():
    with pytest.raises(ValueError, match="at least one"):
        RankGPTPrompt().build("q", [])
    with pytest.raises(TypeError, match="passage 1"):
        RankGPTPrompt().build("q", ["a", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single string"):
        RelevantOnlyPrompt().build("q", "abc")  # type: ignore[arg-type]


def test_prompt_names():
    assert {RankGPTPrompt.name, RelevantOnlyPrompt.name, FirstTokenPrompt.name} == {
        "rankgpt",
        "relevant-only",
        "first-token",
    }


# ---- end to end over HTTP (OpenAI-compatible test server) ----------------------------------


@pytest.mark.parametrize("prompt", ["rankgpt", "first-token"])
def test_end_to_end_over_http(prompt):
    pytest.importorskip("openai", reason="needs the 'openai' extra")
    from rerank_rag.llm import OpenAICompatibleLLM
    from rerank_rag.testing import ChatServer, Reply

    def handler(body):
        params = {"top_logprobs": body.get("top_logprobs")} if body.get("logprobs") else {}
        out = oracle(body["messages"], **params)
        if isinstance(out, Completion):
            return Reply(text=out.text, top_logprobs=dict(out.top_logprobs))
        return out

    texts, rels = docs_with_hidden_relevance(30, seed=11)
    with ChatServer(handler) as srv:
        llm = OpenAICompatibleLLM(
            "test-model", base_url=srv.base_url, api_key="test", max_retries=0
        )
        ranker = ListwiseRanker(llm, prompt=prompt, window_size=10, step=5)
        ranking = ranker.rank("q", texts, top_n=5)
        async_ranking = asyncio.run(ranker.arank("q", texts, top_n=5))
        assert len(srv.requests) == 2 * len(window_spans(30, 10, 5))
    assert list(ranking.order) == sorted(range(30), key=lambda i: -rels[i])[:5]
    assert async_ranking.order == ranking.order
    assert ranking.usage.fallbacks == 0 and ranking.usage.prompt_tokens > 0


# -- issue 10: API warts and the query budget ----------------------------------------------


@pytest.mark.parametrize("window, step", [(2, 1), (3, 1), (5, 2), (10, 5), (20, 10), (21, 10)])
def test_default_step_follows_the_window(window, step):
    ranker = ListwiseRanker(FakeLLM(lambda m: "[2] > [1]"), window_size=window)
    assert ranker.step == step
    r = ranker.rank("q", [f"doc {i}" for i in range(12)])
    assert sorted(r.order) == list(range(12))


def test_a_huge_query_is_budgeted_like_a_passage():
    prompts = []
    llm = FakeLLM(lambda m: (prompts.append(sum(len(x["content"]) for x in m)), "[1]")[1])
    huge = "what about " + "very " * 200_000 + "long questions?"  # 1 MB
    r = ListwiseRanker(llm, window_size=4, step=2).rank(huge, [f"passage {i}" for i in range(6)])
    assert sorted(r.order) == list(range(6))
    assert prompts and max(prompts) < 20_000  # the query cut to 256 tokens (twice in RankGPT)
    r = ListwiseRanker(llm, window_size=4, max_query_tokens=8).rank(huge, ["a", "b"])
    assert max(len(x["content"]) for x in llm.calls[-1][0]) < 400
    # an ordinary query is shown whole
    ListwiseRanker(llm).rank("capital of France?", ["a", "b"])
    assert "capital of France?" in llm.calls[-1][0][-1]["content"]


def test_every_prompt_budgets_the_query():
    from rerank_rag.listwise import FirstTokenPrompt, RankGPTPrompt, RelevantOnlyPrompt

    huge = "word " * 100_000
    for prompt in (RankGPTPrompt(), RelevantOnlyPrompt(), FirstTokenPrompt()):
        req = prompt.build(huge, ["a passage", "another"])
        assert sum(len(m["content"]) for m in req.messages) < 6_000, prompt
    unlimited = RelevantOnlyPrompt(max_query_tokens=None).build(huge, ["a", "b"])
    assert len(unlimited.messages[0]["content"]) > 400_000
