"""The width floor of issue 21's benchmark (the full run is `python -m benchmarks.quality_limits`):
a score that knows nothing gives the uniform sample's width, one that knows every error gives
none, and a two-level score gives the closed form."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.quality_limits import continuous_ratio, isotonic, neyman_ratio


def test_an_uninformative_score_cannot_beat_a_uniform_sample() -> None:
    rng = np.random.default_rng(0)
    err = (rng.random(20_000) < 0.2).astype(float)
    ratio = neyman_ratio(rng.random(err.size), err, n=1_200)
    assert ratio == pytest.approx(1.0, abs=0.03)
    assert continuous_ratio(np.full(err.size, err.mean()), err) == pytest.approx(1.0)


def test_a_score_that_knows_every_error_leaves_no_width() -> None:
    err = np.r_[np.ones(200), np.zeros(800)]
    assert neyman_ratio(err + 0.0, err, n=60) == pytest.approx(0.0, abs=1e-9)


def test_two_levels_match_the_closed_form() -> None:
    # half the pairs wrong at 5%, half at 45%: the best design's width is E sqrt(e(1-e)) / sqrt(p(1-p))
    err = np.r_[np.ones(50), np.zeros(950), np.ones(450), np.zeros(550)]
    e = isotonic(np.r_[np.zeros(1000), np.ones(1000)], err)
    assert np.allclose(e[:1000], 0.05) and np.allclose(e[1000:], 0.45)
    expected = 0.5 * (np.sqrt(0.05 * 0.95) + np.sqrt(0.45 * 0.55)) / np.sqrt(0.25 * 0.75)
    assert continuous_ratio(e, err) == pytest.approx(expected)
    # with 10 strata over two levels (and a large pool), Neyman allocation reaches it too
    assert neyman_ratio(e, err, n=20) == pytest.approx(expected, abs=0.02)


def test_labels_to_certify_a_trusted_region() -> None:
    from benchmarks.quality_limits import labels_to_certify

    assert labels_to_certify(0.0) == 45  # 0.95**45 < 0.1 < 0.95**44
    assert labels_to_certify(0.02) > 45
    assert labels_to_certify(0.05) == float("inf")
