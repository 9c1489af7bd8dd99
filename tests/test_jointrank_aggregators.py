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


# ----------------------------------------------------------------- pinned small cases
# Four items, four blocks; pair (0, 1) meets in three blocks, (1, 2) in two.
#   A: 0 > 1 > 2            -> 0>1, 0>2, 1>2
#   B: 1 > 0 > 3            -> 1>0, 1>3, 0>3
#   C: 0 listed, 1 omitted  -> 0>1
#   D: 2 listed, 3, 1 omitted -> 2>3, 2>1 (3 and 1 not compared)
PINNED = [([0, 1, 2], 3), ([1, 0, 3], 3), ([0, 1], 1), ([2, 3, 1], 1)]


def test_repeated_pairs_and_tallies_by_hand():
    c = Comparisons(4, PINNED)
    assert c.wins == [4, 3, 2, 0] and c.losses == [1, 3, 2, 3]
    assert sorted(c.repeated()) == [(0, 1, 2, 1), (1, 2, 1, 1)]
    assert sorted(c.beaters[1]) == [0, 0, 2] and sorted(c.beaten[0]) == [1, 1, 2, 3]


def test_win_rate_pinned_by_hand():
    # 0: vs 1 won 2 of 3, vs 2 and 3 won all    -> (2/3 + 1 + 1) / 3
    # 1: vs 0 1 of 3, vs 2 one each, vs 3 won   -> (1/3 + 1/2 + 1) / 3
    # 2: vs 0 lost, vs 1 one each, vs 3 won     -> (0 + 1/2 + 1) / 3
    assert win_rate(Comparisons(4, PINNED)) == pytest.approx([8 / 9, 11 / 18, 1 / 2, 0.0])


def test_copeland_pinned_by_hand():
    c = Comparisons(4, PINNED)
    # majorities: 0 beats 1, 2, 3; 1-2 tied; 1 beats 3; 2 beats 3
    assert copeland(c, normalize=False) == [3.0, 0.0, 0.0, -3.0]
    assert copeland(c) == [1.0, 0.0, 0.0, -1.0]


def test_borda_pinned_by_hand():
    # A: 0 -> 1, 1 -> 1/2, 2 -> 0; B: 1 -> 1, 0 -> 1/2, 3 -> 0; C: 0 -> 1, 1 -> 0;
    # D: 2 -> 1, 3 -> 0, 1 -> 0
    expected = [(1 + 0.5 + 1) / 3, (0.5 + 1 + 0 + 0) / 4, (0 + 1) / 2, 0.0]
    assert borda(Comparisons(4, PINNED)) == pytest.approx(expected)


def _solve_exact(a, b):
    """Gaussian elimination over Fractions (a small dense system, exactly)."""
    from fractions import Fraction

    m = [[Fraction(v) for v in row] + [Fraction(r)] for row, r in zip(a, b)]
    size = len(m)
    for col in range(size):
        piv = next(r for r in range(col, size) if m[r][col] != 0)
        m[col], m[piv] = m[piv], m[col]
        for r in range(size):
            if r != col and m[r][col] != 0:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col])]
    return [m[i][size] / m[i][i] for i in range(size)]


def test_pagerank_pinned_by_an_exact_linear_solve():
    from fractions import Fraction

    pairs = [(0, 1), (0, 1), (1, 2), (2, 0), (0, 2), (3, 2)]
    # the walk leaves each loser for the items that beat it, in proportion:
    # 1 -> 0; 2 -> 1, 0, 3 (a third each); 0 -> 2; 3 never lost: uniform
    n, d = 4, Fraction(17, 20)
    p = [[0, 0, 1, 0], [1, 0, 0, 0], [Fraction(1, 3)] * 2 + [0, Fraction(1, 3)], [Fraction(1, 4)] * 4]
    # x = (1-d)/n + d P^T x
    a = [[(1 if i == j else 0) - d * p[j][i] for j in range(n)] for i in range(n)]
    x = _solve_exact(a, [(1 - d) / n] * n)
    expected = [float(v / sum(x)) for v in x]
    assert pagerank(pairs, n=4) == pytest.approx(expected, abs=1e-9)


def _bisect(f, lo, hi):
    for _ in range(200):
        mid = (lo + hi) / 2
        if (f(lo) > 0) == (f(mid) > 0):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


