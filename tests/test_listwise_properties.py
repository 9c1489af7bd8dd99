"""Property tests: whatever the LLM says, a listwise ranking is a permutation.

The fake LLM answers from a drawn script: random text, random id lists (duplicates,
out of range, 0, negative), letter ids, NO_RELEVANT, reasoning blocks, first-token
logprob maps with junk tokens, or an exception. Checked in both modes, with all three
prompts, sync and async.
"""

from __future__ import annotations

import asyncio
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_rag import Completion, FakeLLM, ParseError, RankingFailedError
from rerank_rag.listwise import ListwiseRanker, window_spans

RAISE = object()

SEPARATORS = st.sampled_from([" > ", ", ", " ", ">", "\n", " >> ", "; "])


@st.composite
def id_list_answer(draw):
    ids = draw(st.lists(st.integers(min_value=-3, max_value=60), max_size=30))
    alpha = draw(st.booleans())
    bracket = draw(st.sampled_from(["[{}]", "{}", "Passage {}", "({})", "［{}］"]))
    labels = [chr(64 + i) if alpha and 1 <= i <= 26 else str(i) for i in ids]
    text = draw(SEPARATORS).join(bracket.format(x) for x in labels)
    wrap = draw(
        st.sampled_from(
            ["{}", "Ranking: {}", "<think>[1] > [2]</think>{}", "{} because reasons 20", "```{}```"]
        )
    )
    return wrap.format(text)


@st.composite
def logprob_answer(draw):
    tokens = st.one_of(
        st.sampled_from(
            list("ABCDEFGHIJKLMNOPQRSTUVWXYZabc") + [" A", "[B]", "C ", "12", "3", "0", "-1"]
        ),
        st.text(max_size=4),
    )
    tops = draw(
        st.dictionaries(
            tokens, st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=25
        )
    )
    text = draw(st.sampled_from(["", "A", "B", "7", "junk"]))
    return Completion(text=text, top_logprobs=draw(st.sampled_from([tops, None])))


ANSWER = st.one_of(
    st.text(max_size=80),
    id_list_answer(),
    logprob_answer(),
    st.sampled_from(
        ["NO_RELEVANT_SNIPPETS", "", "<think>unfinished [2]", "[] > []", "999999999999999"]
    ),
    st.just(RAISE),
)


def scripted_llm(script):
    state = {"k": 0}

    def handler(messages, **params):
        answer = script[state["k"] % len(script)]
        state["k"] += 1
        if answer is RAISE:
            raise RuntimeError("backend exploded")
        return answer

    return FakeLLM(handler)


CONFIG = st.fixed_dictionaries(
    {
        "prompt": st.sampled_from(["rankgpt", "relevant-only", "first-token"]),
        "mode": st.sampled_from(["sliding", "single"]),
        "window_size": st.integers(min_value=2, max_value=12),
        "step_frac": st.floats(min_value=0.0, max_value=1.0),
        "passes": st.integers(min_value=1, max_value=2),
        "id_style": st.sampled_from([None, "alpha", "numeric"]),
    }
)


def make_ranker(cfg, llm, strict=False):
    w = cfg["window_size"]
    step = max(1, min(w, round(cfg["step_frac"] * w)))
    kw = {}
    if cfg["id_style"]:
        kw["id_style"] = cfg["id_style"]
    return ListwiseRanker(
        llm,
        prompt=cfg["prompt"],
        mode=cfg["mode"],
        window_size=w,
        step=step,
        passes=cfg["passes"],
        max_passage_tokens=20,
        strict=strict,
        **kw,
    )


def expected_calls(ranker, n):
    if n < 2:
        return 0
    return ranker.passes * len(ranker.spans(n))


