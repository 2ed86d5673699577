"""The curve analysis as shipped before it became linear: the reference for property tests.

Only the moving average changed (a convolution, O(N * width), became a difference of
cumulative sums, O(N)); everything else in ``_analyze_curve`` is shared, so the reference
is the shipped analysis with this moving average put back.
"""

from __future__ import annotations

from unittest import mock

import numpy as np

from rlthf_plugin.selection import curve


def moving_average_convolve(y: np.ndarray, width: int) -> np.ndarray:
    """The shipped O(N * width) centred moving average, ends padded by their edge values."""
    half = width // 2
    padded = np.concatenate([np.full(half, y[0]), y, np.full(half, y[-1])])
    kernel = np.ones(width) / width
    return np.convolve(padded, kernel, mode="valid")


def analyze_curve_reference(margins: np.ndarray, *, smooth: float = 0.05, steep: float = 2.0) -> curve.Curve:
    """``analyze_curve`` with the convolution moving average (for comparison and benchmarks)."""
    with mock.patch.object(curve, "_moving_average", moving_average_convolve):
        return curve.analyze_curve(margins, smooth=smooth, steep=steep)
