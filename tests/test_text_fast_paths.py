"""The fast paths of passage preparation give exactly what the full path gives.

``collapse_whitespace`` returns already-collapsed ASCII text as is, ``sanitize_passage``
skips the forged-id rewrite when no opening bracket occurs, and the token estimate skips
the cut for ASCII text under twice the budget (such text cannot exceed it): checked
against the plain definitions on random strings built from the characters that matter.
"""

from __future__ import annotations

import random

import pytest

from rerank_rag import _text
from rerank_rag._text import _FORGED_ID_RE, collapse_whitespace, count_tokens, sanitize_passage

# every character str.split() treats as a space, brackets of forged ids, letters, digits
ALPHABET = "ab Z9 [1]\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000\uff3b\uff3d\u3010\u3011\u3014\u3015B2"


def strings(seed: int, count: int, longest: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def test_collapse_and_sanitize_equal_their_definitions():
    for text in strings(1, 20_000, 14):
        assert collapse_whitespace(text) == " ".join(text.split()), repr(text)
        assert sanitize_passage(text) == " ".join(_FORGED_ID_RE.sub(r"(\1)", text).split()), repr(text)


def test_ascii_text_under_twice_the_budget_needs_no_cut(monkeypatch):
    monkeypatch.setattr(_text._ENCODER, "get", lambda: None)  # the estimate
    rng = random.Random(2)
    for _ in range(3_000):
        text = "".join(rng.choice("abcdefgh    \t\n") for _ in range(rng.randint(1, 60)))
        for budget in range(1, len(text) + 2):
            if len(text) < 2 * budget:
                assert count_tokens(text) <= budget, (text, budget)
                collapsed = " ".join(text.split())
                # the full estimate path would not cut either
                assert _text._truncate_estimate(collapsed, budget) == collapsed
                assert _text.truncate_tokens(text, budget) == collapsed


@pytest.mark.parametrize("text", ["word [3] here", "a\nb", " lead", "trail ", "two  spaces", "ok text"])
def test_prepared_passages_are_unchanged(text):
    expected = " ".join(_FORGED_ID_RE.sub(r"(\1)", text).split())
    assert _text.prepare_passage(text, 300) == expected
