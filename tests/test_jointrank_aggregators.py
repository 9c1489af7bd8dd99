"""Comparisons from block rankings and the aggregators."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from rerank_rag.jointrank import (
    AGGREGATORS,
    Comparisons,
    block_comparisons,
    borda,
    bradley_terry,
    copeland,
    elo,
    get_aggregator,
    order_from_scores,
    pagerank,
    win_rate,
)

# ----------------------------------------------------------------- comparisons


def test_listed_items_beat_later_items_and_omitted_ones_are_not_compared_among_themselves():
    # block shown as [7, 3, 5, 9]; the ranker listed 5 then 7; 3 and 9 were omitted
    pairs = block_comparisons([5, 7, 3, 9], n_listed=2)
    assert sorted(pairs) == sorted([(5, 7), (5, 3), (5, 9), (7, 3), (7, 9)])
    assert (3, 9) not in pairs and (9, 3) not in pairs


def test_full_listing_gives_all_pairs():
    assert len(block_comparisons(list(range(20)))) == 190


def test_nothing_listed_gives_no_comparison():
    c = Comparisons(4, [([0, 1, 2, 3], 0)])
    assert len(c) == 0 and list(c.pairs()) == []
    assert c.compared() == [False] * 4


def test_comparisons_tally():
    c = Comparisons(5, [([4, 2, 0], 3), ([2, 4, 1], 1)])
    assert list(c.pairs()) == [(4, 2), (4, 0), (2, 0), (2, 4), (2, 1)]
    assert len(c) == 5
    assert c.wins == [0, 0, 3, 0, 2]
    assert c.losses == [2, 1, 1, 0, 1]
    assert c.beats[2] == Counter({0: 1, 4: 1, 1: 1})
    assert c.compared() == [True, True, True, False, True]


def test_comparisons_validate_input():
    with pytest.raises(ValueError, match="repeats"):
        Comparisons(3, [[0, 1, 0]])
    with pytest.raises(ValueError, match="not an index"):
        Comparisons(3, [[0, 3]])
    with pytest.raises(ValueError, match="n_listed"):
        Comparisons(3, [([0, 1], 3)])
    with pytest.raises(ValueError, match="non-negative"):
        Comparisons(-1)


# ----------------------------------------------------------------- reference PageRank


def power_iteration_pagerank(n, pairs, d=0.85, iters=2000):
    """Textbook dense PageRank (evalica's formulation), written independently."""
    M = [[0.0] * n for _ in range(n)]  # M[loser][winner]
    for w, l in pairs:
        M[l][w] += 1
    P = []
    for i in range(n):
        s = sum(M[i])
        P.append([v / s for v in M[i]] if s else [1.0 / n] * n)
    x = [1.0 / n] * n
    for _ in range(iters):
        x = [(1 - d) / n + d * sum(x[i] * P[i][j] for i in range(n)) for j in range(n)]
    t = sum(x)
    return [v / t for v in x]


@pytest.mark.parametrize("seed", range(4))
def test_pagerank_matches_textbook_power_iteration_on_noisy_comparisons(seed):
    rng = random.Random(seed)
    n = 25
    strength = [rng.random() for _ in range(n)]
    rankings = []
    for _ in range(12):
        block = rng.sample(range(n), 6)
        noisy = sorted(block, key=lambda i: strength[i] + rng.gauss(0, 0.3), reverse=True)
        rankings.append((noisy, rng.choice([6, 6, 4, 1])))
    c = Comparisons(n, rankings)
    expected = power_iteration_pagerank(n, list(c.pairs()))
    got = pagerank(c)
    assert sum(got) == pytest.approx(1.0)
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_pagerank_on_a_consistent_chain_orders_it():
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]  # 0 beats everyone ...
    scores = pagerank(pairs)
    assert order_from_scores(scores)[0] == [0, 1, 2, 3, 4, 5]


def test_pagerank_accepts_pairs_and_checks_damping():
    assert len(pagerank([(0, 1)], n=3)) == 3
    with pytest.raises(ValueError, match="damping"):
        pagerank([(0, 1)], damping=1.0)


# ----------------------------------------------------------------- counting aggregators


def test_win_rate_is_the_mean_over_opponents():
    # 0 beat 1 twice and lost once; 0 beat 2 once  -> (2/3 + 1) / 2
    pairs = [(0, 1), (0, 1), (1, 0), (0, 2)]
    s = win_rate(pairs)
    assert s[0] == pytest.approx((2 / 3 + 1) / 2)
    assert s[1] == pytest.approx((1 / 3 + 0) / 1)
    assert s[2] == pytest.approx(0.0)


