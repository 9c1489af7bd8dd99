"""First-stage evidence shown next to a passage (InsertRank, Seetharaman et al. 2025).

:class:`EvidenceText` is a ``str`` (the passage text, unchanged) that also carries a short
note such as ``"first-stage rank: 3 of 100"``. Because it *is* the text, it travels through
any ranker untouched (rankers only pass texts on to their prompts), and the prompts that
know about it render the note after the truncated passage::

    [3] The Eiffel Tower is in Paris ... (first-stage rank: 3 of 100)

Prompts that do not know about it see plain text, and every non-LLM component (scorers,
tokenizers, caches keyed by text) treats it as the plain string it is. It is attached by
:class:`rerank_rag.compose.FirstStageEvidence`; nothing else creates it.

A prompt renders the note with :func:`with_evidence` (the prompts of rerank-rag all do).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvidenceText", "with_evidence", "evidence_of"]


class EvidenceText(str):
    """A passage text with a first-stage note (``.evidence``) attached.

    Equal to, hashed like and printed as the plain text; only ``.evidence`` differs.
    """

    __slots__ = ("evidence",)
    evidence: str

    def __new__(cls, text: str, evidence: str) -> EvidenceText:
        obj = super().__new__(cls, text)
        obj.evidence = " ".join(str(evidence).split())  # one line, no forged line breaks
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # pickle / deepcopy keep the note
        return (EvidenceText, (str(self), self.evidence))


def evidence_of(passage: object) -> str | None:
    """The note attached to ``passage`` (``None`` for a plain string)."""
    note = getattr(passage, "evidence", None)
    return note if isinstance(note, str) and note else None


def with_evidence(shown: str, passage: object) -> str:
    """``shown`` (the prepared, truncated passage) followed by ``passage``'s note, if any.

    The note goes *after* the text so truncation never cuts it and the passage still
    starts right after its id.
    """
    if type(passage) is str:  # the common case: no note
        return shown
    note = evidence_of(passage)
    return f"{shown} ({note})" if note else shown
