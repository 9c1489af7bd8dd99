"""The question decomposer: parsing many output shapes, gate, cache, failures, sync == async."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rerank_rag import FakeLLM, LLMConfigurationError, LLMError, ParseError
from rerank_rag.decompose import (
    Decomposer,
    Decomposition,
    dedupe_subquestions,
    parse_subquestions,
    question_key,
)

Q = "Who was the first president of the association that published the Journal of Psychotherapy Integration?"
S1 = "Which association published the Journal of Psychotherapy Integration?"
S2 = "Who was the first president of the American Psychological Association?"


@pytest.mark.parametrize(
    "text",
    [
        f"1. {S1}\n2. {S2}",
        f"1) {S1}\n2) {S2}",
        f"- {S1}\n- {S2}",
        f"* {S1}\n* {S2}",
        f"\u2022 {S1}\n\u2022 {S2}",
        f"[1] {S1}\n[2] {S2}",
        f"Q1: {S1}\nQ2: {S2}",
        f"**Sub-question 1:** {S1}\n**Sub-question 2:** {S2}",
        f"Sure! Here are the sub-questions:\n\n1. {S1}\n2. {S2}\n\nLet me know if you need more help.",
        f"Here they are: 1. {S1} 2. {S2}",
        f'["{S1}", "{S2}"]',
        f'```json\n{{"sub_questions": ["{S1}", "{S2}"]}}\n```',
        f'{{"questions": [{{"question": "{S1}"}}, {{"question": "{S2}"}}]}}',
        f"{S1}\n{S2}",
        # repeats (spacing, final "?") and the original question are dropped
        f"1. {S1}\n2. {S2}\n3. {S1.rstrip('?').replace(' ', '  ')}\n4. {Q}",
        f"Sub-questions:\n1. {S1.rstrip('?')}\n2. {S2.rstrip('?')}",  # no question marks
    ],
)
def test_parse_many_output_shapes(text):
    got = parse_subquestions(text, question=Q)
    assert [g.rstrip("?") for g in got] == [S1.rstrip("?"), S2.rstrip("?")]


@pytest.mark.parametrize(
    "text",
    ["", "   \n ", "I'm sorry, I cannot help with that.", "asdf qwer zxcv", "{not json", "[]",
     '{"answer": 42}', "1.\n2.\n3."],
)
def test_garbage_gives_no_subquestions(text):
    assert parse_subquestions(text, question=Q) == []


def test_parse_caps_at_max_and_keeps_order():
    text = "\n".join(f"{i}. What is item number {i}?" for i in range(1, 9))
    got = parse_subquestions(text, max_subquestions=5)
    assert got == [f"What is item number {i}?" for i in range(1, 6)]


def test_decomposer_returns_subquestions_and_usage():
    llm = FakeLLM(lambda m: f"1. {S1}\n2. {S2}")
    d = Decomposer(llm).decompose(Q)
    assert isinstance(d, Decomposition)
    assert d.sub_questions == (S1, S2)
    assert d.queries == (Q, S1, S2)
    assert not d.from_cache and not d.skipped_by_gate
    assert d.usage.llm_calls == 1 and d.usage.depth == 1 and d.usage.prompt_tokens > 0
    # the prompt carries the question and the bound m
    prompt = llm.calls[0][0][-1]["content"]
    assert Q in prompt and "at most 5" in prompt


def test_max_subquestions_is_enforced_and_validated():
    llm = FakeLLM(lambda m: "\n".join(f"- What is fact {i}?" for i in range(10)))
    assert len(Decomposer(llm, max_subquestions=3).decompose(Q).sub_questions) == 3
    with pytest.raises(ValueError, match="max_subquestions"):
        Decomposer(llm, max_subquestions=0)


def test_empty_question_is_a_clear_error():
    dec = Decomposer(FakeLLM())
    with pytest.raises(ValueError, match="non-empty"):
        dec.decompose("   ")
    with pytest.raises(TypeError, match="string"):
        dec.decompose(None)  # type: ignore[arg-type]


def test_garbage_output_means_no_decomposition_or_parse_error_when_strict():
    llm = FakeLLM(lambda m: "I like turtles.")
    d = Decomposer(llm).decompose(Q)
    assert d.sub_questions == () and d.usage.fallbacks == 1 and d.raw == "I like turtles."
    with pytest.raises(ParseError):
        Decomposer(llm, strict=True).decompose(Q)


def test_restating_the_question_is_not_a_parse_error():
    llm = FakeLLM(lambda m: Q)
    d = Decomposer(llm, strict=True).decompose(Q)
    assert d.sub_questions == () and d.usage.fallbacks == 0


def test_failed_call_degrades_or_raises_when_strict():
    def boom(messages):
        raise LLMError("server down")

    d = Decomposer(FakeLLM(boom)).decompose(Q)
    assert d.sub_questions == () and d.usage.failed_calls == 1 and d.usage.fallbacks == 1
    assert "server down" in (d.error or "")
    with pytest.raises(LLMError, match="server down"):
        Decomposer(FakeLLM(boom), strict=True).decompose(Q)


def test_cache_by_normalised_question_skips_the_llm():
    llm = FakeLLM(lambda m: f"1. {S1}\n2. {S2}")
    dec = Decomposer(llm)
    first = dec.decompose(Q)
    second = dec.decompose("  " + Q.rstrip("?").replace(" ", "\n ") + " ?")
    assert len(llm.calls) == 1
    assert second.from_cache and second.sub_questions == first.sub_questions
    assert second.usage.llm_calls == 0 and second.usage.cache_hits == 1
    assert dec.cache_info()["hits"] == 1
    dec.clear_cache()
    dec.decompose(Q)
    assert len(llm.calls) == 2


def failing_until_healed(message):
    """A FakeLLM raising a transient ``LLMError(message)`` while ``state["fail"]``, then
    answering one sub-question (S1); and that ``state``."""
    state = {"fail": True}

    def flaky(messages):
        if state["fail"]:
            raise LLMError(message)
        return f"- {S1}"

    return FakeLLM(flaky), state


def test_cache_can_be_disabled_and_failures_are_not_cached():
    llm, state = failing_until_healed("transient")
    dec = Decomposer(llm)
    assert dec.decompose(Q).sub_questions == ()
    state["fail"] = False
    assert dec.decompose(Q).sub_questions == (S1,)  # retried, not served from cache
    nocache = Decomposer(FakeLLM(lambda m: f"- {S1}"), cache=False)
    nocache.decompose(Q)
    assert not nocache.decompose(Q).from_cache


def test_cache_is_lru_bounded():
    llm = FakeLLM(lambda m: f"- {S1}")
    dec = Decomposer(llm, cache=2)
    for q in ("question one?", "question two?", "question three?"):
        dec.decompose(q)
    assert dec.cache_info()["size"] == 2
    dec.decompose("question one?")  # evicted: asks again
    assert len(llm.calls) == 4


def test_cache_is_thread_safe():
    llm = FakeLLM(lambda m: f"- {S1}")
    dec = Decomposer(llm)
    questions = [f"question number {i}?" for i in range(20)]
    errors = []

    def work():
        try:
            for q in questions:
                assert dec.decompose(q).sub_questions == (S1,)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert dec.cache_info()["size"] == 20


def test_llm_gate_skips_single_hop_questions():
    def handler(messages):
        text = messages[-1]["content"]
        if "SINGLE or MULTI" in text:
            return "MULTI" if "president" in text else "SINGLE"
        return f"1. {S1}\n2. {S2}"

    llm = FakeLLM(handler)
    dec = Decomposer(llm, gate="llm")
    single = dec.decompose("What is the capital of France?")
    assert single.skipped_by_gate and single.sub_questions == ()
    assert single.usage.llm_calls == 1
    multi = dec.decompose(Q)
    assert not multi.skipped_by_gate and multi.sub_questions == (S1, S2)
    assert multi.usage.llm_calls == 2 and multi.usage.depth == 2


def test_unreadable_gate_answer_decomposes_anyway():
    def handler(messages):
        if "SINGLE or MULTI" in messages[-1]["content"]:
            return "hmm"
        return f"- {S1}"

    d = Decomposer(FakeLLM(handler), gate="llm").decompose(Q)
    assert d.sub_questions == (S1,) and d.usage.fallbacks == 1


def test_callable_gate_sync_and_async():
    llm = FakeLLM(lambda m: f"- {S1}")
    dec = Decomposer(llm, gate=lambda q: "president" in q)
    assert dec.decompose("capital of France?").skipped_by_gate
    assert dec.decompose(Q).sub_questions == (S1,)
    assert len(llm.calls) == 1

    async def agate(q):
        return False

    d = asyncio.run(Decomposer(llm, gate=agate).adecompose(Q))
    assert d.skipped_by_gate and len(llm.calls) == 1
    with pytest.raises(ValueError, match="gate"):
        Decomposer(llm, gate="sometimes")


def test_async_matches_sync():
    outputs = [f"1. {S1}\n2. {S2}", "garbage", f'["{S2}"]', ""]
    for out in outputs:
        sync = Decomposer(FakeLLM(lambda m, o=out: o)).decompose(Q)
        asy = asyncio.run(Decomposer(FakeLLM(lambda m, o=out: o)).adecompose(Q))
        assert sync.sub_questions == asy.sub_questions
        assert sync.usage.fallbacks == asy.usage.fallbacks


def test_custom_prompt_template_and_callable():
    llm = FakeLLM(lambda m: f"- {S1}")
    Decomposer(llm, prompt="Split ({max_subquestions}): {question}", system_prompt=None).decompose(Q)
    msgs = llm.calls[-1][0]
    assert len(msgs) == 1 and msgs[0]["content"] == f"Split (5): {Q}"
    Decomposer(llm, prompt=lambda q, m: [{"role": "user", "content": q}]).decompose(Q)
    assert llm.calls[-1][0] == ({"role": "user", "content": Q},)


# -- item 4: keys and de-duplication keep the meaning ---------------------------------


def test_cache_key_keeps_punctuation_and_operators():
    llm = FakeLLM(lambda m: "1. " + m[-1]["content"].rsplit("Question: ", 1)[1] + " (sub)?")
    dec = Decomposer(llm)
    plus = dec.decompose("What is C++?")
    c = dec.decompose("What is C?")  # 0.1 answered this from the cache of "What is C++?"
    assert not c.from_cache and len(llm.calls) == 2
    assert plus.sub_questions == ("What is C++? (sub)?",)
    assert c.sub_questions == ("What is C? (sub)?",)
    assert not dec.decompose("What is 1-1?").from_cache
    assert not dec.decompose("What is 1+1?").from_cache
    assert dec.decompose("What  is C ?").from_cache  # only spacing and the final "?" differ


def test_case_is_kept():
    assert question_key("Who founded US Steel?") != question_key("who founded us steel?")
    assert question_key("What is C ?") == question_key("What is C") == question_key(" What is\tC?")


def test_dedupe_keeps_questions_that_differ_in_operators_or_symbols():
    subs = ["What is 1+1?", "What is 1-1?", "What is C?", "What is C++?", "What is C#?",
            "What is 1+1 ?"]
    # 0.1 kept only "What is 1+1?" and "What is C?"
    assert dedupe_subquestions(subs) == subs[:5]
    assert parse_subquestions("\n".join(f"{i}. {s}" for i, s in enumerate(subs, 1)),
                              max_subquestions=None) == subs[:5]


def test_a_quoted_title_with_a_question_mark_is_not_cut():
    text = (
        '1. Who hosted "Who Wants to Be a Millionaire?" in the UK?\n'
        "2. Who Framed Roger Rabbit? was released in which year?"
    )
    # 0.1: ['Who hosted "Who Wants to Be a Millionaire?', '" in the UK?', ...]
    assert parse_subquestions(text) == [
        'Who hosted "Who Wants to Be a Millionaire?" in the UK?',
        "Who Framed Roger Rabbit? was released in which year?",
    ]


def test_several_numbered_items_on_one_line_are_split_but_numbers_in_text_are_not():
    assert parse_subquestions("1. Who won the 2. Bundesliga in 1999? 2. Who coached them?") == [
        "Who won the 2. Bundesliga in 1999?",
        "Who coached them?",
    ]
    assert parse_subquestions("What is 1. FC Köln? Where does it play?") == [
        "What is 1. FC Köln? Where does it play?"
    ]


def test_parser_is_linear_on_adversarial_output():
    import time

    blobs = [
        "1. " + "a? 2. " * 50_000,
        "?" * 1_000_000,
        "```" * 100_000,
        "Here: " + " ".join(f"{i % 99 + 1}." for i in range(100_000)),
        "[" * 100_000 + "]" * 100_000,
        "\n".join(["- " + " " * 50 + "x?"] * 10_000),
    ]
    for blob in blobs:  # 0.2-1 MB each; a quadratic step would take minutes
        t0 = time.perf_counter()
        parse_subquestions(blob)
        assert time.perf_counter() - t0 < 1.0


# -- item 5: a permanent LLM error is raised, never fallen back from ------------------


def test_configuration_error_raises_even_when_not_strict():
    def unauthorised(messages):
        raise LLMConfigurationError("401: invalid api key", status=401)

    for dec in (Decomposer(FakeLLM(unauthorised)), Decomposer(FakeLLM(unauthorised), gate="llm")):
        with pytest.raises(LLMConfigurationError, match="invalid api key"):
            dec.decompose(Q)
        with pytest.raises(LLMConfigurationError):
            asyncio.run(dec.adecompose(Q))


def test_transient_failure_is_logged_once_and_not_cached(caplog):
    llm, state = failing_until_healed("server busy")
    dec = Decomposer(llm)
    with caplog.at_level("WARNING", logger="rerank_rag.decompose"):
        d = dec.decompose(Q)
    assert d.error == "LLMError: server busy" and d.usage.fallbacks == 1
    [record] = caplog.records
    assert "server busy" in record.getMessage()
    state["fail"] = False
    assert dec.decompose(Q).sub_questions == (S1,)


def test_unusable_answer_is_recorded_and_not_cached():
    answers = iter(["I like turtles.", f"- {S1}"])
    llm = FakeLLM(lambda m: next(answers))
    dec = Decomposer(llm)
    d = dec.decompose(Q)
    assert d.sub_questions == () and "ParseError" in (d.error or "")
    assert dec.decompose(Q).sub_questions == (S1,)


def test_async_gate_in_sync_decompose_inside_a_running_loop():
    llm = FakeLLM(lambda m: f"- {S1}")

    async def agate(q):
        await asyncio.sleep(0)
        return True

    async def main():
        return Decomposer(llm, gate=agate).decompose(Q)

    assert asyncio.run(main()).sub_questions == (S1,)


def test_a_failing_callable_gate_degrades_or_raises():
    llm = FakeLLM(lambda m: f"- {S1}")

    def gate(q):
        raise ConnectionError("classifier down")

    d = Decomposer(llm, gate=gate).decompose(Q)
    assert d.sub_questions == (S1,) and d.usage.fallbacks == 1  # decomposed anyway
    with pytest.raises(ConnectionError):
        Decomposer(llm, gate=gate, strict=True).decompose(Q)