def test_borda_normalised_by_block_and_omitted_items_score_zero():
    c = Comparisons(4, [([0, 1, 2], 3), ([1, 3, 2], 1)])
    s = borda(c)
    assert s[0] == pytest.approx(1.0)
    assert s[1] == pytest.approx((0.5 + 1.0) / 2)
    assert s[2] == pytest.approx(0.0)
    assert s[3] == pytest.approx(0.0)
    assert borda(c, normalize=False) == [2.0, 3.0, 0.0, 0.0]


def test_copeland_counts_pairwise_majorities():
    pairs = [(0, 1), (0, 1), (1, 0), (2, 0), (1, 2)]  # 0>1 (2-1), 2>0, 1>2: a cycle
    assert copeland(pairs, normalize=False) == [0.0, 0.0, 0.0]
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert copeland(pairs) == [1.0, 0.0, -1.0]


def test_elo_one_game_by_hand():
    s = elo([(1, 0)])
    assert s == pytest.approx([998.0, 1002.0])  # K=4, expected score 0.5
    s = elo([(1, 0)], k_factor=32)
    assert s == pytest.approx([984.0, 1016.0])


# ----------------------------------------------------------------- Bradley-Terry


def test_bradley_terry_does_not_collapse_on_consistent_comparisons():
    # the reference's unregularised BT returns all zeros here (input order)
    n = 12
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    rng = random.Random(0)
    rng.shuffle(pairs)
    scores = bradley_terry(pairs, n=n)
    assert len({round(s, 6) for s in scores}) == n
    assert order_from_scores(scores)[0] == list(range(n))


def test_bradley_terry_solution_is_the_map_estimate():
    # the gradient of the log-posterior vanishes at the returned log-strengths
    rng = random.Random(3)
    n = 8
    pairs = []
    for _ in range(60):
        a, b = rng.sample(range(n), 2)
        pairs.append((a, b) if rng.random() < 0.5 + 0.05 * (b - a) else (b, a))
    prior = 1.0
    theta = bradley_terry(pairs, n=n, prior=prior, tol=1e-10)
    p = [math.exp(t) for t in theta]
    for i in range(n):
        grad = prior - 2 * prior * p[i] / (p[i] + 1)  # virtual games: won prior, lost prior
        for w, l in pairs:
            if i in (w, l):
                j = l if i == w else w
                grad += (1.0 if i == w else 0.0) - p[i] / (p[i] + p[j])
        assert abs(grad) < 1e-6


def test_bradley_terry_rejects_a_non_positive_prior():
    with pytest.raises(ValueError, match="prior"):
        bradley_terry([(0, 1)], prior=0)


# ----------------------------------------------------------------- shared behaviour


@pytest.mark.parametrize("name", list(AGGREGATORS))
def test_every_aggregator_ranks_a_consistent_tournament(name):
    n = 9
    rankings = [([0, 1, 2, 3, 4, 5, 6, 7, 8], 9)]
    scores = get_aggregator(name)(Comparisons(n, rankings))
    assert len(scores) == n
    assert order_from_scores(scores)[0] == list(range(n))


@pytest.mark.parametrize("name", list(AGGREGATORS))
def test_uncompared_items_get_the_minimum_and_keep_input_order(name):
    # items 1 and 4 never took part in a comparison
    c = Comparisons(6, [([5, 3, 0, 2], 4)])
    scores = get_aggregator(name)(c)
    lowest = min(scores[i] for i in (0, 2, 3, 5))
    assert scores[1] == scores[4] <= lowest  # PageRank: the teleport share, maybe lower
    order, shown = order_from_scores(scores)
    assert order[:3] == [5, 3, 0]
    assert order.index(1) < order.index(4)  # ties: input order
    assert all(a >= b for a, b in zip(shown, shown[1:]))


@pytest.mark.parametrize("name", list(AGGREGATORS))
def test_no_comparison_at_all_gives_equal_scores(name):
    scores = get_aggregator(name)(Comparisons(4, []))
    assert len(set(scores)) == 1
    assert order_from_scores(scores)[0] == [0, 1, 2, 3]


def test_aggregator_names_and_errors():
    assert get_aggregator("wr") is win_rate
    assert get_aggregator("Bradley-Terry") is bradley_terry
    with pytest.raises(ValueError, match="unknown aggregator"):
        get_aggregator("trueskill")


def test_order_from_scores_ties_break_by_input_order_up_to_float_noise():
    order, shown = order_from_scores([0.1, 0.3, 0.1 + 1e-17, 0.3 * (1 + 1e-15), float("nan"), 0.2])
    assert order == [1, 3, 5, 0, 2, 4]
    assert shown[0] == shown[1]
