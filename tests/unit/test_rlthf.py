"""The RLTHF selection core on constructed curves and small arrays."""

import numpy as np
import pytest

from rlthf_plugin.selection.rlthf import (
    MIN_CURVE, ai_margins, analyze_curve, flip_gate, mcnemar_exact, schedule, select_actions, wilson_lower_bound)


def three_piece(n_left=50, n_mid=400, n_right=50, seed=0):
    """Steep start 10 -> 2, flat 2 -> -1, steep end -1 -> -10: elbow at n_left, knee at n_left + n_mid."""
    y = np.concatenate([np.linspace(10, 2, n_left, endpoint=False), np.linspace(2, -1, n_mid, endpoint=False),
                        np.linspace(-1, -10, n_right)])
    return np.random.default_rng(seed).permutation(y)


def test_known_elbow_knee_reflection():
    c = analyze_curve(three_piece())
    assert abs(c.elbow - 50) <= 2 and abs(c.knee - 450) <= 2
    assert c.elbow_margin == pytest.approx(2.0, abs=0.1)
    # Reflection: first rank with margin <= -2, inside the steep right part.
    assert c.reflection_margin == pytest.approx(-c.elbow_margin)
    assert c.sorted_margins[c.reflection] <= c.reflection_margin < c.sorted_margins[c.reflection - 1]
    assert c.elbow <= c.knee <= c.reflection


def test_scale_free_and_robust_to_noise():
    m = three_piece()
    base = analyze_curve(m)
    scaled = analyze_curve(1000 * m + 5)
    assert (scaled.elbow, scaled.knee) == (base.elbow, base.knee)
    noisy = analyze_curve(m + np.random.default_rng(1).normal(0, 0.2, m.size))
    assert abs(noisy.elbow - 50) <= 10 and abs(noisy.knee - 450) <= 10


def test_small_curve_shape():
    c = analyze_curve(three_piece(5, 40, 5))
    assert abs(c.elbow - 5) <= 2 and abs(c.knee - 45) <= 2


def test_degenerate_curves():
    tiny = analyze_curve(np.array([3.0, 1.0, -2.0]))
    assert (tiny.elbow, tiny.knee) == (0, 3) and MIN_CURVE > 3
    assert tiny.reflection == 3  # no margin <= -3
    line = analyze_curve(np.linspace(1, -1, 100))  # no corners: no steep regions
    assert (line.elbow, line.knee) == (0, 100)
    flat = analyze_curve(np.zeros(20))
    assert flat.elbow == 0 and flat.reflection >= flat.knee
    empty = analyze_curve(np.zeros(0))
    assert empty.n == 0


def test_ranks_invert_order():
    m = np.array([0.5, 2.0, -1.0, 1.0])
    c = analyze_curve(m)
    assert c.ranks().tolist() == [2, 0, 3, 1]


