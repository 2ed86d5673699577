"""The pure parts of the cascade: which pairs to escalate, settling, the tie share."""

from __future__ import annotations

import numpy as np
import pytest

from rlthf_plugin.selection.allocation import allocate
from rlthf_plugin.selection.escalation import choose_escalations, escalation_value
from rlthf_plugin.selection.signals import encode_votes, settle, signal_table


def test_half_judged_then_inconsistent_then_by_value():
    p = np.array([0.9, 0.5, 0.1, 0.6, np.nan, 0.45, 0.2])
    eligible = np.array([1, 1, 1, 1, 1, 1, 0], bool)
    inconsistent = np.array([0, 0, 0, 0, 1, 0, 0], bool)
    in_flight = np.array([0, 0, 0, 0, 0, 0, 1], bool)  # a killed run's pair comes first, eligible or not
    got = choose_escalations(p, budget=4, eligible=eligible, inconsistent=inconsistent, in_flight=in_flight,
                             rule="uncertainty")
    assert got.tolist() == [6, 4, 1, 5]
    assert choose_escalations(p, budget=3, eligible=eligible, rule="p_wrong").tolist() == [0, 3, 1]
    # beyond_batch: the two pairs the human batch takes anyway come last.
    assert choose_escalations(p, budget=3, eligible=eligible, rule="beyond_batch", skip=2).tolist() == [1, 5, 2]
    assert choose_escalations(p, budget=10, eligible=eligible).size == 6
    assert choose_escalations(p, budget=0, eligible=eligible).size == 0
    with pytest.raises(ValueError, match="unknown escalation rule"):
        escalation_value(p, rule="guess")
    with pytest.raises(ValueError, match="eligible"):
        choose_escalations(p, budget=1, eligible=eligible[:3])


def test_settle_takes_the_strongest_escalation_judge_with_a_winner():
    # judges: 0 primary, 1 cheap escalation, 2 strong escalation
    pi, ji, od, lab = [], [], [], []
    votes_of = {0: [("A", "B"), ("A", "A"), ("A", "B"), ("B", "B")],
                1: [("B", "B"), ("B", "B"), None, None],
                2: [("A", "B"), ("B", "B"), None, ("A", "A")]}
    for j, vs in votes_of.items():
        for i, v in enumerate(vs):
            if v:
                for o, label in zip(("ab", "ba"), v):
                    pi.append(i), ji.append(j), od.append(o), lab.append(label)
    x, _ = encode_votes(pi, ji, od, lab, n_pairs=4, n_judges=3)
    judge = settle(x, np.zeros(4, int), [2, 1])
    # pair 0: the strong judge split, the cheap one settles; 1: the strong one; 2: none; 3: the strong one.
    assert judge.tolist() == [1, 2, 0, 2]
    # settle = "ties": only where the primary has no winner (pairs 0 and 2); elsewhere the verdicts are signals.
    assert settle(x, np.zeros(4, int), [2, 1], only=[True, False, True, False]).tolist() == [1, 0, 0, 0]
    t = signal_table(x, 0, judge_names=["p", "cheap", "strong"], settlers=[2, 1])
    assert t.label.tolist() == ["B", "B", "tie_inconsistent", "A"]
    # The primary is now a signal against the settled label; the settler's own error rate is a column.
    assert t.column("label_judge:strong").tolist() == [0, 1, 0, 1]


def test_a_batch_of_suspects_cannot_be_crowded_out_by_ties():
    rng = np.random.default_rng(0)
    n = 1000
    p = rng.uniform(0, 0.6, n)
    tie = np.zeros(n, bool)
    tie[:600] = True  # most of the pool: unsettled tie_inconsistent pairs
    shares = {"suspect": 0.8, "real": 0.0, "explore": 0.1, "tie": 0.1}
    b = allocate(np.where(tie, np.nan, p), budget=50, eligible=~tie, tie=tie, shares=shares, seed=1)
    c = b.counts()
    assert c == {"suspect": 40, "real": 0, "explore": 5, "tie": 5}
    # Ties only in their share, suspects are the most suspect non-tie pairs.
    assert tie[b.of("tie")].all() and not tie[b.of("suspect")].any() and not tie[b.of("explore")].any()
    top = np.sort(np.where(tie, -1, p))[::-1][:40]
    assert np.allclose(np.sort(p[b.of("suspect")])[::-1], top)
    # Even a tie share of 0.5 leaves the suspects theirs; an unused tie share goes to the suspects.
    big = allocate(np.where(tie, np.nan, p), budget=50, eligible=~tie, tie=tie,
                   shares={"suspect": 0.4, "real": 0.0, "explore": 0.1, "tie": 0.5}, seed=1)
    assert big.counts()["suspect"] == 20 and big.counts()["tie"] == 25
    few = np.zeros(n, bool)
    few[:2] = True
    b2 = allocate(np.where(few, np.nan, p), budget=50, eligible=~few, tie=few, shares=shares, seed=1)
    assert b2.counts()["tie"] == 2 and b2.counts()["suspect"] + b2.counts()["explore"] == 48
    assert b2.counts()["suspect"] >= 42
