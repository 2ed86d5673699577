"""Flip and trust only on calibrated evidence (the Trust-or-Escalate idea, on human labels).

A score ``p_wrong`` (from :mod:`.error_model`) is calibrated on the human-labeled pairs,
whose scores are cross-fitted (no pair scored by a model that saw its label):

1. isotonic regression of "the AI label was wrong" on the score (scikit-learn,
   increasing) pools the labeled pairs into blocks of consecutive scores with one error
   rate each;
2. each block gets an exact (Clopper-Pearson) one-sided interval of its error rate from
   ``scipy.stats.beta``: ``k`` errors of ``n`` labels give the lower bound
   ``beta.ppf(1 - confidence, k, n - k + 1)`` and the upper bound
   ``beta.ppf(confidence, k + 1, n - k)``;
3. every pair takes the calibrated rate of the block its score falls in (scores below
   the lowest labeled score take the lowest block, above the highest the highest). Its
   bounds are one-sided on the safe side: the lower bound counts only the block's labels
   at or below its score, the upper bound only those at or above, and neither is bolder
   than the whole block's bound. The labeled pairs of a
   block are the ones asked first, the highest scores; without this a pair at the bottom
   of a block would borrow the error rate of the pairs above it (on dev data that gave
   flips of precision below 0.5 at a lower bound of 0.5).

Decisions (:func:`decide`) on the pairs without a human label:

- **flip** when the lower bound is at least ``flip_min_precision``: the measured share of
  AI errors at that score is high enough that flipping is right at least that often;
- **trust** (keep the AI label) when the upper bound is below ``trust_max_error``;
- **none** otherwise: neither is proven, the pair may go to humans.

Without labels every interval is ``[0, 1]``: nothing is flipped, nothing trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ._validation import check_aligned

DECISIONS = ("flip", "trust", "none")
#: Pairs whose bounds are computed at a time by :func:`decide`.
_BLOCK = 65_536


@dataclass(frozen=True)
class ErrorCalibration:
    """Blocks of the isotonic fit, in increasing score order (B blocks).

    Attributes
    ----------
    low, high : ndarray of float, shape (B,)
        Lowest and highest labeled score in each block.
    n, errors : ndarray of int, shape (B,)
        Labels in the block and how many were AI errors.
    rate, lower, upper : ndarray of float, shape (B,)
        Error rate and its one-sided bounds at ``confidence``.
    confidence : float
    scores, wrong : ndarray of float, shape (L,)
        The labeled scores, sorted, and whether each was an AI error.
    """

    low: np.ndarray
    high: np.ndarray
    n: np.ndarray
    errors: np.ndarray
    rate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    confidence: float
    scores: np.ndarray
    wrong: np.ndarray

    def block_of(self, scores: np.ndarray) -> np.ndarray:
        """Block index of each score, shape like ``scores`` (-1 when there are no blocks)."""
        if self.low.size == 0:
            return np.full(np.shape(scores), -1, dtype=np.int64)
        return np.clip(np.searchsorted(self.low, scores, side="right") - 1, 0, self.low.size - 1)

    def summary(self) -> list[dict[str, float]]:
        return [{"low": float(a), "high": float(b), "n": int(c), "errors": int(d), "rate": float(e),
                 "lower": float(f), "upper": float(g)}
                for a, b, c, d, e, f, g in zip(self.low, self.high, self.n, self.errors, self.rate, self.lower,
                                               self.upper)]


@dataclass(frozen=True)
class Decisions:
    """Flip / trust / none per pair, with the calibrated evidence.

    Attributes
    ----------
    code : ndarray of int8, shape (N,)
        The decision's index in :data:`DECISIONS` (``flip`` 0, ``trust`` 1, ``none`` 2; always
        ``none`` for labeled or unscored pairs): one byte a pair, where strings took 20.
    p_wrong : ndarray of float, shape (N,)
        The scores decided on (``NaN``: unscored).
    calibration : ErrorCalibration
    flip_min_precision, trust_max_error : float
    min_evidence : int

    The calibrated P(wrong) and its bounds are not held per pair: :meth:`bounds` computes
    them for the pairs asked (a reason's), :attr:`calibrated`, :attr:`lower` and
    :attr:`upper` for all.
    """

    code: np.ndarray
    p_wrong: np.ndarray
    calibration: ErrorCalibration
    flip_min_precision: float
    trust_max_error: float
    min_evidence: int = 1

    def bounds(self, rows: Any) -> np.ndarray:
        """(K, 3) calibrated P(wrong), lower and upper bound of the pairs ``rows`` (K,) (``NaN``: unscored)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.full((rows.size, 3), np.nan)
        p = self.p_wrong[rows]
        ok = np.isfinite(p)
        if ok.any():
            out[ok] = np.column_stack(_bounds(p[ok], self.calibration, self.min_evidence))
        return out

    @cached_property
    def _every_bound(self) -> np.ndarray:
        """(N, 3) :meth:`bounds` of every pair, computed once when first read."""
        return self.bounds(np.arange(self.code.size))

    @property
    def calibrated(self) -> np.ndarray:
        """(N,) calibrated P(wrong) (``NaN`` for unscored pairs)."""
        return self._every_bound[:, 0]

    @property
    def lower(self) -> np.ndarray:
        """(N,) its lower bound (``NaN`` for unscored pairs)."""
        return self._every_bound[:, 1]

    @property
    def upper(self) -> np.ndarray:
        """(N,) its upper bound (``NaN`` for unscored pairs)."""
        return self._every_bound[:, 2]

    @property
    def decision(self) -> np.ndarray:
        """(N,) object array of ``flip`` / ``trust`` / ``none`` (the names shared, not copied)."""
        names: np.ndarray = np.array(DECISIONS, dtype=object)[self.code]
        return names

    def is_(self, name: str) -> np.ndarray:
        """(N,) bool: the pairs whose decision is ``name``."""
        mask: np.ndarray = self.code == DECISIONS.index(name)
        return mask

    def counts(self) -> dict[str, int]:
        got = np.bincount(self.code, minlength=len(DECISIONS))
        return {d: int(got[k]) for k, d in enumerate(DECISIONS)}


def calibrate(scores: Any, wrong: Any, *, confidence: float = 0.95) -> ErrorCalibration:
    """Isotonic blocks of the labeled scores with exact one-sided bounds.

    Parameters
    ----------
    scores : array-like of float, shape (L,)
        Cross-fitted P(wrong) of the human-labeled pairs.
    wrong : array-like of {0, 1}, shape (L,)
        1 = the AI label was wrong.
    confidence : float in (0.5, 1), default 0.95
        One-sided confidence of the bounds.

    Returns
    -------
    ErrorCalibration
    """
    s, y = check_aligned(scores, wrong, ("scores", "wrong"))
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if not np.isin(y, [0.0, 1.0]).all():
        raise ValueError("wrong must hold 0 or 1")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    return _calibrate(s, y, confidence)


def _calibrate(s: np.ndarray, y: np.ndarray, confidence: float) -> ErrorCalibration:
    from scipy.stats import beta
    from sklearn.isotonic import IsotonicRegression

    empty = np.zeros(0)
    if s.size == 0:
        return ErrorCalibration(empty, empty, empty.astype(int), empty.astype(int), empty, empty, empty, confidence,
                           empty, empty)
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    fitted = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0).fit_transform(s, y)
    # A block = a run of equal fitted values (ties in the score share a value already).
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    ends = np.r_[starts[1:], s.size]
    n = ends - starts
    k = np.add.reduceat(y, starts).astype(np.int64)
    lower = np.where(k > 0, beta.ppf(1 - confidence, np.maximum(k, 1), n - k + 1), 0.0)
    upper = np.where(k < n, beta.ppf(confidence, k + 1, np.maximum(n - k, 1)), 1.0)
    return ErrorCalibration(s[starts], s[ends - 1], n, k, k / n, lower, upper, confidence, s, y)


