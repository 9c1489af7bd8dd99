"""Score -> relevance: one calibrated value in [0, 1] per ranked candidate.

:attr:`Ranking.relevance <rerank_rag.Ranking>` is what HTTP clients threshold on (Dify's
``score_threshold``, Open WebUI's relevance threshold) and what a dynamic cut-off keeps,
so a threshold must mean the same thing whatever the ranker: **a value >= 0.5 means the
ranker judged the candidate relevant**, and the values never increase along the order.
Each ranker maps its own evidence:

=========================  ==============================================================
ranker                     relevance
=========================  ==============================================================
relevant-only prompt       :func:`judged`: candidates the LLM listed get [0.5, 1], those
(listwise, JointRank,      it left out get [0, 0.5) (listwise, TDPart: the last window
TDPart)                    that saw the candidate decides; JointRank: listed in more than
                           half of the blocks that held it and were answered)
pairwise, setwise,         each ranker documents its mapping (see docs/rankers.md); the
TourRank                   positional ones say ``judges_relevance = False``
LLM yes/no                 :func:`from_log_odds`: P(yes) = sigmoid(log P(yes) - log P(no));
                           a failed call gets 0
MiniLM / bi-encoder        :func:`from_cosine`: a fixed logistic map of the cosine,
                           0.5 at ``COSINE_MIDPOINT`` (see below)
cross-encoder              its probability (``sigmoid`` of the logit)
full-permutation prompts   :func:`positional`: ``1 - rank / n``; these prompts never say
(RankGPT, first-token),    "irrelevant", so a threshold is only a rank cut (the top half
BM25, custom scorers       of the list is >= 0.5)
=========================  ==============================================================

Within a band the values follow the final order (evenly spaced), so relevance is
monotone with the ranking even where the evidence and the order disagree: then the
cut between the bands is placed where it contradicts the fewest judgments
(:func:`judged`).

Pure stdlib; the rankers import it, ``import rerank_rag`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

__all__ = [
    "COSINE_MIDPOINT",
    "COSINE_SCALE",
    "positional",
    "judged",
    "sigmoid",
    "from_log_odds",
    "from_cosine",
    "from_probability",
    "judges_relevance",
    "scorer_judges_relevance",
    "scorer_relevance",
]

#: Cosine similarity of all-MiniLM-L6-v2 embeddings that maps to relevance 0.5.
#: Measured with ``benchmarks/bench_relevance.py`` on the BM25 top 100 of TREC DL19 and
#: SciFact: "cosine >= midpoint" agrees best (F1) with the qrels at 0.60-0.61 (DL19) and
#: 0.62-0.63 (SciFact), fp32 and int8 models; see docs/serving.md. A fixed value: cosine scales differ between
#: embedding models, so for another bi-encoder treat the threshold as indicative only.
COSINE_MIDPOINT = 0.6
#: Cosine units per logistic unit: relevance = sigmoid((cos - midpoint) / scale).
COSINE_SCALE = 0.1


def sigmoid(x: float) -> float:
    """The logistic function, overflow-safe; NaN maps to 0."""
    if math.isnan(x):
        return 0.0
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _monotone(values: Sequence[float]) -> list[float]:
    """Clamp to [0, 1] and make non-increasing (a running minimum): guards ties and
    rounding so the :class:`~rerank_rag.Ranking` invariant always holds."""
    out: list[float] = []
    prev = 1.0
    for v in values:
        v = 0.0 if math.isnan(v) else min(1.0, max(0.0, float(v)))
        prev = min(prev, v)
        out.append(prev)
    return out


def positional(n: int) -> list[float]:
    """Rank-only relevance of ``n`` ranked candidates: ``1 - rank / n`` (1.0 first)."""
    return [1.0 - r / n for r in range(n)]


def _best_cut(flags: Sequence[bool]) -> int:
    """The cut ``c`` (first ``c`` positions relevant) contradicting the fewest flags.

    Ties go to the cut closest to the number of relevant flags, then the smaller one.
    """
    n = len(flags)
    total = sum(flags)
    # errors(c) = (not relevant before c) + (relevant from c on)
    best_c, best_err = 0, total
    seen_rel = 0
    for c in range(1, n + 1):
        seen_rel += flags[c - 1]
        err = (c - seen_rel) + (total - seen_rel)
        if err < best_err or (err == best_err and abs(c - total) < abs(best_c - total)):
            best_c, best_err = c, err
    return best_c


def judged(order: Sequence[int], relevant: Collection[int]) -> list[float]:
    """Two-band relevance for a ranker that judges relevance (the relevant-only prompt).

    Args:
        order: the final order (input indices, best first; all candidates).
        relevant: the input indices the ranker judged relevant.

    Returns one value per entry of ``order``: the first ``c`` positions get
    ``0.5 + 0.5 * (c - r) / c`` (in (0.5, 1]), the others ``0.5 * (n - r) / (n - c + 1)``
    (in (0, 0.5)). ``c`` is the number of judged-relevant candidates when they lead the
    order (the usual case); otherwise the cut that contradicts the fewest judgments.
    """
    n = len(order)
    flags = [i in relevant for i in order]
    c = _best_cut(flags)
    out: list[float] = []
    for r in range(n):
        if r < c:
            out.append(0.5 + 0.5 * (c - r) / c)
        else:
            out.append(0.5 * (n - r) / (n - c + 1))
    return _monotone(out)


def from_log_odds(ordered_scores: Sequence[float | None]) -> list[float]:
    """P(yes) from log-odds ``log P(yes) - log P(no)``, in the ranking's order.

    ``None`` (a failed call: no judgment) maps to 0.
    """
    return _monotone([0.0 if s is None else sigmoid(s) for s in ordered_scores])


def from_cosine(
    ordered_scores: Sequence[float],
    midpoint: float = COSINE_MIDPOINT,
    scale: float = COSINE_SCALE,
) -> list[float]:
    """``sigmoid((cos - midpoint) / scale)``: 0.5 at the calibrated midpoint."""
    return _monotone([sigmoid((s - midpoint) / scale) for s in ordered_scores])


def from_probability(ordered_scores: Sequence[float]) -> list[float]:
    """Scores that already are probabilities (clamped to [0, 1])."""
    return _monotone(ordered_scores)


def judges_relevance(prompt: Any) -> bool:
    """Whether a window prompt's omissions are relevance judgments.

    True for prompts that ask for the relevant ids only (``expect_all = False``, as
    :class:`~rerank_rag.listwise.RelevantOnlyPrompt`); a prompt may say so explicitly
    with a ``judges_relevance`` attribute.
    """
    explicit = getattr(prompt, "judges_relevance", None)
    if isinstance(explicit, bool):
        return explicit
    return getattr(prompt, "expect_all", True) is False


def scorer_judges_relevance(scorer: Any) -> bool:
    """Whether :func:`scorer_relevance` is calibrated for ``scorer`` (its own
    ``relevance`` method, a bundled embedding or cross-encoder scorer) rather than
    positional."""
    if callable(getattr(scorer, "relevance", None)):
        return True
    from .pointwise._minilm import MiniLMScorer
    from .pointwise._sentence_transformers import BiEncoderScorer, CrossEncoderScorer

    return isinstance(scorer, (MiniLMScorer, BiEncoderScorer, CrossEncoderScorer))


def scorer_relevance(scorer: Any, ordered_scores: Sequence[float]) -> list[float]:
    """Relevance of a pointwise scorer's scores (already sorted best first).

    A scorer may define ``relevance(scores) -> list[float]`` (values in [0, 1],
    monotone in the score) to supply its own calibration; otherwise the bundled
    scorers map as documented in this module and any other scorer is positional.
    """
    own = getattr(scorer, "relevance", None)
    if callable(own):
        return _monotone(list(own(list(ordered_scores))))
    from .pointwise._minilm import MiniLMScorer
    from .pointwise._sentence_transformers import BiEncoderScorer, CrossEncoderScorer

    if isinstance(scorer, (MiniLMScorer, BiEncoderScorer)):
        return from_cosine(ordered_scores)
    if isinstance(scorer, CrossEncoderScorer):
        if getattr(scorer, "activation", None) == "sigmoid":
            return from_probability(ordered_scores)
        return _monotone([sigmoid(s) for s in ordered_scores])
    return positional(len(ordered_scores))
