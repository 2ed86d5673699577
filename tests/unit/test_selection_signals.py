"""Signals, prior, error model, calibrated decisions and the batch, on seeded synthetic arrays."""

import numpy as np
import pytest

from rlthf_plugin.selection.allocation import allocate
from rlthf_plugin.selection.trust import calibrate, decide
from rlthf_plugin.selection.error_model import PRIOR_FEATURE, fit_error_model
from rlthf_plugin.selection.prior import PRIOR_METHODS, prior_wrong
from rlthf_plugin.selection.signals import audited_labels, encode_votes, label_judges, primary_labels, signal_table


# -- votes and the primary label -----------------------------------------------------------------
def test_encode_votes_orders_and_unknown_order():
    votes, p = encode_votes([0, 0, 1, 2, 3, 3], [0, 0, 0, 0, 1, 0], ["ab", "ba", "", "", "ab", "ab"],
                            ["A", "B", "tie_inconsistent", "B", "tie", "parse_error"], n_pairs=4, n_judges=2,
                            p_a=[0.9, 0.2, np.nan, np.nan, 0.5, np.nan])
    assert votes.shape == (4, 2, 2)
    assert votes[0, 0].tolist() == [1.0, -1.0]
    assert votes[1, 0].tolist() == [1.0, -1.0]      # an unknown order's inconsistency = split slots
    assert votes[2, 0].tolist() == [-1.0, -1.0]     # an unknown order fills both slots
    assert votes[3, 1, 0] == 0.0 and np.isnan(votes[3, 1, 1]) and np.isnan(votes[3, 0]).all()
    assert p[0, 0].tolist() == [0.9, 0.2]
    assert primary_labels(votes, 0).tolist() == ["tie_inconsistent", "tie_inconsistent", "B", ""]
    assert primary_labels(votes, 1).tolist() == ["", "", "", "tie"]


def test_encode_votes_errors_name_the_problem():
    with pytest.raises(ValueError, match="order must be"):
        encode_votes([0], [0], ["xy"], ["A"], n_pairs=1, n_judges=1)
    with pytest.raises(ValueError, match="label must be one of"):
        encode_votes([0], [0], ["ab"], ["C"], n_pairs=1, n_judges=1)
    with pytest.raises(ValueError, match="known order"):
        encode_votes([0], [0], ["ab"], ["tie_inconsistent"], n_pairs=1, n_judges=1)
    with pytest.raises(ValueError, match=r"pair_index must be in \[0, 1\)"):
        encode_votes([1], [0], [""], ["A"], n_pairs=1, n_judges=1)
    with pytest.raises(ValueError, match="primary must be in"):
        primary_labels(np.zeros((2, 1, 2)), 3)


def test_signal_table_columns_are_oriented_against_the_primary():
    # pair 0: primary A, other judge B in both orders; pair 1: primary B, other split;
    # pair 2: primary A, other agrees; pair 3: primary tie (not auditable).
    votes, p = encode_votes([0, 0, 1, 1, 1, 2, 2, 3], [0, 1, 0, 1, 1, 0, 1, 0],
                            ["", "", "", "ab", "ba", "ab", "", ""], ["A", "B", "B", "A", "B", "A", "A", "tie"],
                            n_pairs=4, n_judges=2, p_a=[0.8, np.nan, 0.3, np.nan, np.nan, 0.6, np.nan, np.nan])
    t = signal_table(votes, 0, judge_names=["gpt", "small"], rm_margin=[2.0, 2.0, np.nan, 1.0],
                     length_a=[10, 10, 100, 5], length_b=[100, 10, 10, 5], p_a=p)
    assert t.label.tolist() == ["A", "B", "A", "tie"]
    assert t.auditable.tolist() == [True, True, True, False]
    assert t.column("against:small").tolist() == [1.0, 0.0, -1.0, 0.0]
    assert t.column("split:small").tolist() == [0.0, 1.0, 0.0, 0.0]
    assert t.column("rm_margin").tolist() == [2.0, -2.0, 0.0, 0.0]   # oriented by the primary label
    assert t.column("length_log_ratio")[0] < 0 < t.column("length_log_ratio")[2]
    assert t.column("primary_confidence") == pytest.approx([0.3, 0.2, 0.1, 0.0])
    assert t.column("primary_single_order").tolist() == [0.0, 0.0, 1.0, 0.0]   # pair 2: only ab known
    assert "against:gpt" not in t.names
    with pytest.raises(KeyError, match="known: rm_margin"):
        t.column("nope")
    with pytest.raises(ValueError, match="judge_names has 1 names"):
        signal_table(votes, 0, judge_names=["gpt"])


