"""The linear-time curve analysis agrees with the shipped convolution on small curves.

Tolerance: both moving averages are sums of the same floats in a different order, so their
slopes differ by float rounding (checked below to 1e-9, relative to the slope scale). Elbow,
knee and reflection are equal unless a rank's slope lies within that rounding of the
steepness threshold, where the two may classify it differently; the test then checks the
disagreement is exactly such a tie.
"""

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from rlthf_plugin.selection.curve import _moving_average, analyze_curve

from ._curve_reference import analyze_curve_reference, moving_average_convolve

TOL = 1e-9

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@given(y=arrays(np.float64, st.integers(1, 300), elements=finite), half=st.integers(1, 60))
def test_moving_average_matches_convolution(y, half):
    width = 2 * half + 1
    assert np.allclose(_moving_average(y, width), moving_average_convolve(y, width), rtol=0, atol=TOL * 1e3)


def _steep_ties(new, old) -> np.ndarray:
    """Ranks whose slope sits within rounding of the threshold in either analysis."""
    scale = max(1.0, float(np.max(np.abs(old.slope))))
    return np.flatnonzero(np.abs(old.slope - old.threshold) <= TOL * scale)


curves = st.one_of(
    arrays(np.float64, st.integers(0, 400), elements=finite),
    # Few distinct values: plateaus, exact ties and steps, the hard cases for a threshold.
    arrays(np.float64, st.integers(0, 400), elements=st.integers(-5, 5).map(float)),
)


@settings(max_examples=300, deadline=None)
@given(m=curves, smooth=st.floats(0.01, 0.5), steep=st.floats(1.05, 5.0))
def test_linear_analysis_agrees_with_convolution(m, smooth, steep):
    new = analyze_curve(m, smooth=smooth, steep=steep)
    old = analyze_curve_reference(m, smooth=smooth, steep=steep)
    assert np.array_equal(new.order, old.order)
    scale = max(1.0, float(np.max(np.abs(old.slope))) if old.slope.size else 1.0)
    assert np.allclose(new.slope, old.slope, rtol=0, atol=TOL * scale)
    same = (new.elbow, new.knee, new.reflection) == (old.elbow, old.knee, old.reflection)
    if not same:  # only a rank on the threshold, within rounding, may tip the other way
        tipped = np.flatnonzero((new.slope > new.threshold) != (old.slope > old.threshold))
        assert tipped.size and np.isin(tipped, _steep_ties(new, old)).all()


def test_agrees_on_a_large_noisy_curve():
    rng = np.random.default_rng(0)
    m = np.concatenate([rng.normal(3, 1, 2_000), rng.normal(0, 0.5, 20_000), rng.normal(-3, 1, 2_000)])
    new, old = analyze_curve(m), analyze_curve_reference(m)
    assert (new.elbow, new.knee, new.reflection) == (old.elbow, old.knee, old.reflection)
    assert np.allclose(new.slope, old.slope, rtol=0, atol=1e-9)
