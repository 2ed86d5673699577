"""benchmarks/downstream: folds by prompt, the random arm, the prompt bootstrap."""

from __future__ import annotations

import numpy as np

from benchmarks.downstream import cluster_bootstrap, fold_of, random_arm, sub_pool
from benchmarks.signals_dev import Pool


def _pool(n: int = 200) -> Pool:
    rng = np.random.default_rng(0)
    truth = np.where(rng.uniform(size=n) < 0.5, "A", "B")
    ai = np.where(rng.uniform(size=n) < 0.8, truth, np.where(truth == "A", "B", "A"))
    return Pool("toy", [f"p{i // 4}" for i in range(n)], [f"a{i}" for i in range(n)], [f"b{i}" for i in range(n)],
                truth, ai, np.zeros((n, 1, 2), dtype=np.int8), ["j"], 0, np.ones(n), np.ones(n), 0,
                np.arange(n) // 4, np.arange(n), np.arange(n) + n)


def test_folds_keep_a_prompt_on_one_side_and_sub_pools_align():
    pool = _pool()
    fold = fold_of(pool, 5, seed=1)
    assert set(fold.tolist()) == set(range(5))
    for g in np.unique(pool.group):
        assert np.unique(fold[pool.group == g]).size == 1
    idx = np.flatnonzero(fold != 0)
    sub = sub_pool(pool, idx)
    assert sub.truth.size == idx.size and sub.prompts == [pool.prompts[i] for i in idx]
    assert (sub.votes == pool.votes[idx]).all() and sub.judges == pool.judges


def test_random_arm_is_nested_and_amplified_on_the_schedule():
    pool = _pool()
    arms = random_arm(pool, seed=0, budgets=[0.02, 0.06, 0.1], salt=0)
    amplified = {b: np.flatnonzero(w > 1) for b, (_, w) in arms.items()}  # the last 2% step has alpha 1
    assert [amplified[b].size for b in (0.02, 0.06, 0.1)] == [4, 12, 16]
    assert set(amplified[0.02]) <= set(amplified[0.06]) <= set(amplified[0.1])
    labels, w = arms[0.1]
    assert sorted(w[amplified[0.1]].tolist()) == [2.0] * 4 + [4.0] * 12  # alpha 4, 4, 4, 2, 1 per 2% step
    changed = np.flatnonzero(labels != pool.ai)
    assert (labels[changed] == pool.truth[changed]).all() and 0 < changed.size <= 20


def test_the_prompt_bootstrap_brackets_the_mean_and_collapses_on_a_constant():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(100), 3)
    x = rng.uniform(size=300)
    lo, hi = cluster_bootstrap(groups, x)
    assert lo < x.mean() < hi and hi - lo < 0.15
    assert cluster_bootstrap(groups, np.ones(300)) == (1.0, 1.0)
