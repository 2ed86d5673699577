"""The error model: P(audited AI label wrong), learned from the human labels so far.

A regularised logistic regression (scikit-learn) on the signal table (:mod:`.signals`)
plus the prior's logit (:mod:`.prior`), fit on the human-labeled pairs with target
"the audited label was wrong". It learns which judge to trust, which no unsupervised
aggregate can know.

Pairs audited under a fallback judge (the primary did not vote on them) are scored by the
same model, not a separate one: their other-judge columns are what they are (the label
judge itself is none of them), and the ``label_judge:<judge>`` column lets the model
learn that judge's own error rate, an intercept shift for its pairs. One model keeps the
few human labels together; a separate fit per label judge would starve.

Shrinkage towards the prior. The unlabeled auditable pairs enter the fit as
pseudo-observations with soft targets: each pair twice, as "wrong" with weight
``prior * w`` and as "right" with weight ``(1 - prior) * w``, where
``w = prior_strength / (number of pseudo pairs)``. So the prior counts as
``prior_strength`` labels in all: with few human labels the model stays near the prior,
with many the human labels dominate (a data-augmentation prior).

Cross-fitting. The labeled pairs are split into ``folds`` folds; each labeled pair is
scored by the model fit without its fold, so no pair's score has seen its own label (the
calibration in :mod:`.trust` relies on this). Unlabeled pairs are scored by the
model fit on every label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .prior import EPS
from .signals import SignalTable

#: The prior's logit, as a feature of the model.
PRIOR_FEATURE = "prior_logit"


@dataclass(frozen=True)
class ErrorModel:
    """The error model's scores and weights.

    Attributes
    ----------
    p_wrong : ndarray of float, shape (N,)
        Cross-fitted P(audited label wrong); the prior where no label exists yet; ``NaN``
        for pairs whose audited label is not A or B.
    weights : dict of str to float
        Coefficient of each signal (standardised: per standard deviation over the
        auditable pairs) and of ``prior_logit`` in the model fit on every label; positive
        = evidence of an error. Empty when no human label exists.
    intercept : float
    n_labels, n_errors : int
        Human-labeled auditable pairs the model was fit on, and how many were AI errors.
    prior_strength : float
    """

    p_wrong: np.ndarray
    weights: dict[str, float]
    intercept: float
    n_labels: int
    n_errors: int
    prior_strength: float

    def summary(self) -> dict[str, Any]:
        return {"n_labels": self.n_labels, "n_errors": self.n_errors, "prior_strength": self.prior_strength,
                "intercept": self.intercept, "weights": dict(self.weights)}


def fit_error_model(table: SignalTable, prior: Any, wrong: Any, *, prior_strength: float = 20.0, c: float = 1.0,
                    folds: int = 5, max_pseudo: int = 5000, seed: int = 0) -> ErrorModel:
    """Fit the error model on the labeled pairs and score every pair, cross-fitted.

    Parameters
    ----------
    table : SignalTable, N rows
    prior : array-like of float, shape (N,)
        P(wrong) before labels (:func:`.prior.prior_wrong`), in (0, 1) where auditable.
    wrong : array-like of float, shape (N,)
        1.0 = a human said the audited label is wrong, 0.0 = right, ``NaN`` = no human
        winner (unlabeled, or a human tie).
    prior_strength : float >= 0, default 20.0
        How many labels the prior is worth (0 = no shrinkage beyond ``c``).
    c : float > 0, default 1.0
        Inverse L2 regularisation strength of the logistic regression.
    folds : int >= 2, default 5
        Cross-fitting folds over the labeled pairs (fewer when there are fewer labels).
    max_pseudo : int >= 1, default 5000
        At most this many unlabeled pairs (a seeded sample) carry the prior into the fit.
    seed : int, default 0

    Returns
    -------
    ErrorModel
    """
    n = table.values.shape[0]
    p0 = np.asarray(prior, dtype=np.float64)
    y = np.asarray(wrong, dtype=np.float64)
    if p0.shape != (n,) or y.shape != (n,):
        raise ValueError(f"prior {p0.shape} and wrong {y.shape} must have shape ({n},) like the table")
    ok = table.auditable
    if not np.isfinite(p0[ok]).all() or (p0[ok] <= 0).any() or (p0[ok] >= 1).any():
        raise ValueError("prior must be in (0, 1) for every pair whose audited label is A or B")
    if not np.isin(y[np.isfinite(y)], [0.0, 1.0]).all():
        raise ValueError("wrong must hold 0, 1 or NaN")
    if prior_strength < 0 or c <= 0:
        raise ValueError(f"need prior_strength >= 0 and c > 0, got {prior_strength} and {c}")
    if folds < 2 or max_pseudo < 1:
        raise ValueError(f"need folds >= 2 and max_pseudo >= 1, got {folds} and {max_pseudo}")
    return _fit(table, p0, y, prior_strength, c, folds, max_pseudo, seed)


def _features(table: SignalTable, p0: np.ndarray) -> tuple[np.ndarray, list[str]]:
    ok = table.auditable
    logit = np.log(np.clip(p0, EPS, 1 - EPS) / (1 - np.clip(p0, EPS, 1 - EPS)))
    x = np.column_stack([table.values, np.where(ok, logit, 0.0)])
    names = [*table.names, PRIOR_FEATURE]
    mu = x[ok].mean(axis=0) if ok.any() else np.zeros(x.shape[1])
    sd = x[ok].std(axis=0) if ok.any() else np.ones(x.shape[1])
    keep = sd > 1e-12  # a constant signal carries nothing
    return (x[:, keep] - mu[keep]) / sd[keep], [nm for nm, k in zip(names, keep) if k]


def _fit(table: SignalTable, p0: np.ndarray, y: np.ndarray, strength: float, c: float, folds: int,
         max_pseudo: int, seed: int) -> ErrorModel:
    ok = table.auditable
    labeled = np.flatnonzero(ok & np.isfinite(y))
    out = np.where(ok, p0, np.nan)
    if labeled.size == 0:
        return ErrorModel(out, {}, float("nan"), 0, 0, float(strength))
    from sklearn.linear_model import LogisticRegression  # seconds to import: only once labels exist
    x, names = _features(table, p0)
    rng = np.random.default_rng(seed)
    pseudo = np.flatnonzero(ok & ~np.isfinite(y))
    if pseudo.size > max_pseudo:
        pseudo = np.sort(rng.choice(pseudo, size=max_pseudo, replace=False))
    w_pseudo = strength / pseudo.size if pseudo.size else 0.0

    def fit(train: np.ndarray) -> LogisticRegression:
        xs = [x[train], x[pseudo], x[pseudo]]
        ys = [y[train], np.ones(pseudo.size), np.zeros(pseudo.size)]
        ws = [np.ones(train.size), w_pseudo * p0[pseudo], w_pseudo * (1 - p0[pseudo])]
        target = np.concatenate(ys)
        if np.unique(target[np.concatenate(ws) > 0]).size < 2:  # one class only: nothing to learn
            return None
        model = LogisticRegression(C=c, max_iter=1000)
        return model.fit(np.concatenate(xs), target, sample_weight=np.concatenate(ws))

    full = fit(labeled)
    if full is None:
        return ErrorModel(out, {}, float("nan"), int(labeled.size), int(y[labeled].sum()), float(strength))
    rest = np.flatnonzero(ok & ~np.isfinite(y))
    out[rest] = full.predict_proba(x[rest])[:, 1]
    k = min(folds, labeled.size)
    fold_of = rng.permutation(labeled.size) % k
    for f in range(k):
        held = labeled[fold_of == f]
        model = fit(labeled[fold_of != f]) if k > 1 else None
        # A fold model without two classes falls back to the prior (never the pair's own label).
        out[held] = model.predict_proba(x[held])[:, 1] if model is not None else p0[held]
    weights = {nm: float(w) for nm, w in zip(names, full.coef_[0])}
    return ErrorModel(np.clip(out, EPS, 1 - EPS), weights, float(full.intercept_[0]), int(labeled.size),
                      int(y[labeled].sum()), float(strength))