def fallback_votes():
    """Judges gpt (primary, 0), b (1), c (2). Pair 0: gpt A, b B. Pair 1: only b (A, both
    orders, P(A) 0.9) and c (B). Pair 2: only b, split across orders. Pair 3: only c (A).
    Pair 4: b A and c B. Pair 5: no vote. Pair 6: gpt only a parse error, b B."""
    votes, p = encode_votes(
        [0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 6, 6], [0, 1, 1, 1, 2, 1, 1, 2, 1, 2, 0, 1],
        ["", "", "ab", "ba", "", "ab", "ba", "", "", "", "", ""],
        ["A", "B", "A", "A", "B", "A", "B", "A", "A", "B", "parse_error", "B"], n_pairs=7, n_judges=3,
        p_a=[np.nan, np.nan, 0.9, 0.9] + [np.nan] * 8)
    return votes, p


def test_a_pair_the_primary_did_not_vote_on_is_audited_under_the_best_covered_judge():
    votes, p = fallback_votes()
    # b labeled 4 pairs, c 3: b is the first fallback; a parse error is no vote.
    assert label_judges(votes, 0).tolist() == [0, 1, 1, 2, 1, -1, 1]
    labels, judge = audited_labels(votes, 0)
    assert labels.tolist() == ["A", "A", "tie_inconsistent", "A", "A", "", "B"] and judge.tolist()[5] == -1
    # The explicit primary wins where it voted, however few pairs it labeled; the ranking of
    # the others follows the coverage given (ties: the lower index, i.e. the first name).
    assert label_judges(votes, 2, coverage=[9, 1, 5]).tolist() == [0, 2, 1, 2, 2, -1, 1]
    assert label_judges(votes, 0, coverage=[0, 3, 3]).tolist()[4] == 1
    assert label_judges(votes, 0, coverage=[0, 1, 3]).tolist()[4] == 2
    with pytest.raises(ValueError, match=r"coverage must have shape \(3,\)"):
        label_judges(votes, 0, coverage=[1, 2])


def test_a_fallback_judge_is_not_its_own_other_judge_signal():
    votes, p = fallback_votes()
    t = signal_table(votes, 0, judge_names=["gpt", "b", "c"], rm_margin=[1.0] * 7, p_a=p)
    assert t.label.tolist() == ["A", "A", "tie_inconsistent", "A", "A", "", "B"]
    assert t.judge.tolist() == [0, 1, 1, 2, 1, -1, 1]
    assert t.auditable.tolist() == [True, True, False, True, True, False, True]
    # Pair 1 is b's label: b neither agrees with nor splits from itself; c votes against it.
    assert t.column("against:b").tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert t.column("split:b").tolist() == [0.0] * 7
    assert t.column("against:c").tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    # The label judge's own confidence and order coverage stand in for the primary's.
    assert t.column("primary_confidence")[1] == pytest.approx(0.4)
    assert t.column("primary_single_order").tolist() == [0.0] * 7
    assert t.column("rm_margin").tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, -1.0]
    # Which judge the label is: one column per judge that stands in for the primary.
    assert t.column("label_judge:b").tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    assert t.column("label_judge:c").tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    # Where the primary covers every pair there is no such column.
    full, _ = encode_votes([0, 0], [0, 1], ["", ""], ["A", "B"], n_pairs=1, n_judges=2)
    assert not any(n.startswith("label_judge:") for n in signal_table(full, 0, judge_names=["g", "b"]).names)


