"""A deterministic listwise "oracle" answer for tests and examples.

:func:`keyword_oracle` reads the numbered passages (``[n] text`` at the start of a line,
as the RankGPT and relevant-only prompts show them) from the chat messages and answers
``[a] > [b] > ...`` with the passages containing ``keyword`` first, each group in
presentation order. Asked something without numbered passages (a decomposition prompt),
it answers with ``subquestions`` as a numbered list. The expected order of a test then
follows from its corpus, not from the code under test::

    llm = FakeLLM(lambda messages: keyword_oracle(messages, "seine"))
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["keyword_oracle"]

_PASSAGE = re.compile(r"(?m)^(?:\w+: )?\[(\d+)\]\s*(.*)$")  # "user: [1] ..." too


def keyword_oracle(
    messages: Sequence[Mapping[str, str]], keyword: str, subquestions: Sequence[str] = ()
) -> str:
    """Rank the passages that contain ``keyword`` (case-insensitive) first."""
    text = "\n".join(m["content"] for m in messages)
    found = {int(n): p for n, p in _PASSAGE.findall(text)}
    if not found:
        return "\n".join(f"{i}. {q}" for i, q in enumerate(subquestions, 1))
    kw = keyword.lower()
    labels = sorted(found, key=lambda n: (kw not in found[n].lower(), n))
    return " > ".join(f"[{n}]" for n in labels)
