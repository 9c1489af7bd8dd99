"""Perfect-block-ranker ceilings: our designs + aggregators reproduce the reference's.

Protocol (the JointRank reference's synthetic oracle): gold relevance = a random
permutation of 1..n, every block sorted perfectly, nDCG@10 with gain 2**rel, top-1
accuracy. Run ``i`` uses seed ``i``.

Reference figures (``/work/shared/notes/algorithms.md`` A.11): k=20/r=4 PageRank
0.957 nDCG@10 / 0.84 top-1 (100 runs), Latin k=10 PageRank 0.772 (200 runs). Running
the reference code itself (its design + evalica 0.3.2) reproduces those numbers
exactly for seeds 0..99 / 0..199, but over 1000 seeds it gives 0.947 / 0.767 and
0.762 / 0.378: the published figures are on the lucky side of their sampling error
(top-1 over 100 runs has a standard error of about 0.04). Our PageRank agrees with
evalica's to 3e-7 on identical comparisons, and over 1000 seeds our pipeline gives
0.946 / 0.77 and 0.761 / 0.37. So the tests check nDCG@10 within 0.02 of both the
published figure and the reference code's 1000-seed mean, and top-1 within two
standard errors of the reference code's 1000-seed mean.
"""

from __future__ import annotations

import math

import pytest

from rerank_rag.jointrank import simulate


def test_k20_r4_pagerank_ceiling():
    res = simulate(100, 20, 4, "auto", "pagerank", runs=400, seed=0)
    assert res.design == "auto" and res.calls == 20 and res.depth == 1 and res.connected == 1
    assert abs(res.ndcg10 - 0.957) <= 0.02
    assert abs(res.ndcg10 - 0.947) <= 0.02
    se = math.sqrt(0.767 * 0.233 / 400)
    assert abs(res.top1 - 0.767) <= 2 * se + 0.005


def test_latin_square_k10_pagerank_ceiling():
    res = simulate(100, 10, 2, "latin", "pagerank", runs=400, seed=0)
    assert res.calls == 20
    assert abs(res.ndcg10 - 0.772) <= 0.02
    assert abs(res.ndcg10 - 0.762) <= 0.02


def test_auto_picks_latin_for_n_100_k_10_r_2():
    auto = simulate(100, 10, 2, "auto", "pagerank", runs=50, seed=0)
    latin = simulate(100, 10, 2, "latin", "pagerank", runs=50, seed=0)
    assert auto.ndcg10 == latin.ndcg10


def test_bradley_terry_with_prior_does_not_collapse():
    # the reference's unregularised BT scores all items 0 here: 0.060 nDCG@10 (input order)
    baseline = simulate(100, 20, 4, "auto", lambda c: [0.0] * c.n, runs=60, seed=0)
    assert baseline.ndcg10 < 0.2
    bt = simulate(100, 20, 4, "auto", "bradley_terry", runs=40, seed=0)
    pr = simulate(100, 20, 4, "auto", "pagerank", runs=40, seed=0)
    assert bt.ndcg10 > 0.9 and bt.ndcg10 > pr.ndcg10 - 0.03
    latin_bt = simulate(100, 10, 2, "latin", "bradley_terry", runs=40, seed=0)
    assert latin_bt.ndcg10 > 0.7


@pytest.mark.parametrize("aggregator,low", [("win_rate", 0.90), ("elo", 0.90), ("copeland", 0.90)])
def test_other_aggregators_are_near_their_reference_ceilings(aggregator, low):
    # reference code, 1000 seeds: win rate 0.927, Elo 0.923 (k=20, r=4)
    res = simulate(100, 20, 4, "auto", aggregator, runs=100, seed=0)
    assert res.ndcg10 > low


def test_noise_lowers_quality_and_balanced_designs_beat_random_ones():
    clean = simulate(100, 20, 4, "auto", "pagerank", runs=60, seed=1)
    noisy = simulate(100, 20, 4, "auto", "pagerank", runs=60, seed=1, noise=0.1)
    assert noisy.ndcg10 < clean.ndcg10 - 0.05
    rand = simulate(100, 10, 2, "random", "pagerank", runs=100, seed=1, repair=False)
    latin = simulate(100, 10, 2, "latin", "pagerank", runs=100, seed=1)
    assert latin.ndcg10 > rand.ndcg10 and rand.connected < 0.5