def test_input_checks():
    with pytest.raises(ValueError, match="1-D"):
        analyze_curve(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        analyze_curve(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="budget"):
        select_actions(np.zeros(5), budget=-1, back_off=0.5)
    with pytest.raises(ValueError, match="back_off"):
        select_actions(np.zeros(5), budget=1, back_off=1.0)
    with pytest.raises(ValueError, match="rewards_a"):
        ai_margins(np.zeros(2), np.zeros(3), np.array(["A", "B"]))
    with pytest.raises(ValueError, match="'A' or 'B'"):
        ai_margins(np.zeros(2), np.zeros(2), np.array(["A", "tie"]))
    with pytest.raises(ValueError, match="unknown flip mode"):
        flip_gate(0, 0, mode="sometimes")


def test_ai_margins_follow_the_label():
    m = ai_margins(np.array([1.0, 1.0, 0.0]), np.array([0.0, 0.0, 2.0]), np.array(["A", "B", "B"]))
    assert m.tolist() == [1.0, -1.0, 2.0]
    assert ai_margins(np.array([1.0]), np.array([0.0]), np.array([1])).tolist() == [-1.0]


def test_actions_gate_closed_asks_from_the_right_end():
    m = three_piece()
    s = select_actions(m, budget=20, back_off=0.6)
    c = s.curve
    assert not s.gate.open and s.counts()["flip"] == 0 and s.budget == 20
    asked = np.flatnonzero(s.action == "ask")
    assert sorted(s.rank[asked].tolist()) == list(range(480, 500))  # the lowest margins
    assert s.priority[np.argmin(m)] == 1.0
    keep = s.action == "keep"
    assert (s.rank[keep] < int(0.4 * c.knee)).all() and keep.sum() == int(0.4 * c.knee)
    unflipped = (s.region == "flip") & (s.action == "drop")
    assert unflipped.any() and "closed" in s.reason(int(np.flatnonzero(unflipped)[0]))["why"]
    assert set(s.counts()) == {"ask", "flip", "keep", "drop"} and sum(s.counts().values()) == m.size


def test_actions_gate_open_flips_and_asks_left_of_reflection():
    m = three_piece()
    gate = flip_gate(18, 20)
    assert gate.open
    s = select_actions(m, budget=20, back_off=0.6, gate=gate, probe=0.1)
    c = s.curve
    flipped = s.rank[s.action == "flip"]
    assert (flipped >= c.reflection).all()
    asked = s.rank[s.action == "ask"]
    probes = asked[asked >= c.reflection]
    walk = np.sort(asked[asked < c.reflection])
    assert len(probes) == 2 and walk.tolist() == list(range(c.reflection - 18, c.reflection))
    assert s.counts()["flip"] == 500 - c.reflection - 2
    r = s.reason(int(np.flatnonzero(s.action == "flip")[0]))
    assert r["region"] == "flip" and "reflection" in r["why"] and r["margin"] <= c.reflection_margin


def test_back_off_and_audit():
    m = three_piece()
    loose = select_actions(m, budget=10, back_off=0.1)
    strict = select_actions(m, budget=10, back_off=0.6)
    assert loose.counts()["keep"] > strict.counts()["keep"]
    a = select_actions(m, budget=20, back_off=0.6, audit=0.5, seed=3)
    assert a.counts()["ask"] == 20 and (a.region == "audit").sum() == 10


def test_budget_larger_than_pool():
    s = select_actions(np.array([1.0, -1.0, 0.5]), budget=10, back_off=0.5)
    assert s.counts()["ask"] == 3


def test_flip_gate_needs_evidence():
    assert not flip_gate(9, 9, min_evidence=10).open
    assert not flip_gate(6, 20).open  # 30% errors: flipping would hurt
    assert flip_gate(19, 20).open
    assert flip_gate(0, 0, mode="always").open and not flip_gate(20, 20, mode="never").open
    assert wilson_lower_bound(0, 0) == 0.0
    assert 0.5 < wilson_lower_bound(18, 20) < 0.9


def test_paper_schedule():
    alphas, betas = zip(*(schedule(i) for i in range(8)))
    assert alphas == (4, 4, 4, 2, 1, 1, 1, 1)
    assert betas == (0.6, 0.6, 0.6, 0.4, 0.2, 0.1, 0.1, 0.1)
    assert schedule(1, amplification=[2], back_off=[0.3]) == (2.0, 0.3)
    with pytest.raises(ValueError):
        schedule(0, amplification=[0.5])


def test_scipy_wilson_bound_and_mcnemar_equal_the_closed_forms():
    """scipy.stats gives the numbers the hand-written formulas gave."""
    import math

    def wilson(k, n, z=1.645):
        p = k / n
        centre, spread = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return max(0.0, (centre - spread) / (1 + z * z / n))

    for n in range(1, 41):
        for k in range(n + 1):
            assert wilson_lower_bound(k, n) == pytest.approx(wilson(k, n), abs=1e-12)
            assert wilson_lower_bound(k, n, z=2.326) == pytest.approx(wilson(k, n, 2.326), abs=1e-12)
    for b in range(30):
        for c in range(30):
            k = b + c
            exact = sum(math.comb(k, j) for j in range(b, k + 1)) / 2 ** k if k else 1.0
            assert mcnemar_exact(b, c) == pytest.approx(exact, abs=1e-12)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)
