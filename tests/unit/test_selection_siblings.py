"""The sibling margin: a leave-one-out Bradley-Terry fit over the other pairs of a prompt."""

import numpy as np
import pytest

from rlthf_plugin.selection import siblings
from rlthf_plugin.selection.siblings import sibling_margins


def _exact_loo(group, a, b, label, weights, l2):
    """Refit without each labeled pair (many Newton steps): the quantity the ALO approximates."""
    out = np.zeros(len(group))
    for i in range(len(group)):
        keep = np.ones(len(group), bool)
        keep[i] = False
        lab = np.where(keep, label, 0.0)
        # Scoring pair i from a fit without it: the full fit of the others, read at i.
        out[i] = sibling_margins(group, a, b, lab, weights=weights, l2=l2, steps=50)[i] if label[i] else np.nan
    return out


def test_transitivity_scores_an_unlabeled_pair():
    # x > y and y > z: the unlabeled (x, z) leans to x; (z, x) to x as well, oriented.
    m = sibling_margins([0, 0, 0, 0], [0, 1, 0, 2], [1, 2, 2, 0], [1, 1, 0, 0])
    assert m[2] > 0.3 and m[3] < -0.3
    assert m[2] == pytest.approx(-m[3])


def test_a_cycle_argues_against_every_label():
    # x > y > z > x: without its own label, each pair's siblings imply the opposite.
    m = sibling_margins([7, 7, 7], [0, 1, 2], [1, 2, 0], [1, 1, 1])
    assert (m < -0.1).all()
    # Said the other way round (B preferred), the margins turn with the labels.
    m2 = sibling_margins([7, 7, 7], [1, 2, 0], [0, 1, 2], [-1, -1, -1])
    np.testing.assert_allclose(m2, -m, atol=1e-9)


def test_a_pair_without_siblings_gets_zero():
    # Prompt 1 has one pair; prompt 2 has one labeled pair beside an unrelated unlabeled one;
    # prompt 3 a pair of identical responses.
    m = sibling_margins([1, 2, 2, 3, 3], [0, 1, 3, 5, 5], [1, 2, 4, 5, 6], [1, 1, 0, 1, -1])
    assert m[0] == 0.0 and m[1] == 0.0 and m[3] == 0.0
    assert abs(m[2]) < 1e-12  # responses no label touches stay at the prior's 0


def test_leave_one_out_is_close_to_the_exact_refit():
    rng = np.random.default_rng(0)
    group, a, b, label = [], [], [], []
    for g in range(30):
        k = int(rng.integers(3, 7))
        for _ in range(int(rng.integers(2, 10))):
            u, v = rng.choice(k, size=2, replace=False)
            group.append(g), a.append(100 * g + u), b.append(100 * g + v)
            label.append(float(rng.choice([1, -1, 0], p=[0.45, 0.45, 0.1])))
    group, a, b, label = map(np.asarray, (group, a, b, label))
    weights = rng.choice([1.0, 4.0], size=group.size)
    approx = sibling_margins(group, a, b, label, weights=weights)
    exact = _exact_loo(group, a, b, label, weights, 1.0)
    lab = label != 0
    assert np.corrcoef(approx[lab], exact[lab])[0, 1] > 0.995
    assert np.abs(approx[lab] - exact[lab]).max() < 0.2
    assert (np.sign(approx[lab]) == np.sign(exact[lab]))[np.abs(exact[lab]) > 0.1].all()
    # An unlabeled pair was never in the fit: its margin is exact.
    full = sibling_margins(group, a, b, label, weights=weights, steps=50)
    np.testing.assert_allclose(approx[~lab], full[~lab], atol=1e-6)


def test_prompts_solved_together_equal_one_at_a_time(monkeypatch):
    rng = np.random.default_rng(1)
    group = np.repeat(np.arange(12), 6)
    a = group * 10 + rng.integers(0, 2 + group % 5, size=group.size)
    b = group * 10 + rng.integers(0, 2 + group % 5, size=group.size) + 1
    label = rng.choice([1.0, -1.0, 0.0], size=group.size)
    together = sibling_margins(group, a, b, label)
    alone = np.concatenate([sibling_margins(group[group == g], a[group == g], b[group == g], label[group == g])
                            for g in range(12)])
    np.testing.assert_allclose(together, alone, atol=1e-9)
    monkeypatch.setattr(siblings, "_MAX_CELLS", 40)  # batches of one or a few prompts
    np.testing.assert_allclose(sibling_margins(group, a, b, label), together, atol=1e-9)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="label must hold"):
        sibling_margins([0, 0], [0, 1], [1, 2], [1, 2])
    with pytest.raises(ValueError, match="shape"):
        sibling_margins([0, 0], [0, 1], [1], [1, 1])
    with pytest.raises(ValueError, match="weights"):
        sibling_margins([0, 0], [0, 1], [1, 2], [1, 1], weights=[1, -1])
    with pytest.raises(ValueError, match="l2 > 0"):
        sibling_margins([0, 0], [0, 1], [1, 2], [1, 1], l2=0)
    assert sibling_margins([], [], [], []).shape == (0,)


def test_exactly_zero_means_no_other_label_touches_the_pair():
    # Prompt 0: (x, y) and (u, v) labeled, disjoint: neither has evidence from the other.
    # (x, z) unlabeled touches x only: its margin comes from x's label, not 0.
    m = sibling_margins([0, 0, 0], [0, 2, 0], [1, 3, 4], [1, -1, 0])
    assert m[0] == 0.0 and m[1] == 0.0
    assert m[2] > 0.1
    # Symmetric siblings (x and y both beat z, both lose to w): no order, near 0 but evidence.
    m = sibling_margins([5] * 5, [0, 0, 1, 3, 3], [1, 2, 2, 0, 1], [1, 1, 1, 1, 1])
    assert m[0] != 0.0 and abs(m[0]) < 0.01


@pytest.mark.parametrize("values", [[5, 3, 3, 9, 0, 5], [10**12, -4, 7, 7], [2], []])
def test_dense_codes_are_uniques_inverse(values):
    from rlthf_plugin.selection.siblings import _dense_codes

    x = np.asarray(values, dtype=np.int64)
    np.testing.assert_array_equal(_dense_codes(x), np.unique(x, return_inverse=True)[1].reshape(-1))


def test_the_batch_size_changes_no_margin(monkeypatch):
    rng = np.random.default_rng(0)
    n = 20000
    g = rng.integers(0, 3000, n)
    a, b = g * 10 + rng.integers(0, 6, n), g * 10 + rng.integers(0, 6, n)
    y, w = rng.choice([-1.0, 0.0, 1.0], n), rng.random(n) + 0.5
    monkeypatch.setattr(siblings, "_MAX_CELLS", 1 << 22)
    big = sibling_margins(g, a, b, y, weights=w)
    monkeypatch.setattr(siblings, "_MAX_CELLS", 1 << 10)
    np.testing.assert_array_equal(sibling_margins(g, a, b, y, weights=w), big)
