"""parse_permutation: every parsing rule, one test each (ids are 1-based in, 0-based out)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_rag import ParseError, WindowParse
from rerank_rag.listwise import parse_permutation
from rerank_rag.listwise._parse import fold_lookalikes, strip_reasoning


def listed(text, n=5, **kw):
    return list(parse_permutation(text, n, **kw).listed)


# ---- formats ---------------------------------------------------------------------


def test_bracketed_chain_full_answer_is_not_repaired():
    p = parse_permutation("[3] > [1] > [2]", 3)
    assert p == WindowParse(listed=(2, 0, 1), repaired=False)


def test_bare_formats():
    assert listed("3, 1, 2", 3) == [2, 0, 1]
    assert listed("3 > 1 > 2", 3) == [2, 0, 1]
    assert listed("3 1 2", 3) == [2, 0, 1]
    assert listed("3>1>2", 3) == [2, 0, 1]
    assert listed("3 → 1 → 2", 3) == [2, 0, 1]
    assert listed("3", 3) == [2]


def test_labelled_ids():
    assert listed("Passage 3 > Passage 1 > Passage 2", 3) == [2, 0, 1]
    assert listed("Snippet 2, Snippet 3", 3) == [1, 2]
    assert listed("Document #3 is best, then doc 1", 3) == [2, 0]
    assert listed("passage (2) then passage (1)", 3) == [1, 0]


def test_bracketed_ids_inside_chatty_text_beat_other_numbers():
    text = "Here are the 20 passages ranked by relevance: [3] > [1] > [2]. Hope this helps!"
    assert listed(text, 25) == [2, 0, 1]


def test_bare_chain_inside_chatty_text_beats_other_numbers():
    text = "Sure! I looked at all 20 passages. Ranking: 3 > 1 > 2"
    assert listed(text, 25) == [2, 0, 1]
    text = "I ranked 20 documents: 3, 1, 2"  # a label with a number is not enough
    assert listed(text, 25) == [2, 0, 1]


def test_numbered_list_answer():
    assert listed("1. 3\n2. 1\n3. 2", 3) == [2, 0, 1]
    assert listed("1) [3]\n2) [1]", 3) == [2, 0]
    assert listed("1. Passage 3\n2. Passage 1", 3) == [2, 0]


def test_json_lists():
    assert listed("[3, 1, 2]", 3) == [2, 0, 1]
    assert listed('{"ranking": ["3", "1", "2"]}', 3) == [2, 0, 1]
    assert listed('```json\n{"ranked_ids": [2,3,1]}\n```', 3) == [1, 2, 0]


def test_multi_digit_ids_are_not_read_digit_by_digit():
    assert listed("[11] > [1] > [12]", 12) == [10, 0, 11]
    assert listed("11 > 1 > 12", 12) == [10, 0, 11]


# ---- repairs -------------------------------------------------------------------------


def test_duplicates_keep_the_first_and_mark_repaired():
    p = parse_permutation("[2] > [1] > [2] > [3]", 3)
    assert p.listed == (1, 0, 2) and p.repaired


def test_out_of_range_and_zero_are_dropped_and_mark_repaired():
    p = parse_permutation("[0] > [4] > [2] > [99] > [1] > [3]", 3)
    assert p.listed == (1, 0, 2) and p.repaired


def test_missing_ids_mark_repaired_unless_omission_is_allowed():
    p = parse_permutation("[2] > [1]", 3)
    assert p.listed == (1, 0) and p.repaired
    assert p.full_order(3) == [1, 0, 2]  # the caller appends missing ids in old order
    q = parse_permutation("[2] > [1]", 3, expect_all=False)
    assert q.listed == (1, 0) and not q.repaired


def test_huge_numbers_do_not_crash():
    p = parse_permutation("[" + "9" * 5000 + "] > [1]", 3)
    assert p.listed == (0,) and p.repaired
    assert parse_permutation("9" * 5000, 3).listed == ()


def test_negative_looking_ids_are_read_as_numbers_and_range_checked():
    assert listed("[-1] > [2]", 3) == [1]


# ---- reasoning blocks ---------------------------------------------------------------


def test_think_blocks_are_removed():
    assert listed("<think>maybe [1] > [2]? no, 3 first</think>\n[3] > [2] > [1]", 3) == [2, 1, 0]
    assert listed("<THINKING>[1]</THINKING>[2] > [1]", 3) == [1, 0]


def test_unclosed_leading_think_block_is_dropped_up_to_its_end():
    # chat templates that open <think> in the prompt: the output starts inside it
    assert listed("passage [1] looks good but [2]...\n</think>\n[3] > [1]", 3) == [2, 0]


def test_unclosed_trailing_think_block_is_not_an_answer():
    p = parse_permutation("<think>I need to compare [1] and [2] and then", 3)
    assert p.listed == () and p.repaired
    with pytest.raises(ParseError):
        parse_permutation("<think>I need to compare [1] and [2] and then", 3, strict=True)


def test_strip_reasoning_keeps_plain_text():
    assert strip_reasoning("[1] > [2]") == "[1] > [2]"
    assert strip_reasoning("a <b> c") == "a <b> c"


# ---- look-alike characters ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "［３］ ＞ ［１］ ＞ ［２］",  # fullwidth digits and brackets
        "【3】>【1】>【2】",  # lenticular brackets
        "³ > ¹ > ²",  # superscript
        "₃ > ₁ > ₂",  # subscript
        "③ > ① > ②",  # circled
        "③①②",  # circled numbers stand alone: not read as 312
        "⑶ ⑴ ⑵",  # parenthesized
        "𝟑 > 𝟏 > 𝟐",  # mathematical bold
        "٣ > ١ > ٢",  # Arabic-Indic
        "३ > १ > २",  # Devanagari
        "[3] › [1] › [2]",
    ],
)
def test_lookalike_digits(text):
    assert listed(text, 3) == [2, 0, 1]


def test_lookalike_multi_digit_numbers():
    assert listed("［１２］ ＞ ［３］", 12) == [11, 2]
    assert listed("¹² > ³", 12) == [11, 2]
    assert listed("⑫ > ③", 12) == [11, 2]


def test_fold_lookalikes_leaves_other_text_alone():
    assert fold_lookalikes("plain ascii [1]") == "plain ascii [1]"
    assert fold_lookalikes("½ Ⅻ café") == "½ Ⅻ café"


# ---- letter ids --------------------------------------------------------------------------


def test_alpha_formats():
    assert listed("[B] > [A] > [C]", 3, id_style="alpha") == [1, 0, 2]
    assert listed("B > A > C", 3, id_style="alpha") == [1, 0, 2]
    assert listed("b, a, c", 3, id_style="alpha") == [1, 0, 2]
    assert listed("B A C", 3, id_style="alpha") == [1, 0, 2]
    assert listed('["B", "A"]', 3, id_style="alpha") == [1, 0]
    assert listed("Passage C is the best, then Passage A", 3, id_style="alpha") == [2, 0]
    assert listed("Ranking: B > C > A. I put B first because", 3, id_style="alpha") == [1, 2, 0]
    assert listed("［Ｂ］ > ［Ａ］", 3, id_style="alpha") == [1, 0]


def test_alpha_does_not_read_words_as_ids():
    p = parse_permutation("I think A is good", 3, id_style="alpha")
    assert p.listed == () and p.repaired


def test_alpha_out_of_range_letters_are_dropped():
    p = parse_permutation("[D] > [B] > [A] > [C]", 3, id_style="alpha")
    assert p.listed == (1, 0, 2) and p.repaired


def test_alpha_falls_back_to_numbers_and_marks_repaired():
    p = parse_permutation("[2] > [1] > [3]", 3, id_style="alpha")
    assert p.listed == (1, 0, 2) and p.repaired


# ---- nothing relevant, garbage, strict -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "NO_RELEVANT_SNIPPETS_FOUND",
        "no_relevant_snippets",
        "NO RELEVANT PASSAGES.",
        "`NO_RELEVANT`",
    ],
)
def test_no_relevant_answer_is_empty_and_not_malformed(text):
    p = parse_permutation(text, 5, expect_all=False)
    assert p == WindowParse(listed=(), repaired=False)
    assert parse_permutation(text, 5, strict=True).listed == ()


def test_ids_win_over_a_no_relevant_phrase():
    assert listed("[2] is the only one, there is no relevant other passage", 3) == [1]
    assert listed("No relevant passage except 2, 1", 3, expect_all=False) == [1, 0]


def test_stray_numbers_do_not_override_a_no_relevant_answer():
    p = parse_permutation("There are no relevant passages among the 20 I was given.", 20)
    assert p == WindowParse(listed=(), repaired=False)


@pytest.mark.parametrize(
    "text", ["", "   ", "I cannot help with that.", "<|endoftext|>", "[] > []", None]
)
def test_garbage_gives_an_empty_repaired_parse(text):
    p = parse_permutation(text, 5)
    assert p.listed == () and p.repaired


def test_strict_raises_with_an_excerpt():
    with pytest.raises(ParseError, match="I cannot rank"):
        parse_permutation("I cannot rank these passages, sorry." * 20, 5, strict=True)
    with pytest.raises(ParseError):
        parse_permutation("[7] > [8]", 5, strict=True)  # all out of range


def test_strict_accepts_repairable_answers():
    p = parse_permutation("[2] > [2] > [9] > [1]", 3, strict=True)
    assert p.listed == (1, 0) and p.repaired


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must"):
        parse_permutation("[1]", -1)
    with pytest.raises(ValueError, match="id_style"):
        parse_permutation("[1]", 3, id_style="roman")
    assert parse_permutation("[1] > [2]", 0) == WindowParse(listed=())


# ---- general guarantees ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=200),
    n=st.integers(min_value=0, max_value=40),
    style=st.sampled_from(["numeric", "alpha"]),
)
def test_any_text_gives_unique_in_range_positions(text, n, style):
    p = parse_permutation(text, n, id_style=style)
    assert len(set(p.listed)) == len(p.listed)
    assert all(0 <= i < n for i in p.listed)
    full = p.full_order(n)
    assert sorted(full) == list(range(n))


@settings(max_examples=200, deadline=None)
@given(perm=st.permutations(list(range(1, 21))), sep=st.sampled_from([" > ", ", ", " ", ">", "\n"]))
def test_well_formed_answers_round_trip(perm, sep):
    bracketed = sep.join(f"[{i}]" for i in perm)
    bare = sep.join(str(i) for i in perm)
    for text in (bracketed, bare, "Ranking: " + bracketed):
        p = parse_permutation(text, 20)
        assert p.listed == tuple(i - 1 for i in perm) and not p.repaired


@pytest.mark.parametrize(
    "text, expected",
    [("Answer: B", (1,)), ("The answer is C.", (2,)), ("Ranking: (A)", (0,)), ("answer:B", (1,))],
)
def test_a_single_letter_after_an_answer_label_is_read_like_a_number(text, expected):
    parsed = parse_permutation(text, 3, id_style="alpha")
    assert parsed.listed[: len(expected)] == expected
    numeric = parse_permutation(text.replace("B", "2").replace("C", "3").replace("A)", "1)"), 3)
    assert numeric.listed[:1] == expected[:1]
