"""A trusted region and a flip set, each certified as a set from the human labels.

**Trusted region** (fixed-sequence testing, Learn-then-Test; as in Trust or Escalate,
Jung, Brahman & Choi, ICLR 2025). Candidate thresholds ``tau`` of P(wrong) are walked from
strict to loose. At each, the null "the AI labels with P(wrong) <= tau disagree with humans
more often than ``alpha``" is tested on the calibration labels with P(wrong) <= tau
(``k`` errors of ``n``) by the exact binomial p-value ``P(Binom(n, alpha) <= k)``. The walk
goes on while the p-value is at most ``delta``; the last threshold passed certifies that
the region's disagreement is at most ``alpha`` with probability at least ``1 - delta``
(fixed-sequence testing controls the family-wise error at ``delta`` with no correction).
The sequence starts where the region holds enough labels to ever reject,
``n >= log(delta) / log(1 - alpha)``: that start depends on which pairs are labeled, never
on their answers, so the sequence is still fixed before the test. (Starting at the
strictest threshold, with a handful of labels, stops the walk at once: an empty region.)

**Flip set.** The same walk from the highest P(wrong) down: the null "at most half of the
AI labels with P(wrong) >= tau are wrong" is tested with ``P(Binom(n, 1/2) >= k)`` on the
calibration labels whose P(wrong) lies in the range of the flip candidates at ``tau``
(labels far above the candidates would make the set look better than it is). The set is
certified as a whole: its precision has a lower bound of at least ``min_precision``
(default 1/2) at confidence ``1 - delta``; flipping it fixes errors on net.

The guarantee holds when the calibration labels are a uniform sample of the pairs they
speak for (the exploration labels); with every human label (``calibration`` = all), the
suspects asked for a high P(wrong) are, if anything, more often wrong than the pairs left,
which errs on the safe side for trust and not for flips. The benchmark measures both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_aligned, check_level


@dataclass(frozen=True)
class Certified:
    """A certified set of unanswered pairs.

    Attributes
    ----------
    members : ndarray of bool, shape (N,)
        The pairs of the set (trusted, or flipped).
    threshold : float
        P(wrong) threshold (``<=`` for trust, ``>=`` for flips); NaN when none passed.
    n, errors : int
        Calibration labels behind the last test passed, and the AI errors among them.
    bound : float
        Trust: upper bound of the disagreement; flips: lower bound of the precision
        (Clopper-Pearson, one-sided at ``1 - delta``). NaN when nothing is certified.
    level : float
        ``alpha`` (trust) or ``min_precision`` (flips). ``delta``: the test's error.
    tested : int
        Thresholds tested (the walk stops at the first failure).
    reason : str
    """

    members: np.ndarray
    threshold: float
    n: int
    errors: int
    bound: float
    level: float
    delta: float
    tested: int
    reason: str

    @property
    def size(self) -> int:
        return int(self.members.sum())

    def as_dict(self) -> dict[str, Any]:
        def f(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 4)

        return {"pairs": self.size, "threshold": f(self.threshold), "labels": self.n, "errors": self.errors,
                "bound": f(self.bound), "level": self.level, "delta": self.delta, "reason": self.reason}


def _check(scores: Any, wrong: Any, candidates: Any,
           calibration: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    s, y = check_aligned(scores, wrong, ("scores", "wrong"))
    n = s.size
    cand = np.asarray(candidates, dtype=bool)
    cal = np.isfinite(y) & np.isfinite(s) if calibration is None else np.asarray(calibration, dtype=bool)
    if cand.shape != (n,) or cal.shape != (n,):
        raise ValueError(f"candidates and calibration must have shape ({n},), got {cand.shape} and {cal.shape}")
    if (cal & ~np.isfinite(y)).any():
        raise ValueError("calibration pairs must have a human answer (wrong 0 or 1)")
    yy = y[cal]
    if not np.isin(yy, [0.0, 1.0]).all():
        raise ValueError("wrong must hold 0 or 1 on the calibration pairs")
    cand = cand & np.isfinite(s) & ~np.isfinite(y)
    return s, y, cand, cal & np.isfinite(s)


def _grid(values: np.ndarray, max_thresholds: int) -> np.ndarray:
    u = np.unique(values)
    if u.size > max_thresholds:
        u = np.unique(np.quantile(u, np.linspace(0, 1, max_thresholds)))
    return np.asarray(u)


def trusted_region(scores: Any, wrong: Any, *, candidates: Any, calibration: Any = None, alpha: float = 0.05,
                   delta: float = 0.1, max_thresholds: int = 100) -> Certified:
    """The AI labels whose disagreement with humans is at most ``alpha`` w.p. ``>= 1 - delta``.

    Parameters
    ----------
    scores : array-like of float, shape (N,)
        P(AI label wrong) of every pair (cross-fitted for the labeled ones).
    wrong : array-like of float, shape (N,)
        1 / 0 where a human answered (the AI label was wrong / right), NaN else.
    candidates : array-like of bool, shape (N,)
        Unanswered pairs that may be trusted.
    calibration : array-like of bool, shape (N,), optional
        The labels the tests use (default: every answered pair).
    alpha, delta : float in (0, 1)
    max_thresholds : int
        Thresholds on the grid (quantiles of the candidates' scores).

    Returns
    -------
    Certified
    """
    from scipy.stats import beta as beta_dist, binom

    alpha = check_level(alpha, "alpha")
    delta = check_level(delta, "delta")
    s, y, cand, cal = _check(scores, wrong, candidates, calibration)
    need = int(np.ceil(np.log(delta) / np.log(1 - alpha)))
    cs, cy = s[cal], y[cal]
    order = np.argsort(cs, kind="stable")
    cs, cy = cs[order], cy[order]
    grid = _grid(s[cand], max_thresholds) if cand.any() else np.zeros(0)
    last, n_last, k_last, tested = np.nan, 0, 0, 0
    reason = f"no threshold has {need} calibration labels below it (needed to certify alpha={alpha:g})"
    for tau in grid:
        n = int(np.searchsorted(cs, tau, side="right"))
        if n < need:
            continue  # the sequence starts where a test could pass
        k = int(cy[:n].sum())
        tested += 1
        p = float(binom.cdf(k, n, alpha))
        if p > delta:
            reason = (f"stopped at P(wrong) <= {tau:.3g}: {k} errors in {n} labels, p-value {p:.3f} > delta {delta:g}")
            break
        last, n_last, k_last = float(tau), n, k
        reason = f"certified up to P(wrong) <= {tau:.3g}: {k} errors in {n} labels"
    members = cand & (s <= last) if np.isfinite(last) else np.zeros(s.size, dtype=bool)
    bound = float(beta_dist.ppf(1 - delta, k_last + 1, n_last - k_last)) if np.isfinite(last) else np.nan
    return Certified(members, last, n_last, k_last, bound, alpha, delta, tested, reason)


def flip_set(scores: Any, wrong: Any, *, candidates: Any, calibration: Any = None, delta: float = 0.1,
             min_precision: float = 0.5, max_thresholds: int = 100) -> Certified:
    """The largest set of top P(wrong) pairs whose flip precision is ``>= min_precision`` w.p. ``1 - delta``.

    Parameters
    ----------
    scores, wrong, candidates, calibration : as :func:`trusted_region`
    delta : float in (0, 1)
    min_precision : float in (0, 1), default 0.5

    Returns
    -------
    Certified
        ``bound`` is the precision's lower bound.
    """
    from scipy.stats import beta as beta_dist, binom

    delta = check_level(delta, "delta")
    min_precision = check_level(min_precision, "min_precision")
    s, y, cand, cal = _check(scores, wrong, candidates, calibration)
    cs, cy = s[cal], y[cal]
    order = np.argsort(cs, kind="stable")
    cs, cy = cs[order], cy[order]
    top = float(s[cand].max()) if cand.any() else np.nan
    grid = _grid(s[cand], max_thresholds)[::-1] if cand.any() else np.zeros(0)
    need = int(np.ceil(np.log(delta) / np.log(min_precision)))
    last, n_last, k_last, tested = np.nan, 0, 0, 0
    reason = f"no threshold has {need} calibration labels in the candidates' range"
    for tau in grid:
        lo, hi = np.searchsorted(cs, tau, side="left"), np.searchsorted(cs, top, side="right")
        n = int(hi - lo)
        if n < need:
            continue
        k = int(cy[lo:hi].sum())
        tested += 1
        p = float(binom.sf(k - 1, n, min_precision))
        if p > delta:
            reason = f"stopped at P(wrong) >= {tau:.3g}: {k} errors in {n} labels, p-value {p:.3f} > delta {delta:g}"
            break
        last, n_last, k_last = float(tau), n, k
        reason = f"certified down to P(wrong) >= {tau:.3g}: {k} errors in {n} labels"
    members = cand & (s >= last) if np.isfinite(last) else np.zeros(s.size, dtype=bool)
    bound = float(beta_dist.ppf(delta, k_last, n_last - k_last + 1)) if np.isfinite(last) and k_last else np.nan
    return Certified(members, last, n_last, k_last, bound, min_precision, delta, tested, reason)
