"""Calibrated probabilities from reward-model margins (Platt scaling), and their reliability.

A margin ``r(A) - r(B)`` is a Bradley-Terry logit only if the reward model's scale is
right; an embedding head trained on AI labels is not, so ``sigmoid(margin)`` is
overconfident. Platt scaling fits ``P(A better | margin) = sigmoid(slope * margin +
intercept)`` on pairs that humans labeled (scikit-learn's logistic regression); the
reliability diagram (``sklearn.calibration.calibration_curve``) shows how well it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fewer human labels than this (or only one answer among them): no calibration.
MIN_LABELS = 20


@dataclass(frozen=True)
class Calibration:
    """``P(A better | margin) = 1 / (1 + exp(-(slope * margin + intercept)))``, fit on
    ``n`` human-labeled pairs."""

    slope: float
    intercept: float
    n: int
    method: str = "platt"

    def probability(self, margins: np.ndarray) -> np.ndarray:
        """P(response A is better), shape (N,), for margins of shape (N,)."""
        z = self.slope * np.asarray(margins, dtype=np.float64) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    @property
    def tag(self) -> str:
        """Short name for a model version, e.g. ``platt-n40``."""
        return f"{self.method}-n{self.n}"


def fit_platt(margins: np.ndarray, a_better: np.ndarray, *, min_labels: int = MIN_LABELS) -> Calibration | None:
    """Fit Platt scaling on human-labeled pairs.

    Parameters
    ----------
    margins : array of float, shape (N,)
        ``r(A) - r(B)`` of the labeled pairs (out-of-fold margins avoid overconfidence).
    a_better : array of bool, shape (N,)
        The human answer: True where A is better (ties left out by the caller).
    min_labels : int, default MIN_LABELS
        Fewer labels, or labels of one answer only: None.

    Returns
    -------
    Calibration or None
    """
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(a_better, dtype=bool)
    if m.ndim != 1 or m.shape != y.shape:
        raise ValueError(f"margins {m.shape} and a_better {y.shape} must be (N,) arrays of the same length")
    if not np.isfinite(m).all():
        raise ValueError("margins must be finite")
    if m.size < min_labels or y.all() or not y.any():
        return None
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4).fit(m.reshape(-1, 1), y)
    return Calibration(float(model.coef_[0, 0]), float(model.intercept_[0]), int(m.size))


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


__all__ = ["Calibration", "MIN_LABELS", "fit_platt", "reliability"]
