"""Flips certified by an audit: ask a uniform sample of the flip candidates, flip the rest.

RLTHF flips the clearly wrong AI labels and sends the ambiguous ones to humans. A flip set
chosen by the model and checked on the suspects it asked earlier is not checked at all:
those suspects were picked *because* an earlier model ranked them high, so they are not
exchangeable with the pairs left (on dev such sets flipped at a precision of 0.19-0.46,
docs/benchmarks.md, issue 21). Here the check is a design:

1. **region**: before the batch, the open pairs of highest P(wrong) whose mean P(wrong)
   is at least ``min_mean`` (the model believes flipping them fixes errors on net), when
   there are more of them than the batch's suspect budget;
2. **audit**: the suspect budget is drawn uniformly without replacement from the region
   (inclusion probability ``n / M``), so the labels are a uniform sample of it; they still
   fix errors at the region's precision;
3. **certificate**: the region's precision (its share of wrong AI labels) is above
   ``min_precision`` at confidence ``1 - delta`` by the exact hypergeometric test
   (``K <= floor(min_precision M)`` wrong labels in the region is the null); if so, the
   region's pairs no human answered are flipped. The pairs left are exchangeable with the
   sample, so the flips' expected precision is the region's.

When the model sees no such region (no pairs with a high enough mean P(wrong)), the batch
is the usual band of suspects and nothing is flipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_level, check_vector


def audit_region(p_wrong: Any, *, eligible: Any, budget: int, min_mean: float = 0.6) -> np.ndarray:
    """The flip candidates: the top-M eligible pairs by P(wrong) with mean P(wrong) >= ``min_mean``.

    Parameters
    ----------
    p_wrong : array-like of float, shape (N,)
        Calibrated P(AI label wrong), known before the batch.
    eligible : array-like of bool, shape (N,)
        Pairs that may be asked or flipped (open, with an AI winner).
    budget : int >= 0
        Suspects the batch asks. The region exists only when it holds more than ``budget``
        pairs (otherwise asking all of it is the band).
    min_mean : float in (0, 1), default 0.6

    Returns
    -------
    ndarray of bool, shape (N,)
        The region (all False when there is none).
    """
    p = check_vector(p_wrong, "p_wrong")
    el = np.asarray(eligible, dtype=bool) & np.isfinite(p)
    if el.shape != p.shape:
        raise ValueError(f"eligible must have shape {p.shape} like p_wrong, got {el.shape}")
    min_mean = check_level(min_mean, "min_mean")
    # The region is a prefix of the eligible pairs by P(wrong), descending. Its surplus
    # sum(p - min_mean) peaks after the pairs >= min_mean, so a pair short of min_mean by more
    # than that peak (and the summation's rounding) is never in it: only the others are sorted.
    over = p - min_mean
    over[~el] = 0.0
    np.maximum(over, 0.0, out=over)
    reach = min_mean - float(over.sum()) - 1e-9 * max(int(el.sum()), 1)
    del over
    rows = np.flatnonzero(el & (p >= reach))
    order = rows[np.argsort(-p[rows], kind="stable")]
    mean = np.cumsum(p[order]) / np.arange(1, order.size + 1)
    ok = np.flatnonzero(mean >= min_mean)
    region = np.zeros(p.size, dtype=bool)
    if ok.size and ok.max() + 1 > budget:
        region[order[: ok.max() + 1]] = True
    return region


@dataclass(frozen=True)
class AuditCertificate:
    """The audit of one region.

    Attributes
    ----------
    flipped : ndarray of bool, shape (N,)
        Region pairs no human answered, flipped when certified (else all False).
    region, labels, errors : int
        Pairs in the region, audit labels, AI errors among them.
    p_value : float
        Hypergeometric p-value of "at most ``floor(min_precision * region)`` wrong".
    bound : float
        Clopper-Pearson lower bound of the precision at ``1 - delta`` (NaN without labels).
    certified : bool
    """

    flipped: np.ndarray
    region: int
    labels: int
    errors: int
    p_value: float
    bound: float
    certified: bool

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "labels": self.labels, "errors": self.errors,
                "p_value": round(self.p_value, 4),
                "bound": None if not np.isfinite(self.bound) else round(self.bound, 4),
                "certified": self.certified, "flipped": int(self.flipped.sum())}


def certify_region(wrong: Any, region: Any, sampled: Any, *, delta: float = 0.1,
                   min_precision: float = 0.5) -> AuditCertificate:
    """Flip the region if its audit shows a precision above ``min_precision``.

    Parameters
    ----------
    wrong : array-like of float, shape (N,)
        1 / 0 where a human answered (the AI label was wrong / right); NaN unanswered (a
        sampled pair not answered yet counts as not sampled: the audit waits for it).
    region : array-like of bool, shape (N,)
        :func:`audit_region` of the batch.
    sampled : array-like of bool, shape (N,)
        The batch's uniform sample of the region.
    delta, min_precision : float in (0, 1)

    Returns
    -------
    AuditCertificate
    """
    from scipy.stats import beta as beta_dist, hypergeom

    w = check_vector(wrong, "wrong")
    reg = np.asarray(region, dtype=bool)
    s = np.asarray(sampled, dtype=bool)
    if reg.shape != w.shape or s.shape != w.shape:
        raise ValueError(f"region and sampled must have shape {w.shape}, got {reg.shape} and {s.shape}")
    if (s & ~reg).any():
        raise ValueError("sampled holds pairs outside the region")
    delta = check_level(delta, "delta")
    min_precision = check_level(min_precision, "min_precision")
    got = s & np.isfinite(w)
    m, n, k = int(reg.sum()), int(got.sum()), int(w[got].sum())
    none = np.zeros(w.size, dtype=bool)
    if m == 0 or n == 0:
        return AuditCertificate(none, m, n, k, 1.0, float("nan"), False)
    null_wrong = int(np.floor(min_precision * m))
    p_value = float(hypergeom.sf(k - 1, m, null_wrong, n))
    bound = float(beta_dist.ppf(delta, k, n - k + 1)) if k else 0.0
    ok = p_value <= delta
    flipped = reg & ~np.isfinite(w) if ok else none
    return AuditCertificate(flipped, m, n, k, p_value, bound, bool(ok))
