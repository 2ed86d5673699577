"""The sorted margin curve of the AI labels and its boundaries: elbow, knee, reflection.

Sorting the margins of the AI labels descending gives a curve whose steep left end holds
confident, mostly right labels, whose flat middle is ~50% accurate and whose steep right
end holds confident, mostly wrong ones (RLTHF). :func:`analyze_curve` finds the elbow and
the knee where the smoothed first derivative crosses a threshold, and the reflection
point where the curve reaches minus the elbow's margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_vector

#: Curves shorter than this have no detectable shape (elbow 0, knee N).
MIN_CURVE = 8


@dataclass(frozen=True)
class Curve:
    """The sorted margin curve and its boundaries.

    Attributes
    ----------
    order : ndarray of int, shape (N,)
        Indices that sort the margins descending (``margins[order]`` is the curve).
    sorted_margins : ndarray of float, shape (N,)
    slope : ndarray of float, shape (N,)
        The smoothed first derivative ``-dy/dx`` of the rescaled curve (>= 0).
    elbow, knee, reflection : int
        Ranks (positions on the curve) with ``0 <= elbow <= knee <= reflection <= N``.
    elbow_margin, knee_margin, reflection_margin : float
        The margins at those ranks (``nan`` for a rank equal to ``N``); the reflection
        margin is ``-elbow_margin``.
    threshold : float
        The slope above which a rank counted as steep.
    """

    order: np.ndarray
    sorted_margins: np.ndarray
    slope: np.ndarray
    elbow: int
    knee: int
    reflection: int
    elbow_margin: float
    knee_margin: float
    reflection_margin: float
    threshold: float

    @property
    def n(self) -> int:
        return int(self.order.shape[0])

    def ranks(self) -> np.ndarray:
        """Rank of every pair on the curve, shape (N,) int (the inverse of ``order``)."""
        ranks = np.empty(self.n, dtype=np.int64)
        ranks[self.order] = np.arange(self.n)
        return ranks

    def summary(self) -> dict[str, Any]:
        return {"n": self.n, "elbow": self.elbow, "knee": self.knee, "reflection": self.reflection,
                "elbow_margin": finite_or_none(self.elbow_margin), "knee_margin": finite_or_none(self.knee_margin),
                "reflection_margin": finite_or_none(self.reflection_margin)}


def analyze_curve(margins: np.ndarray, *, smooth: float = 0.05, steep: float = 2.0) -> Curve:
    """Sort the margins and find elbow, knee and reflection from the first derivative.

    Parameters
    ----------
    margins : array-like of float, shape (N,)
        Finite margins of the AI labels.
    smooth : float in (0, 0.5], default 0.05
        Width of the moving average, as a fraction of N (at least 3 ranks).
    steep : float > 1, default 2.0
        A rank is steep where the slope exceeds ``steep`` times the median slope of the
        central half of the curve.

    Returns
    -------
    Curve
    """
    m = check_vector(margins, "margins")
    if not np.isfinite(m).all():
        raise ValueError(f"margins hold {int((~np.isfinite(m)).sum())} non-finite value(s)")
    if not 0 < smooth <= 0.5:
        raise ValueError(f"smooth must be in (0, 0.5], got {smooth}")
    if steep <= 1:
        raise ValueError(f"steep must be > 1, got {steep}")
    return _analyze_curve(m, smooth, steep)


def _analyze_curve(m: np.ndarray, smooth: float, steep: float) -> Curve:
    n = m.shape[0]
    order = np.argsort(-m, kind="stable")
    y = m[order]
    slope = np.zeros(n)
    threshold = float("inf")
    elbow, knee = 0, n
    span = y[0] - y[-1] if n else 0.0
    if n >= MIN_CURVE and span > 0:
        x = np.arange(n) / (n - 1)
        yn = (y - y[-1]) / span
        width = max(3, int(round(smooth * n)) | 1)
        slope = _moving_average(-np.gradient(_moving_average(yn, width), x), width)
        flat = float(np.median(slope[n // 4: n - n // 4]))
        threshold = steep * max(flat, 1e-3)
        is_steep = slope > threshold
        calm = np.flatnonzero(~is_steep)
        if calm.size:  # a curve that is steep everywhere has no flat middle: no regions
            elbow = int(calm[0])
            knee = int(calm[-1]) + 1
            # Smoothing moves a crossing up to one width into the flat part: refine each to
            # the corner of the curve within that reach.
            if elbow > 0:
                elbow = _corner(x, yn, max(0, elbow - width), min(n - 1, elbow + 1))
            if knee < n:
                knee = _corner(x, yn, max(elbow, knee - 1), min(n - 1, knee + width))
    elbow_margin = float(y[elbow]) if elbow < n else float("nan")
    knee_margin = float(y[knee]) if knee < n else float("nan")
    if n == 0:
        return Curve(order, y, slope, 0, 0, 0, float("nan"), float("nan"), float("nan"), threshold)
    reflection_margin = -elbow_margin
    # First rank at or below -delta_elbow (the curve is descending); never left of the knee.
    below = np.flatnonzero(y <= reflection_margin)
    reflection = int(below[0]) if below.size else n
    reflection = max(reflection, knee)
    return Curve(order, y, slope, elbow, knee, reflection, elbow_margin, knee_margin, reflection_margin, threshold)


def _corner(x: np.ndarray, y: np.ndarray, lo: int, hi: int) -> int:
    """The rank in ``[lo, hi]`` farthest from the chord between the two ends (Kneedle)."""
    if hi - lo < 2:
        return lo
    dx, dy = x[hi] - x[lo], y[hi] - y[lo]
    seg = slice(lo, hi + 1)
    dist = np.abs(dy * (x[seg] - x[lo]) - dx * (y[seg] - y[lo]))
    return lo + int(np.argmax(dist))


def _moving_average(y: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of odd ``width``, the ends padded by their edge values.

    Window sums are differences of one cumulative sum, so the cost is O(N) whatever the
    width (a convolution costs O(N * width), and the width grows with N). The difference
    of two running sums carries float error of about ``eps * N`` on each window sum, far
    below any slope threshold; edge padding keeps a monotone curve monotone (up to that
    rounding).
    """
    half = width // 2
    padded = np.concatenate([np.full(half, y[0]), y, np.full(half, y[-1])])
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    smooth: np.ndarray = (csum[width:] - csum[:-width]) / width
    return smooth


def finite_or_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


__all__ = ["Curve", "MIN_CURVE", "analyze_curve"]
