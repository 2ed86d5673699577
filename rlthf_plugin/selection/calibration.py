"""Calibrated probabilities from reward-model margins (Platt scaling), and their reliability.

A margin ``r(A) - r(B)`` is a Bradley-Terry logit only if the reward model's scale is
right; an embedding head trained on AI labels is not, so ``sigmoid(margin)`` is
overconfident. Platt scaling fits ``P(A better | margin) = sigmoid(slope * margin)`` on
pairs that humans labeled (scikit-learn's logistic regression).

The fit has **no position term** (no free intercept) and sees **both orders** of each
labeled pair, ``(margin, A better)`` and ``(-margin, B better)``: which side a response
was shown on carries no information about its quality, so the probability for (A, B) is
the mirror of the one for (B, A). An intercept learned from human batches (which are
chosen, hence biased) would override the reward model's own preference and make the
predictions one-sided.

A fit whose slope is not positive is not monotone (a higher margin for A would make A
less likely): it is kept for the report, but :attr:`Calibration.monotone` is False and
no probability should be shown from it. :func:`calibration_problem` says in words why
there is no usable calibration. :func:`out_of_fold_probability` gives each labeled pair
the probability of a fit made without it, for an honest reliability diagram
(``sklearn.calibration.calibration_curve``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fewer human labels than this (or only one answer among them): no calibration.
MIN_LABELS = 20


@dataclass(frozen=True)
class Calibration:
    """``P(A better | margin) = 1 / (1 + exp(-(slope * margin + intercept)))``, fit on
    ``n`` human-labeled pairs (``intercept`` is 0 for a fit without a position term)."""

    slope: float
    intercept: float
    n: int
    method: str = "platt"

    def probability(self, margins: np.ndarray) -> np.ndarray:
        """P(response A is better), shape (N,), for margins of shape (N,)."""
        z = self.slope * np.asarray(margins, dtype=np.float64) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    @property
    def monotone(self) -> bool:
        """True when a higher margin for A makes A more likely (slope > 0)."""
        return self.slope > 0

    @property
    def tag(self) -> str:
        """Short name for a model version, e.g. ``platt-n40``."""
        return f"{self.method}-n{self.n}"


def _checked(margins: np.ndarray, a_better: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(a_better, dtype=bool)
    if m.ndim != 1 or m.shape != y.shape:
        raise ValueError(f"margins {m.shape} and a_better {y.shape} must be (N,) arrays of the same length")
    if not np.isfinite(m).all():
        raise ValueError("margins must be finite")
    return m, y


def fit_platt(margins: np.ndarray, a_better: np.ndarray, *, min_labels: int = MIN_LABELS) -> Calibration | None:
    """Fit Platt scaling without a position term on both orders of human-labeled pairs.

    Parameters
    ----------
    margins : array of float, shape (N,)
        ``r(A) - r(B)`` of the labeled pairs (out-of-fold margins avoid overconfidence).
    a_better : array of bool, shape (N,)
        The human answer: True where A is better (ties left out by the caller).
    min_labels : int, default MIN_LABELS
        Fewer labels: None.

    Returns
    -------
    Calibration or None
        ``intercept`` is 0; the slope may be <= 0 (see :attr:`Calibration.monotone`).
        None with fewer than ``min_labels`` labels or when every margin is 0.
    """
    m, y = _checked(margins, a_better)
    if m.size < min_labels or not np.any(m != 0):
        return None
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([m, -m]).reshape(-1, 1)  # each pair in both orders
    target = np.concatenate([y, ~y])
    model = LogisticRegression(C=1e4, fit_intercept=False).fit(x, target)
    return Calibration(float(model.coef_[0, 0]), 0.0, int(m.size))


def calibration_problem(calibration: Calibration | None, n_labels: int, *, min_labels: int = MIN_LABELS) -> str | None:
    """Why there is no usable calibration, in words; None when ``calibration`` is usable."""
    if calibration is None:
        if n_labels < min_labels:
            return (f"{n_labels} human-labeled pair(s) with a margin, fewer than the {min_labels} a calibration "
                    "needs, so predictions and suggestions carry no probability")
        return "every labeled pair has a zero margin, so no calibration can be fit"
    if not calibration.monotone:
        return (f"the Platt fit on {calibration.n} human labels has a non-positive slope ({calibration.slope:.3f}): "
                "a higher reward-model margin does not make its choice more likely to be right, so predictions "
                "and suggestions carry no probability; label more pairs or retrain")
    return None


def out_of_fold_probability(margins: np.ndarray, a_better: np.ndarray, *, n_folds: int = 5, seed: int = 0,
                            min_labels: int = MIN_LABELS) -> np.ndarray:
    """P(A better) of each labeled pair from a fit made on the other folds.

    Parameters
    ----------
    margins, a_better : arrays of shape (N,)
        As for :func:`fit_platt`.
    n_folds : int, default 5
        Folds (fewer when N is small: at least 2 pairs per fold).
    seed : int, default 0
        The fold assignment's random seed.

    Returns
    -------
    ndarray of float, shape (N,)
        NaN where the fold's fit was missing or not monotone.
    """
    m, y = _checked(margins, a_better)
    out = np.full(m.size, np.nan)
    k = min(n_folds, m.size // 2)
    if k < 2:
        return out
    fold = np.random.default_rng(seed).permutation(m.size) % k
    for f in range(k):
        train = fold != f
        cal = fit_platt(m[train], y[train], min_labels=max(2, min(min_labels, int(train.sum()))))
        if cal is not None and cal.monotone:
            out[~train] = cal.probability(m[~train])
    return out


def reliability(probability: np.ndarray, outcome: np.ndarray, *, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray,
                                                                                           np.ndarray]:
    """The reliability diagram's points.

    Parameters
    ----------
    probability : array of float in [0, 1], shape (N,)
        Predicted probability that the outcome is true.
    outcome : array of bool, shape (N,)
    n_bins : int, default 10
        Equal-width bins over [0, 1]; empty bins are left out.

    Returns
    -------
    mean_predicted, fraction_true : arrays of float, shape (B,)
    counts : array of int, shape (B,)
        Pairs per non-empty bin.
    """
    from sklearn.calibration import calibration_curve

    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(outcome, dtype=bool)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"probability {p.shape} and outcome {y.shape} must be (N,) arrays of the same length")
    fraction, mean = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)  # the bins calibration_curve uses
    return mean, fraction, counts[counts > 0]


__all__ = ["Calibration", "MIN_LABELS", "calibration_problem", "fit_platt", "out_of_fold_probability", "reliability"]
