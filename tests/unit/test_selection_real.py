"""REAL pair selection on constructed embeddings: each strategy, seeds, small groups, pools."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlthf_plugin.selection.real import STRATEGIES, pair_similarity, select_from_pool, select_pairs


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angles(*deg):
    """Unit vectors in the plane at these angles (degrees): similarity = cos(difference)."""
    r = np.deg2rad(deg)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def brute_force(X, groups, k, sign):
    """Reference: per group, every pair sorted by similarity (sign=+1 easy, -1 hard)."""
    X = unit(X)
    out = {}
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        pairs = sorted(itertools.combinations(rows, 2), key=lambda p: sign * X[p[0]] @ X[p[1]])
        out[g] = pairs[:k]
    return out


def as_dict(sel):
    out = {}
    for g, a, b in zip(sel.group, sel.first, sel.second):
        out.setdefault(g, []).append((a, b))
    return out


def test_easy_and_hard_pick_known_least_and_most_similar_pair():
    # angles 0, 10, 100, 170: least similar = (0, 170), most similar = (0, 10).
    X = angles(0, 10, 100, 170)
    easy = select_pairs(X, ["p"] * 4, strategy="easy")
    hard = select_pairs(X, ["p"] * 4, strategy="hard")
    assert (easy.first[0], easy.second[0]) == (0, 3)
    assert easy.similarity[0] == pytest.approx(np.cos(np.deg2rad(170)))
    assert (hard.first[0], hard.second[0]) == (0, 1)
    assert hard.similarity[0] == pytest.approx(np.cos(np.deg2rad(10)))
    assert easy.strategy == "easy" and list(easy.rank) == [0]


@pytest.mark.parametrize("strategy,sign", [("easy", 1), ("hard", -1)])
def test_k_per_prompt_matches_brute_force_over_mixed_group_sizes(strategy, sign):
    rng = np.random.default_rng(3)
    sizes = [1, 2, 3, 5, 5, 8, 12]
    groups = np.repeat(np.arange(len(sizes)) * 10, sizes)
    rng.shuffle(groups)  # rows of a group need not be adjacent
    X = rng.normal(size=(groups.size, 16))
    sel = select_pairs(X, groups, strategy=strategy, per_prompt=4)
    expected = brute_force(X, groups, 4, sign)
    got = as_dict(sel)
    assert set(got) == {g for g, ps in expected.items() if ps}  # the size-1 group gives nothing
    for g, pairs in expected.items():
        assert got.get(g, []) == [tuple(sorted(p)) for p in pairs]
    assert len(set(zip(sel.first, sel.second))) == len(sel)  # no pair twice
    assert np.allclose(sel.similarity, np.einsum("md,md->m", unit(X)[sel.first], unit(X)[sel.second]))
    counts = {g: len(p) for g, p in got.items()}
    assert counts == {10: 1, 20: 3, 30: 4, 40: 4, 50: 4, 60: 4}


def test_centroid_picks_the_response_nearest_each_cluster_centre():
    rng = np.random.default_rng(0)
    centre_a, centre_b = unit([1.0, 0.2, 0, 0]), unit([0, 0, 1.0, 0.3])
    cluster_a = unit(centre_a + 0.15 * rng.normal(size=(5, 4)))
    cluster_b = unit(centre_b + 0.15 * rng.normal(size=(4, 4)))
    X = np.vstack([cluster_a, cluster_b])
    # The exact nearest members, computed from the true cluster means.
    near_a = int(np.argmin(np.linalg.norm(cluster_a - cluster_a.mean(0), axis=1)))
    near_b = 5 + int(np.argmin(np.linalg.norm(cluster_b - cluster_b.mean(0), axis=1)))
    for seed in range(3):
        sel = select_pairs(X, np.zeros(9, dtype=int), strategy="centroid", seed=seed, per_prompt=3)
        assert (sel.first[0], sel.second[0]) == (near_a, near_b)
        # later choices still take one response of each cluster
        assert all(a < 5 <= b for a, b in zip(sel.first, sel.second))


def test_random_is_seeded_uniform_and_distinct():
    X = np.random.default_rng(1).normal(size=(6, 8))
    groups = np.zeros(6, dtype=int)
    one = select_pairs(X, groups, strategy="random", per_prompt=5, seed=7)
    two = select_pairs(X, groups, strategy="random", per_prompt=5, seed=7)
    assert np.array_equal(one.first, two.first) and np.array_equal(one.second, two.second)
    assert len(set(zip(one.first, one.second))) == 5
    # uniform over the 15 pairs: the first choice over many seeds hits every pair about equally
    firsts = [tuple(select_pairs(X, groups, strategy="random", seed=s).first[:1]) +
              tuple(select_pairs(X, groups, strategy="random", seed=s).second[:1]) for s in range(600)]
    counts = np.array(list({p: firsts.count(p) for p in set(firsts)}.values()))
    assert counts.size == 15 and counts.min() > 15 and counts.max() < 70


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_is_deterministic_and_handles_groups_of_one_and_two(strategy):
    rng = np.random.default_rng(2)
    groups = np.array(["solo", "duo", "duo", "many", "many", "many", "many", "many"])
    X = rng.normal(size=(8, 5))
    a = select_pairs(X, groups, strategy=strategy, per_prompt=2, seed=11)
    b = select_pairs(X, groups, strategy=strategy, per_prompt=2, seed=11)
    for field in ("group", "first", "second", "similarity", "rank"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    got = as_dict(a)
    assert "solo" not in got
    assert got["duo"] == [(1, 2)]
    assert len(got["many"]) == 2


def test_allowed_restricts_the_choice():
    X = angles(0, 10, 100, 170)
    allowed = np.array([[1, 2], [2, 0], [1, 3]])
    sel = select_pairs(X, [0, 0, 0, 0], strategy="easy", allowed=allowed, per_prompt=5)
    # among the three allowed: (1,3) 160 deg, (0,2) 100 deg, (1,2) 90 deg
    assert list(zip(sel.first, sel.second)) == [(1, 3), (0, 2), (1, 2)]
    none = select_pairs(X, [0, 0, 1, 1], strategy="hard", allowed=np.array([[0, 1]]))
    assert list(zip(none.first, none.second)) == [(0, 1)]


def test_inputs_are_checked_with_sizes_and_names():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="valid strategies: easy, hard, centroid, random"):
        select_pairs(X, [0, 0, 0], strategy="dissimilar")
    with pytest.raises(ValueError, match="groups has 2 entries but embeddings has 3 rows"):
        select_pairs(X, [0, 0])
    with pytest.raises(ValueError, match=r"2-D \(N, d\), got shape \(3,\)"):
        select_pairs(np.ones(3), [0, 0, 0])
    with pytest.raises(ValueError, match="1 all-zero row"):
        select_pairs(np.array([[1.0, 0], [0, 0], [0, 1]]), [0, 0, 0])
    with pytest.raises(ValueError, match="per_prompt must be at least 1, got 0"):
        select_pairs(X, [0, 0, 0], per_prompt=0)
    with pytest.raises(ValueError, match="different groups"):
        select_pairs(X, [0, 0, 1], allowed=[[0, 2]])
    with pytest.raises(ValueError, match=r"embeddings_a has shape \(3, 2\) but embeddings_b has shape \(2, 2\)"):
        select_from_pool(X, X[:2])
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\], got 0"):
        select_from_pool(X, X, fraction=0)


def test_empty_and_all_singletons_give_no_pairs():
    sel = select_pairs(np.eye(3), [1, 2, 3], strategy="centroid")
    assert len(sel) == 0 and sel.first.dtype == np.int64


def test_pool_keeps_the_least_similar_fraction():
    a = angles(0, 0, 0, 0, 0)
    b = angles(30, 170, 90, 5, 120)
    pool = select_from_pool(a, b, fraction=0.4)
    assert list(pool.indices) == [1, 4]
    assert np.allclose(pool.similarity, np.cos(np.deg2rad([170, 120])))
    assert np.allclose(pool.pool_similarity, pair_similarity(a, b))
    assert len(select_from_pool(a, b, fraction=1.0)) == 5
    assert len(select_from_pool(a, b, fraction=0.01)) == 1


def test_large_group_is_vectorised():
    # 400 responses = 79,800 pairs in one group: no Python loop over pairs, so this is quick.
    X = np.random.default_rng(5).normal(size=(400, 32))
    sel = select_pairs(X, np.zeros(400, dtype=int), strategy="easy", per_prompt=3)
    sims = unit(X) @ unit(X).T
    iu = np.triu_indices(400, 1)
    assert np.allclose(sel.similarity, np.sort(sims[iu])[:3])
