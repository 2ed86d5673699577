"""Dawid-Skene on vote patterns (selection.dawid_skene) gives crowd-kit's posteriors."""

import numpy as np
import pandas as pd
import pytest

from rlthf_plugin.selection.dawid_skene import dawid_skene_patterns, vote_patterns


def _crowdkit_p_b(labels: np.ndarray) -> np.ndarray:
    """The frame-of-every-vote reference: crowd-kit's DawidSkene, as the prior ran it before."""
    from crowdkit.aggregation import DawidSkene

    rows, cols = np.nonzero(np.isfinite(labels))
    df = pd.DataFrame({"task": rows, "worker": cols, "label": labels[rows, cols].astype(int)})
    probas = DawidSkene(n_iter=100).fit(df).probas_
    out = np.full(labels.shape[0], np.nan)
    out[probas.index.to_numpy(dtype=np.int64)] = probas.reindex(columns=[0, 1], fill_value=0.0)[1].to_numpy()
    return out


def _ours(labels: np.ndarray) -> np.ndarray:
    patterns, counts, inverse = vote_patterns([labels[:, m] for m in range(labels.shape[1])])
    return dawid_skene_patterns(patterns, counts)[inverse]


def _labels(rng, n, m, missing, noise):
    truth = rng.integers(0, 2, n)
    wrong = rng.random((n, m)) < np.asarray(noise)[None, :]
    labels = np.where(wrong, 1 - truth[:, None], truth[:, None]).astype(float)
    labels[rng.random((n, m)) < missing] = np.nan
    return labels


@pytest.mark.parametrize("seed,n,noise,missing", [
    (0, 2000, [0.1, 0.3, 0.45], 0.2),      # three annotators of unequal skill
    (1, 500, [0.2, 0.2, 0.4, 0.05, 0.3], 0.4),  # five, many gaps
    (2, 3000, [0.25, 0.35], 0.0),          # two, complete
    (3, 300, [0.05, 0.5, 0.5, 0.5], 0.3),  # noise annotators
])
def test_the_posteriors_equal_crowdkits(seed, n, noise, missing):
    labels = _labels(np.random.default_rng(seed), n, len(noise), missing, noise)
    labels[:3] = np.nan  # tasks without any answer: no posterior
    labels[5, :] = [1.0] + [np.nan] * (len(noise) - 1)  # one answer only
    ref, got = _crowdkit_p_b(labels), _ours(labels)
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(got))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9, equal_nan=True)


def test_one_class_only_and_empty():
    labels = np.zeros((50, 2))
    labels[::3, 1] = np.nan
    np.testing.assert_allclose(_ours(labels), _crowdkit_p_b(labels), atol=1e-12)
    labels = np.ones((20, 3))
    np.testing.assert_allclose(_ours(labels), _crowdkit_p_b(labels), atol=1e-12)
    assert np.isnan(_ours(np.full((4, 2), np.nan))).all()


def test_patterns_group_equal_rows():
    cols = [np.array([0.0, 0.0, 1.0, np.nan]), np.array([1.0, 1.0, np.nan, np.nan])]
    patterns, counts, inverse = vote_patterns(cols)
    assert patterns.shape == (3, 2) and counts.sum() == 4
    assert inverse[0] == inverse[1] != inverse[2]
    np.testing.assert_array_equal(patterns[inverse[3]], [2, 2])


def test_an_annotator_without_answers_changes_nothing():
    labels = _labels(np.random.default_rng(4), 400, 3, 0.2, [0.1, 0.3, 0.2])
    with_empty = np.column_stack([labels, np.full(400, np.nan)])
    np.testing.assert_allclose(_ours(with_empty), _crowdkit_p_b(labels), atol=1e-9)
