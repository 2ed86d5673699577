"""Dawid-Skene (1979) EM over vote *patterns*: the posterior crowd-kit's ``DawidSkene`` gives,
without a frame of every vote.

Every sum of the EM (the majority-vote start, the class priors, the confusion matrices,
the evidence lower bound that stops it) runs over tasks or votes, and two tasks with the
same answers (the same pattern over the annotators) get the same posterior. So the tasks
are grouped by pattern and each pattern is weighted by its count: with M annotators there
are at most 3^M patterns (class 0, class 1, no answer), a few dozen on real pools, whatever
the number of pairs. The EM follows ``crowdkit.aggregation.DawidSkene`` (crowd-kit 1.x:
``n_iter`` iterations at most, stop when the evidence lower bound per vote gains less than
``tol``; confusion entries clipped at 1e-10, the final posteriors too), step by step, so the
posteriors agree with it to float rounding (tests/unit/test_dawid_skene.py checks 1e-9).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: crowd-kit's floor for probabilities (``_EPS``).
EPS = 1e-10
#: Code of "no answer" in a pattern.
MISSING = 2


def vote_patterns(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tasks grouped by their answers.

    Parameters
    ----------
    columns : list of M ndarray of float, each shape (N,)
        One annotator per column: class 0, class 1 or NaN (no answer).

    Returns
    -------
    patterns : ndarray of int8, shape (P, M)
        The distinct answer rows: 0, 1 or :data:`MISSING`.
    counts : ndarray of int64, shape (P,)
        Tasks per pattern.
    inverse : ndarray of int64, shape (N,)
        The pattern of each task.
    """
    n = len(columns[0]) if columns else 0
    codes = np.empty((n, len(columns)), dtype=np.int8)  # one byte an answer
    for m, col in enumerate(columns):
        c = np.asarray(col, dtype=np.float64)
        if c.shape != (n,):
            raise ValueError(f"column {m} has shape {c.shape}, expected ({n},)")
        codes[:, m] = np.where(np.isnan(c), MISSING, c == 1)
    patterns, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return patterns.astype(np.int8), counts.astype(np.int64), inverse.reshape(-1).astype(np.int64)


def dawid_skene_patterns(patterns: np.ndarray, counts: np.ndarray, *, n_iter: int = 100,
                         tol: float = 1e-5) -> np.ndarray:
    """P(class 1) of each pattern under Dawid-Skene.

    Parameters
    ----------
    patterns : ndarray of int, shape (P, M)
        Answers of M annotators: 0, 1 or :data:`MISSING` (from :func:`vote_patterns`).
    counts : ndarray of int, shape (P,)
        Tasks per pattern (>= 0).
    n_iter : int, default 100
        EM iterations at most.
    tol : float, default 1e-5
        Stop when the evidence lower bound per vote gains less than this.

    Returns
    -------
    ndarray of float, shape (P,)
        The posterior P(class 1); 0 when no answer is class 1, 1 when none is class 0;
        NaN for a pattern without any answer.
    """
    pat = np.asarray(patterns, dtype=np.int64)
    w = np.asarray(counts, dtype=np.float64)
    if pat.ndim != 2 or w.shape != (pat.shape[0],):
        raise ValueError(f"patterns must be (P, M) and counts (P,), got {pat.shape} and {w.shape}")
    out = np.full(pat.shape[0], np.nan)
    answered = (pat != MISSING).any(axis=1) & (w > 0)
    if not answered.any():
        return out
    p_b = _em(pat[answered], w[answered], n_iter, tol)
    out[answered] = p_b
    return out


def _em(pat: np.ndarray, w: np.ndarray, n_iter: int, tol: float) -> np.ndarray:
    classes = np.unique(pat[pat != MISSING])  # the classes answered, sorted (crowd-kit's columns)
    onehot = pat[:, :, None] == classes[None, None, :]          # (P, M, C): answer m of pattern p is class c
    answered = pat != MISSING                                    # (P, M)
    seen = (onehot * w[:, None, None]).sum(axis=0) > 0           # (M, C): annotator m answered class c
    n_votes = float((answered * w[:, None]).sum())
    votes_per = onehot.sum(axis=1).astype(np.float64)            # (P, C) answers of each class
    probas = votes_per / votes_per.sum(axis=1, keepdims=True)    # majority vote start
    priors = _mean(probas, w)
    errors = _m_step(onehot, seen, probas, w)
    loss = -np.inf
    for _ in range(n_iter):
        probas = _e_step(onehot, answered, priors, errors)
        priors = _mean(probas, w)
        errors = _m_step(onehot, seen, probas, w)
        new_loss = _elbo(onehot, answered, probas, priors, errors, w) / n_votes
        probas = np.maximum(probas, EPS)  # crowd-kit clips its posteriors in place here
        if new_loss - loss < tol:
            break
        loss = new_loss
    out: np.ndarray = probas[:, int(np.flatnonzero(classes == 1)[0])] if 1 in classes else np.zeros(len(pat))
    return out


def _mean(probas: np.ndarray, w: np.ndarray) -> np.ndarray:
    out: np.ndarray = (probas * w[:, None]).sum(axis=0) / w.sum()
    return out


def _m_step(onehot: np.ndarray, seen: np.ndarray, probas: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(M, K, C) P(annotator m answers class k | true class c); 0 where m never answered k."""
    errors = np.einsum("pmk,pc->mkc", onehot * w[:, None, None], probas)
    errors = np.where(seen[:, :, None], np.maximum(errors, EPS), 0.0)
    total = errors.sum(axis=1, keepdims=True)
    out: np.ndarray = errors / np.where(total > 0, total, 1.0)
    return out  # an annotator without any answer stays 0 (crowd-kit: absent)


def _log_errors(errors: np.ndarray, log: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    out: np.ndarray = np.where(errors > 0, log(np.where(errors > 0, errors, 1.0)), 0.0)
    return out


def _e_step(onehot: np.ndarray, answered: np.ndarray, priors: np.ndarray, errors: np.ndarray) -> np.ndarray:
    # crowd-kit works in base 2 here
    ll = np.log2(np.maximum(priors, EPS))[None, :] + np.einsum("pmk,mkc->pc", onehot, _log_errors(errors, np.log2))
    scaled = np.exp2(ll - ll.max(axis=1, keepdims=True))
    out: np.ndarray = scaled / scaled.sum(axis=1, keepdims=True)
    return out


def _elbo(onehot: np.ndarray, answered: np.ndarray, probas: np.ndarray, priors: np.ndarray, errors: np.ndarray,
          w: np.ndarray) -> float:
    # crowd-kit adds the log prior to every vote (not once a task); the entropy uses the clipped posteriors
    per_vote = np.einsum("pmk,mkc->pmc", onehot, _log_errors(errors, np.log)) + \
        answered[:, :, None] * np.log(np.maximum(priors, EPS))[None, None, :]
    joint = float((w[:, None, None] * probas[:, None, :] * per_vote).sum())
    clipped = np.maximum(probas, EPS)
    entropy = -float((w[:, None] * np.log(clipped) * clipped).sum())
    return joint + entropy


__all__ = ["EPS", "MISSING", "dawid_skene_patterns", "vote_patterns"]