def decide(p_wrong: Any, wrong: Any, *, flip_min_precision: float = 0.8, trust_max_error: float = 0.1,
           confidence: float = 0.95, min_evidence: int = 10) -> Decisions:
    """Flip, trust or neither, for every pair without a human label.

    Parameters
    ----------
    p_wrong : array-like of float, shape (N,)
        Cross-fitted P(primary label wrong) (:func:`.error_model.fit_error_model`);
        ``NaN`` = no auditable AI label (never flipped or trusted).
    wrong : array-like of float, shape (N,)
        1.0 / 0.0 for human-labeled pairs (the AI label was wrong / right), ``NaN`` else.
    flip_min_precision : float in (0, 1], default 0.8
        Flip where the lower bound of the calibrated P(wrong) reaches this.
    trust_max_error : float in [0, 1), default 0.1
        Trust where the upper bound is below this.
    confidence : float in (0.5, 1), default 0.95
    min_evidence : int >= 1, default 10
        A flip or a trust needs at least this many labels on the safe side of the pair
        within its block (on dev data, smaller blocks flipped at a precision below 0.5).

    Returns
    -------
    Decisions
    """
    p, y = check_aligned(p_wrong, wrong, ("p_wrong", "wrong"))
    if not 0 < flip_min_precision <= 1:
        raise ValueError(f"flip_min_precision must be in (0, 1], got {flip_min_precision}")
    if not 0 <= trust_max_error < 1:
        raise ValueError(f"trust_max_error must be in [0, 1), got {trust_max_error}")
    if isinstance(min_evidence, bool) or not isinstance(min_evidence, (int, np.integer)) or min_evidence < 1:
        raise ValueError(f"min_evidence must be an int >= 1, got {min_evidence!r}")
    labeled = np.isfinite(y) & np.isfinite(p)
    cal = calibrate(p[labeled], y[labeled], confidence=confidence)
    return _decide(p, y, cal, flip_min_precision, trust_max_error, int(min_evidence))


