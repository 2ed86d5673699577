"""The cascade benchmark's counting (the full run is `python -m benchmarks.cascade_dev`):
calls per escalated pair, budgets, and an escalation counted as a fix only where it agrees
with the humans."""

from __future__ import annotations

import numpy as np

from benchmarks.cascade_dev import Arm, Data, simulate
from rlthf_plugin.selection.signals import encode_votes


class FlatRM:
    """No reward-model signal: every margin 0 (the counting does not depend on it)."""

    def margins(self, labels, weights, seed):
        return np.zeros(len(labels))


def _data(n: int = 100, seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    truth = rng.choice(["A", "B"], n)
    other = np.where(truth == "A", "B", "A")
    pi, ji, od, lab = [], [], [], []
    for i in range(n):
        prim = other[i] if rng.random() < 0.25 else truth[i]
        ba = other[i] if i % 5 == 0 and prim == truth[i] else (truth[i] if i % 5 == 0 else prim)  # 20% flips
        strong = truth[i] if rng.random() < 0.8 else other[i]
        for j, (ab_label, ba_label) in enumerate([(prim, ba), (strong, strong)]):
            pi += [i, i]
            ji += [j, j]
            od += ["ab", "ba"]
            lab += [ab_label, ba_label]
    votes, _ = encode_votes(pi, ji, od, lab, n_pairs=n, n_judges=2)
    texts = [f"t{i}" for i in range(n)]
    return Data("synthetic", texts, texts, [t + "b" for t in texts], truth, votes, ["cheap", "strong"])


def test_calls_budgets_and_fixes_are_counted_honestly():
    d = _data()
    n = d.truth.size
    base_wrong = d.primary_label != d.truth
    undecided = ~np.isin(d.primary_label, ["A", "B"])
    none, = simulate(d, FlatRM(), Arm("none"), 0, [0.06], 0.02, 1.0)
    cascade, = simulate(d, FlatRM(), Arm("cascade", (0.2,), 1), 0, [0.06], 0.02, 1.0)
    every, = simulate(d, FlatRM(), Arm("everything", None, 1), 0, [0.06], 0.02, 1.0)
    assert none["calls"] == 0 and none["judge_cost"] == 0 and none["errors"] == int(base_wrong.sum())
    assert cascade["escalated"] == {"strong": round(0.2 * n)} and cascade["calls"] == 2 * round(0.2 * n)
    assert every["escalated"] == {"strong": n} and every["calls"] == 2 * n
    strong_right = d.votes[:, 1, 0] == np.where(d.truth == "A", 1.0, -1.0)
    # The budget goes to the pairs without a winner first: all 20 flips are settled, a fix
    # only where the strong judge agrees with the humans (the human batch may add a few).
    assert undecided.sum() == 20
    assert int((undecided & strong_right).sum()) <= cascade["fixed_undecided"] < 20
    # Escalating everything settles every pair under the strong judge: fixed where it agrees
    # with the humans, introduced where it overrules a right primary (humans undo some).
    assert every["fixed"] >= int((base_wrong & strong_right).sum())
    assert 0 < every["introduced"] <= int((~base_wrong & ~strong_right).sum())
    assert every["human_cost"] == cascade["human_cost"] == none["human_cost"] == 3 * round(0.02 * n)