SOLVERS = ["python", "numpy"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_bradley_terry_pinned_two_items(solver):
    if solver == "numpy":
        pytest.importorskip("numpy")

    def sig(z):
        return 1 / (1 + math.exp(-z))

    # one game, 0 beat 1, prior 1: by symmetry theta = (t, -t) with
    # d/dt log posterior = 1 + 1 - sigmoid(2t) - 2 sigmoid(t) = 0
    t = _bisect(lambda t: 2 - sig(2 * t) - 2 * sig(t), 0.0, 5.0)
    got = bradley_terry([(0, 1)], solver=solver, tol=1e-12)
    assert got == pytest.approx([t, -t], abs=1e-9)


# ----------------------------------------------------------------- the fast paths


def _brute_repeated(c):
    counts = Counter(c.pairs())
    out = set()
    for (w, l), k in counts.items():
        x, y = min(w, l), max(w, l)
        a, b = counts.get((x, y), 0), counts.get((y, x), 0)
        if a + b > 1:
            out.add((x, y, a, b))
    return out


def _random_rankings(rng, n, blocks, size):
    out = []
    for _ in range(blocks):
        order = rng.sample(range(n), size)
        out.append((order, min(size, rng.choice([size, size, size - 1, 3, 1, 0]))))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_repeated_pairs_match_a_brute_force_count_on_both_paths(seed):
    rng = random.Random(seed)
    for n, blocks, size in ((30, 12, 8), (12, 40, 2), (9, 6, 9)):
        c = Comparisons(n, _random_rankings(rng, n, blocks, size))
        live = [(o, min(t, len(o))) for o, t in c.rankings if t > 0 and len(o) > 1]
        expected = _brute_repeated(c)
        assert set(c.repeated()) == expected
        assert set(c._repeated_by_block_pairs(live)) == expected
        assert set(c._repeated_by_counting(live)) == expected


def _reference_win_rate_and_copeland(c):
    counts = Counter(c.pairs())
    n = c.n
    wr, cp = [], []
    for i in range(n):
        opp = {j for (w, l) in counts for j in (w, l) if i in (w, l) and j != i}
        shares = [counts[(i, j)] / (counts[(i, j)] + counts[(j, i)]) for j in opp]
        wr.append(sum(shares) / len(opp) if opp else None)
        cp.append(sum((counts[(i, j)] > counts[(j, i)]) - (counts[(i, j)] < counts[(j, i)]) for j in opp) / len(opp) if opp else None)
    return wr, cp


@pytest.mark.parametrize("seed", range(6))
def test_win_rate_and_copeland_match_the_per_pair_definition(seed):
    rng = random.Random(100 + seed)
    for n, blocks, size in ((30, 12, 8), (12, 40, 2), (10, 5, 10)):
        c = Comparisons(n, _random_rankings(rng, n, blocks, size))
        wr, cp = _reference_win_rate_and_copeland(c)
        got_wr, got_cp = win_rate(c), copeland(c)
        for i in range(n):
            if wr[i] is not None:
                assert got_wr[i] == pytest.approx(wr[i], abs=1e-12)
                assert got_cp[i] == pytest.approx(cp[i], abs=1e-12)


def _noisy_rankings(rng, n, k, blocks, noise, listing):
    strength = [rng.random() for _ in range(n)]
    out = []
    for _ in range(blocks):
        block = rng.sample(range(n), k)
        order = sorted(block, key=lambda i: strength[i] + rng.gauss(0, noise), reverse=True)
        out.append((order, listing(rng, k)))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_bradley_terry_solvers_agree(seed):
    pytest.importorskip("numpy")
    rng = random.Random(seed)
    cases = [
        Comparisons(60, _noisy_rankings(rng, 60, 12, 20, 0.2, lambda r, k: k)),
        Comparisons(60, _noisy_rankings(rng, 60, 12, 20, 0.0, lambda r, k: k)),
        Comparisons(40, _noisy_rankings(rng, 40, 10, 12, 0.3, lambda r, k: r.randint(0, k))),
        # two components that never meet, and an item in no block
        Comparisons(21, [([0, 1, 2, 3], 4), ([2, 0, 4], 3), ([10, 11, 12], 2), ([12, 13], 1)]),
        Comparisons.from_pairs(8, [(a, b) if rng.random() < 0.7 else (b, a) for a in range(8) for b in range(a + 1, 8)] * 2),
    ]
    for c in cases:
        py = bradley_terry(c, solver="python", tol=1e-10)
        fast = bradley_terry(c, solver="numpy", tol=1e-10)
        assert fast == pytest.approx(py, abs=1e-7)


@pytest.mark.parametrize("solver", SOLVERS)
def test_bradley_terry_gradient_vanishes_per_component(solver):
    if solver == "numpy":
        pytest.importorskip("numpy")
    # the level of each component is set by the prior alone: the pure-Python solver
    # solves it separately; both solvers must land on the posterior mode
    rankings = [([0, 1, 2, 3], 4), ([3, 1, 4], 3), ([5, 6, 7], 3), ([7, 5], 2), ([8, 9], 1)]
    c = Comparisons(11, rankings)
    prior = 0.5
    theta = bradley_terry(c, prior=prior, tol=1e-12, solver=solver)
    p = [math.exp(t) for t in theta]
    pairs = list(c.pairs())
    for i in range(10):  # item 10 was never compared
        grad = prior - 2 * prior * p[i] / (p[i] + 1)
        for w, l in pairs:
            if i in (w, l):
                j = l if i == w else w
                grad += (1.0 if i == w else 0.0) - p[i] / (p[i] + p[j])
        assert abs(grad) < 1e-8


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_bradley_terry_numpy_solver_on_degenerate_input(n):
    pytest.importorskip("numpy")
    assert bradley_terry(Comparisons(n, []), solver="numpy") == [0.0] * n
    if n >= 2:
        scores = bradley_terry(Comparisons(n, [([1, 0], 2)]), solver="numpy")
        assert scores[1] > scores[0] and all(s == scores[0] for s in scores[2:])


def test_bradley_terry_rejects_an_unknown_solver():
    with pytest.raises(ValueError, match="solver"):
        bradley_terry([(0, 1)], solver="scipy")