def _decide(p: np.ndarray, y: np.ndarray, cal: ErrorCalibration, flip_min: float, trust_max: float,
            min_evidence: int) -> Decisions:
    n = p.shape[0]
    code = np.full(n, DECISIONS.index("none"), dtype=np.int8)
    open_ = np.flatnonzero(np.isfinite(p) & ~np.isfinite(y))
    # The bounds a block of pairs at a time: only the decision stays per pair (a million pairs
    # hold no (N,) bounds; Decisions.bounds gives them again for the pairs a reason shows).
    for lo in range(0, open_.size, _BLOCK):
        rows = open_[lo:lo + _BLOCK]
        _, lower, upper = _bounds(p[rows], cal, min_evidence)
        code[rows[lower >= flip_min]] = DECISIONS.index("flip")
        code[rows[upper < trust_max]] = DECISIONS.index("trust")
    return Decisions(code, p, cal, float(flip_min), float(trust_max), min_evidence)


def _bounds(ps: np.ndarray, cal: ErrorCalibration, min_evidence: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibrated, lower, upper), each (K,), of finite scores ``ps`` (K,)."""
    if not cal.n.size:
        return np.full(ps.size, np.nan), np.zeros(ps.size), np.ones(ps.size)
    from scipy.stats import beta

    b = cal.block_of(ps)
    calibrated = cal.rate[b]
    # Labels of the pair's block at or below its score (lower bound), at or above (upper).
    starts = np.r_[0, np.cumsum(cal.n)[:-1]]
    ends = starts + cal.n
    cum = np.r_[0.0, np.cumsum(cal.wrong)]
    at_or_below = np.clip(np.searchsorted(cal.scores, ps, side="right"), starts[b], ends[b])
    at_or_above = np.clip(np.searchsorted(cal.scores, ps, side="left"), starts[b], ends[b])
    n_lo, k_lo = at_or_below - starts[b], cum[at_or_below] - cum[starts[b]]
    n_hi, k_hi = ends[b] - at_or_above, cum[ends[b]] - cum[at_or_above]
    conf = cal.confidence
    with np.errstate(invalid="ignore"):
        lo = np.where((n_lo >= min_evidence) & (k_lo > 0),
                      beta.ppf(1 - conf, np.maximum(k_lo, 1), n_lo - k_lo + 1), 0.0)
        hi = np.where((n_hi >= min_evidence) & (k_hi < n_hi),
                      beta.ppf(conf, k_hi + 1, np.maximum(n_hi - k_hi, 1)), 1.0)
    # Never bolder than the whole block: labels that happen to be errors at the bottom of
    # a block (the isotonic fit pooled them with better ones above) must not lift the
    # lower bound over the block's own (on dev: flips of precision 0 at a bound of 0.5).
    return calibrated, np.minimum(lo, cal.lower[b]), np.maximum(hi, cal.upper[b])
