"""Block designs: sizes, replication, structure, determinism, shuffling, connectivity."""

from __future__ import annotations

import math

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_rag.jointrank import (
    AutoDesign,
    EquiReplicateDesign,
    LatinSquareDesign,
    RandomDesign,
    ReplicateDesign,
    TriangularDesign,
    auto_design,
    connected_components,
    coverage_stats,
    get_design,
    is_connected,
    repair_connectivity,
)


def appearances(blocks, n):
    c = Counter(x for b in blocks for x in b)
    return [c[i] for i in range(n)]


def assert_well_formed(blocks, n, k):
    for b in blocks:
        assert 2 <= len(b) <= k
        assert len(set(b)) == len(b), f"block repeats an item: {b}"
        assert all(0 <= x < n for x in b)


@pytest.mark.parametrize(
    "n,k,r",
    [(100, 20, 4), (100, 20, 2), (100, 10, 2), (1000, 100, 3), (30, 20, 2), (60, 8, 2), (12, 5, 5)],
)
def test_equi_replicate_every_item_exactly_r_times(n, k, r):
    design = EquiReplicateDesign(r)
    assert design.is_applicable(n, k)
    blocks = design.build(n, k, seed=3, repair=False)
    assert len(blocks) == r * n // k
    assert all(len(b) == k for b in blocks)
    assert_well_formed(blocks, n, k)
    assert set(appearances(blocks, n)) == {r}


@pytest.mark.parametrize("n,k", [(15, 20), (20, 20), (2, 20), (3, 2)])
def test_n_at_most_k_gives_r_shuffled_full_blocks(n, k):
    if n > k:  # (3, 2) is not n <= k: just a tiny regular case
        blocks = EquiReplicateDesign(2).build(n, k, seed=0)
        assert set(appearances(blocks, n)) == {2}
        return
    blocks = EquiReplicateDesign(4).build(n, k, seed=0)
    assert len(blocks) == min(4, 2 if n == 2 else 4)  # 2 items have only 2 distinct orders
    assert all(sorted(b) == list(range(n)) for b in blocks)
    assert len({tuple(b) for b in blocks}) == len(blocks)  # distinct shuffles


def test_equi_replicate_refuses_non_divisible_sizes_with_a_clear_error():
    with pytest.raises(ValueError, match="equi-replicate.*n=37, k=10.*auto"):
        EquiReplicateDesign(2).build(37, 10)