def check_ranking(ranking, n, top_n):
    k = n if top_n is None else min(top_n, n)
    assert len(ranking.order) == k
    assert len(set(ranking.order)) == k
    assert all(0 <= i < n for i in ranking.order)
    assert all(a >= b for a, b in zip(ranking.scores, ranking.scores[1:], strict=False))
    assert all(not math.isnan(s) for s in ranking.scores)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=0, max_value=45),
    cfg=CONFIG,
    script=st.lists(ANSWER, min_size=1, max_size=6),
    top_n=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
    use_async=st.booleans(),
    dup_texts=st.booleans(),
)
def test_output_is_always_a_permutation(n, cfg, script, top_n, use_async, dup_texts):
    texts = ["same text" if dup_texts and i % 2 else f"passage {i} [1] > [2]" for i in range(n)]
    llm = scripted_llm(script)
    ranker = make_ranker(cfg, llm)
    if use_async:
        ranking = asyncio.run(ranker.arank("query", texts, top_n=top_n))
    else:
        ranking = ranker.rank("query", texts, top_n=top_n)
    check_ranking(ranking, n, top_n)
    calls = expected_calls(ranker, n)
    assert len(llm.calls) == calls and ranking.usage.llm_calls == calls
    assert ranking.usage.depth == calls  # every window is its own sequential round
    assert ranking.usage.fallbacks <= calls and ranking.usage.failed_calls <= calls


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=2, max_value=30),
    cfg=CONFIG,
    script=st.lists(ANSWER, min_size=1, max_size=4),
    use_async=st.booleans(),
)
def test_strict_mode_either_ranks_or_raises_a_documented_error(n, cfg, script, use_async):
    texts = [f"passage {i}" for i in range(n)]
    ranker = make_ranker(cfg, scripted_llm(script), strict=True)
    try:
        if use_async:
            ranking = asyncio.run(ranker.arank("query", texts))
        else:
            ranking = ranker.rank("query", texts)
    except (RankingFailedError, ParseError) as exc:
        assert str(exc)
        if RAISE not in script:
            assert isinstance(exc, ParseError)
        return
    check_ranking(ranking, n, None)
    assert ranking.usage.fallbacks == 0  # strict never silently falls back


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=40),
    cfg=CONFIG,
    script=st.lists(ANSWER.filter(lambda a: a is not RAISE), min_size=1, max_size=4),
)
def test_sync_and_async_agree(n, cfg, script):
    texts = [f"passage {i}" for i in range(n)]
    a = make_ranker(cfg, scripted_llm(script)).rank("query", texts)
    b = asyncio.run(make_ranker(cfg, scripted_llm(script)).arank("query", texts))
    assert a.order == b.order and a.scores == b.scores
    assert (a.usage.fallbacks, a.usage.parse_repairs) == (b.usage.fallbacks, b.usage.parse_repairs)


def test_llm_errors_count_as_failed_calls_and_fallbacks():
    ranker = ListwiseRanker(scripted_llm([RAISE]), window_size=4, step=2)
    ranking = ranker.rank("q", [f"p{i}" for i in range(10)])
    assert list(ranking.order) == list(range(10))
    calls = len(window_spans(10, 4, 2))
    assert ranking.usage.failed_calls == calls == ranking.usage.fallbacks


@settings(max_examples=400, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=600),
    w=st.integers(min_value=1, max_value=60),
    data=st.data(),
)
def test_window_spans_properties(n, w, data):
    s = data.draw(st.integers(min_value=1, max_value=w))
    spans = window_spans(n, w, s)
    if n == 0:
        assert spans == []
        return
    # count formula
    assert len(spans) == (1 if n <= w else 1 + math.ceil((n - w) / s))
    assert spans[0][1] == n and spans[-1][0] == 0  # first ends at n, last starts at 0
    covered = set()
    for i, (start, end) in enumerate(spans):
        assert 0 <= start < end <= n and end - start <= w
        covered.update(range(start, end))
        if i:
            prev_start, prev_end = spans[i - 1]
            assert end == prev_end - s  # back to front, one step at a time
            assert start < prev_start  # never a redundant window
            assert start == max(0, end - w)  # full windows except the clamped last one
    assert covered == set(range(n))