@pytest.mark.parametrize("method", sorted(PRIOR_METHODS))
def test_priors_score_fallback_pairs_without_the_label_judge_as_annotator(method):
    # The synthetic set with the primary's votes removed from a third of the pairs: those
    # are audited under the strong judge, and every auditable pair gets a prior.
    t, votes, margin, wrong = synthetic(seed=5)
    votes = votes.copy()
    votes[::3, 0, :] = np.nan
    t = signal_table(votes, 0, judge_names=["primary", "strong", "weak"], rm_margin=margin)
    assert (t.judge[::3] == 1).all() and t.auditable.all()
    p = prior_wrong(t, votes, 0, rm_margin=margin, method=method)
    assert np.isfinite(p).all()
    if method == "fixed":
        # A fallback pair on which only the weak judge disagrees: no vote of the strong judge counts.
        fb = np.zeros(len(p), bool)
        fb[::3] = True
        against_weak = t.column("against:weak") > 0
        assert (t.column("against:strong")[fb] == 0).all()
        i, k = np.flatnonzero(fb & against_weak)[0], np.flatnonzero(fb & ~against_weak)[0]
        logit = lambda q: np.log(q / (1 - q))  # noqa: E731
        m = t.column("rm_margin")
        # Only the weak judge's vote (+1 against vs -1 agrees) and the margin set them apart.
        assert logit(p[i]) - logit(p[k]) == pytest.approx(2.0 + (m[k] - m[i]) / m.std())