@pytest.mark.parametrize(
    "n,k,r", [(37, 10, 2), (101, 20, 4), (21, 20, 4), (999, 100, 3), (7, 3, 1)]
)
def test_replicate_design_any_n_r_or_r_plus_one(n, k, r):
    blocks = ReplicateDesign(r).build(n, k, seed=1, repair=False)
    assert len(blocks) == -(-r * n // k)
    assert_well_formed(blocks, n, k)
    counts = appearances(blocks, n)
    assert min(counts) >= r and max(counts) <= r + 1
    assert sum(counts) == len(blocks) * k


def test_latin_square_structure():
    k = 10
    blocks = LatinSquareDesign().build(k * k, k, seed=5, repair=False)
    assert len(blocks) == 2 * k
    assert set(appearances(blocks, k * k)) == {2}
    pair_count = Counter(p for b in blocks for p in itertools.combinations(sorted(b), 2))
    assert max(pair_count.values()) == 1  # lattice: two items share at most one block
    # rows are disjoint, columns are disjoint, every row meets every column once
    rows, cols = blocks[:k], blocks[k:]
    for a, b in itertools.combinations(rows, 2):
        assert not set(a) & set(b)
    for row in rows:
        for col in cols:
            assert len(set(row) & set(col)) == 1


def test_triangular_structure():
    k = 10
    n = k * (k + 1) // 2
    blocks = TriangularDesign().build(n, k, seed=2, repair=False)
    assert len(blocks) == k + 1
    assert all(len(b) == k for b in blocks)
    assert set(appearances(blocks, n)) == {2}
    for a, b in itertools.combinations(blocks, 2):
        assert len(set(a) & set(b)) == 1  # any two blocks share exactly one item


def test_latin_and_triangular_need_their_sizes():
    with pytest.raises(ValueError, match="n == k\\*k"):
        LatinSquareDesign().build(99, 10)
    with pytest.raises(ValueError, match="k\\*\\(k\\+1\\)/2"):
        TriangularDesign().build(56, 10)


def test_auto_design_choice():
    assert isinstance(auto_design(100, 20, 4), EquiReplicateDesign)
    assert isinstance(auto_design(100, 10, 2), LatinSquareDesign)
    assert isinstance(auto_design(55, 10, 2), TriangularDesign)
    assert isinstance(auto_design(100, 10, 3), EquiReplicateDesign)  # r != 2: no lattice
    assert type(auto_design(37, 10, 2)) is ReplicateDesign
    assert isinstance(auto_design(15, 20, 4), EquiReplicateDesign)
    assert get_design("auto", 4).choose(101, 20).name == "replicate"


def test_same_seed_same_blocks_other_seed_other_blocks():
    for design in (AutoDesign(4), LatinSquareDesign(), TriangularDesign(), RandomDesign(2)):
        n, k = (100, 10) if isinstance(design, LatinSquareDesign) else (55, 10)
        if isinstance(design, AutoDesign):
            n, k = 100, 20
        a = design.build(n, k, seed=7)
        assert a == design.build(n, k, seed=7)
        assert a != design.build(n, k, seed=8)


def test_first_stage_order_does_not_leak_into_blocks():
    # Reference Latin/triangular designs show candidates in input order in every block.
    # Ours shuffle: over many seeds, the position of the top first-stage candidate inside
    # its blocks is spread out, and blocks are rarely sorted by input index.
    for design, n, k in (
        (LatinSquareDesign(), 100, 10),
        (TriangularDesign(), 55, 10),
        (AutoDesign(4), 100, 20),
    ):
        positions = Counter()
        sorted_blocks = 0
        total = 0
        for seed in range(60):
            for b in design.build(n, k, seed=seed):
                total += 1
                sorted_blocks += b == sorted(b)
                if 0 in b:
                    positions[b.index(0) * 4 // len(b)] += 1  # quartile of the block
        assert sorted_blocks == 0
        assert len(positions) == 4 and min(positions.values()) > 0.1 * sum(positions.values())


def test_bad_sizes_give_clear_errors():
    with pytest.raises(ValueError, match="block_size k must be >= 2"):
        AutoDesign(4).build(10, 1)
    with pytest.raises(ValueError, match="replicas r must be >= 1"):
        EquiReplicateDesign(0)
    with pytest.raises(ValueError, match="replicas r must be >= 1"):
        auto_design(10, 5, 0)
    with pytest.raises(ValueError, match="must be >= 0"):
        AutoDesign(4).build(-1, 5)
    with pytest.raises(TypeError):
        AutoDesign(4).build(10.0, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown design"):
        get_design("nope")


@pytest.mark.parametrize("n", [0, 1])
def test_nothing_to_compare_gives_no_block(n):
    assert AutoDesign(4).build(n, 20) == []
    assert is_connected([], n)


def test_two_candidates():
    blocks = AutoDesign(4).build(2, 20, seed=0)
    assert sorted(blocks) == [[0, 1], [1, 0]]  # both orders once, no identical replica


def test_repair_connects_a_partition():
    # r = 1 is a partition into n/k disjoint blocks: never connected without repair
    n, k = 100, 10
    raw = EquiReplicateDesign(1).build(n, k, seed=0, repair=False)
    assert len(connected_components(raw, n)) == 10
    extra = repair_connectivity(raw, n, k, 0)
    assert len(extra) == 1  # ceil((10 - 1) / (10 - 1))
    assert is_connected(raw + extra, n)
    repaired = EquiReplicateDesign(1).build(n, k, seed=0)
    assert len(repaired) == 11 and is_connected(repaired, n)


def test_repair_covers_items_in_no_block():
    blocks = [[0, 1], [1, 2]]
    extra = repair_connectivity(blocks, 6, 2, 0)
    assert is_connected(blocks + extra, 6)
    assert len(extra) == 3  # 4 components with blocks of 2: (4 - 1) / (2 - 1)
    assert repair_connectivity(blocks + extra, 6, 2, 0) == []


def test_random_design_without_repair_can_miss_items_and_repair_fixes_it():
    missing = 0
    for seed in range(30):
        raw = RandomDesign(2).build(100, 10, seed=seed, repair=False)
        missing += coverage_stats(raw, 100).uncovered
        fixed = RandomDesign(2).build(100, 10, seed=seed)
        stats = coverage_stats(fixed, 100)
        assert stats.connected and stats.uncovered == 0
    assert missing > 0


def test_coverage_stats_of_the_jointrank_default():
    blocks = AutoDesign(4).build(100, 20, seed=0)
    s = coverage_stats(blocks, 100)
    assert (s.blocks, s.comparisons) == (20, 3800)
    assert s.min_appearances == s.max_appearances == 4 and s.mean_appearances == 4.0
    assert s.connected and s.components == 1 and s.uncovered == 0
    assert 0.5 < s.pair_coverage < 0.65  # the reference reports 0.573 on average
    assert s.direct_pairs == round(s.pair_coverage * 4950)
    assert 1 <= s.max_cooccurrence <= 4


def test_coverage_stats_counts_by_hand():
    s = coverage_stats([[0, 1, 2], [2, 3]], 5)
    assert s.comparisons == 4 and s.direct_pairs == 4
    assert s.pair_coverage == pytest.approx(4 / 10)
    assert (s.min_appearances, s.max_appearances, s.uncovered) == (0, 2, 1)
    assert s.components == 2 and not s.connected
    assert s.max_cooccurrence == 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=120),
    k=st.integers(min_value=2, max_value=30),
    r=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=10**6),
    name=st.sampled_from(["auto", "replicate", "random"]),
)
def test_any_size_builds_connected_well_formed_blocks(n, k, r, seed, name):
    blocks = get_design(name, r).build(n, k, seed=seed)
    assert_well_formed(blocks, max(n, 1), k)
    if n >= 2:
        counts = appearances(blocks, n)
        # n <= k: replicas are distinct orders of all n, so at most n! of them
        want = min(r, math.factorial(n)) if n <= k else r
        assert min(counts) >= (1 if name == "random" else want)
        assert len({tuple(b) for b in blocks}) == len(blocks) or n > k
        assert is_connected(blocks, n)
    else:
        assert blocks == []