# -- synthetic data: a strong and a weak second judge ----------------------------------------------
def synthetic(n=1500, seed=0):
    """The primary is wrong on 20%; judge 1 sees the truth 90% of the time, judge 2 60%."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(["A", "B"], size=n)
    wrong = rng.random(n) < 0.2
    prim = np.where(wrong, np.where(truth == "A", "B", "A"), truth)
    j1 = np.where(rng.random(n) < 0.9, truth, np.where(truth == "A", "B", "A"))
    j2 = np.where(rng.random(n) < 0.6, truth, np.where(truth == "A", "B", "A"))
    idx = np.arange(n)
    votes, _ = encode_votes(np.r_[idx, idx, idx], np.r_[np.zeros(n, int), np.ones(n, int), np.full(n, 2)],
                            [""] * (3 * n), np.r_[prim, j1, j2], n_pairs=n, n_judges=3)
    margin = np.where(truth == "A", 1.0, -1.0) * 0.5 + rng.normal(0, 1.0, n)
    t = signal_table(votes, 0, judge_names=["primary", "strong", "weak"], rm_margin=margin)
    return t, votes, margin, wrong


@pytest.mark.parametrize("method", sorted(PRIOR_METHODS))
def test_every_prior_ranks_errors_above_chance(method):
    t, votes, margin, wrong = synthetic()
    p = prior_wrong(t, votes, 0, rm_margin=margin, method=method)
    assert np.isfinite(p).all() and (p > 0).all() and (p < 1).all()
    top = np.argsort(-p, kind="stable")[:150]
    assert wrong[top].mean() > 0.5 > wrong.mean()


def test_prior_unknown_method_lists_the_known_ones():
    t, votes, margin, _ = synthetic(50)
    with pytest.raises(ValueError, match="known: fixed, dawid_skene, crowdlab"):
        prior_wrong(t, votes, 0, method="vote")


def test_error_model_learns_whom_to_trust_and_is_cross_fitted():
    t, votes, margin, wrong = synthetic(seed=1)
    prior = prior_wrong(t, votes, 0, rm_margin=margin)
    y = np.full(wrong.size, np.nan)
    labeled = np.random.default_rng(2).choice(wrong.size, 400, replace=False)
    y[labeled] = wrong[labeled]
    em = fit_error_model(t, prior, y, prior_strength=5.0)
    # The prior counts both judges alike; the labels teach that the strong one matters more.
    assert em.weights["against:strong"] > em.weights["against:weak"] > -0.5
    assert em.n_labels == 400 and em.n_errors == int(wrong[labeled].sum())
    # Cross-fitted: flipping one labeled pair's own label does not move its own score.
    i = labeled[0]
    y2 = y.copy()
    y2[i] = 1 - y2[i]
    em2 = fit_error_model(t, prior, y2, prior_strength=5.0)
    rest = np.setdiff1d(labeled, [i])
    assert em2.p_wrong[i] == pytest.approx(em.p_wrong[i], abs=0.02)
    assert not np.allclose(em2.p_wrong[rest], em.p_wrong[rest])
    assert PRIOR_FEATURE in em.weights


def test_error_model_without_labels_is_the_prior_and_shrinks_towards_it():
    t, votes, margin, wrong = synthetic(300, seed=3)
    prior = prior_wrong(t, votes, 0, rm_margin=margin)
    none = fit_error_model(t, prior, np.full(wrong.size, np.nan))
    assert np.allclose(none.p_wrong, prior) and none.weights == {}
    y = np.full(wrong.size, np.nan)
    y[:6] = 1.0  # six labels, all errors: a strong prior keeps the scores near it
    strong = fit_error_model(t, prior, y, prior_strength=1000.0)
    weak = fit_error_model(t, prior, y, prior_strength=0.1)
    gap = lambda em: np.abs(em.p_wrong[6:] - prior[6:]).mean()  # noqa: E731
    assert gap(strong) < gap(weak)


# -- calibration and decisions -----------------------------------------------------------------
def test_calibration_bounds_are_exact_clopper_pearson():
    from scipy.stats import beta

    s = np.r_[np.full(20, 0.1), np.full(20, 0.9)]
    y = np.r_[np.zeros(19), 1, np.ones(18), 0, 0]
    cal = calibrate(s, y)
    assert cal.n.tolist() == [20, 20] and cal.errors.tolist() == [1, 18]
    assert cal.lower[1] == pytest.approx(beta.ppf(0.05, 18, 3))
    assert cal.upper[0] == pytest.approx(beta.ppf(0.95, 2, 19))


def test_decide_flips_only_with_evidence_and_never_labeled_pairs():
    rng = np.random.default_rng(4)
    p = rng.random(2000)
    truth_wrong = (rng.random(2000) < p ** 3).astype(float)   # high scores: mostly errors
    y = np.full(2000, np.nan)
    labeled = rng.choice(2000, 600, replace=False)
    y[labeled] = truth_wrong[labeled]
    d = decide(p, y, flip_min_precision=0.65, trust_max_error=0.1)
    flips = np.flatnonzero(d.decision == "flip")
    trusted = np.flatnonzero(d.decision == "trust")
    assert flips.size and trusted.size
    assert not np.isin(labeled, np.r_[flips, trusted]).any()
    assert truth_wrong[flips].mean() >= 0.7
    assert truth_wrong[trusted].mean() < 0.1
    assert (d.lower[flips] >= 0.65).all()
    # No labels: nothing is proven.
    none = decide(p, np.full(2000, np.nan))
    assert none.counts() == {"flip": 0, "trust": 0, "none": 2000}


# -- the batch ------------------------------------------------------------------------------
def test_allocate_splits_the_budget_and_interleaves_the_kinds():
    p = np.linspace(0, 1, 100)
    eligible = np.ones(100, bool)
    eligible[99] = False  # already labeled
    b = allocate(p, budget=20, eligible=eligible, real_dissimilarity=[0.1, 0.9, 0.5],
                 shares={"suspect": 0.7, "real": 0.1, "explore": 0.2}, seed=0)
    assert b.counts() == {"suspect": 14, "real": 2, "explore": 4}
    assert b.of("suspect").tolist() == list(range(98, 84, -1))
    assert b.of("real").tolist() == [1, 2]
    assert not np.isin(b.of("explore"), b.of("suspect")).any() and 99 not in b.index
    assert (np.diff(b.priority) < 0).all()
    assert set(b.kind[:5]) >= {"suspect", "explore"}  # interleaved, not one kind after another
    # No REAL candidates: their share goes to the pool.
    b2 = allocate(p, budget=20, eligible=eligible, shares={"suspect": 0.7, "real": 0.1, "explore": 0.2})
    assert sum(b2.counts().values()) == 20 and b2.counts()["real"] == 0
    with pytest.raises(ValueError, match="sum to 1"):
        allocate(p, budget=5, shares={"suspect": 0.5})
    with pytest.raises(ValueError, match="known: suspect, real, explore"):
        allocate(p, budget=5, shares={"suspects": 1.0})


def test_encode_votes_conflicting_duplicates_make_a_tie():
    votes, _ = encode_votes([0, 0, 1, 1], [0, 0, 0, 0], ["", "", "ab", "ab"], ["A", "B", "A", "A"],
                            n_pairs=2, n_judges=1)
    assert votes[0, 0].tolist() == [0.0, 0.0]
    assert votes[1, 0, 0] == 1.0 and np.isnan(votes[1, 0, 1])
    assert primary_labels(votes, 0).tolist() == ["tie", "A"]


def test_bounds_count_only_the_labels_on_the_safe_side_of_a_pair():
    # One block of 12 labeled errors with scores 0.80-0.91; two unlabeled pairs in it.
    p = np.r_[np.linspace(0.80, 0.91, 12), np.zeros(12), 0.95, 0.801]
    y = np.r_[np.ones(12), np.zeros(12), np.nan, np.nan]
    p[12:24] = np.linspace(0.1, 0.2, 12)
    d = decide(p, y, flip_min_precision=0.7, min_evidence=1)
    assert d.decision[24] == "flip"       # above every labeled error of its block
    assert d.decision[25] == "none"       # at the block's bottom: only one label below it
    assert d.lower[25] < 0.7 <= d.lower[24]


def test_bounds_are_never_bolder_than_the_whole_block():
    # Errors that happen to sit at the bottom of a block (9 of 10 at 0.50-0.59) pooled with
    # mostly right labels above them (3 of 30 at 0.60-0.90): the block's rate is 12/40.
    p = np.r_[np.linspace(0.01, 0.2, 20), np.linspace(0.50, 0.59, 10), np.linspace(0.60, 0.90, 30), 0.595]
    y = np.r_[np.zeros(20), np.ones(9), 0, np.r_[np.ones(3), np.zeros(27)], np.nan]
    d = decide(p, y, flip_min_precision=0.5, min_evidence=10)
    top = d.calibration.summary()[-1]
    assert (top["n"], top["errors"]) == (40, 12)
    # The 10 labels at or below the open pair alone would give a lower bound over 0.5.
    assert d.lower[-1] == pytest.approx(top["lower"]) and d.lower[-1] < 0.5
    assert d.decision[-1] == "none"


def test_the_siblings_vote_in_dawid_skene_only_where_a_label_touches_the_pair():
    from rlthf_plugin.selection.prior import SIBLING_MIN, _annotators

    votes = np.full((4, 1, 2), 1.0)  # one judge: A on every pair
    sib = np.array([0.0, SIBLING_MIN / 2, -0.5, 0.5])  # none; no order implied; against; for
    t = signal_table(votes, 0, judge_names=["j"], sibling_margin=sib)
    labels, _ = _annotators(t, votes, 0, np.full(4, np.nan))
    # Column 0 is the audited label (A = class 0); the last column is the siblings'.
    np.testing.assert_array_equal(labels[:, 0], [0, 0, 0, 0])
    np.testing.assert_array_equal(labels[:, -1], [np.nan, 1, 1, 0])
