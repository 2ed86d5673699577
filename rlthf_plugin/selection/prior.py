"""The prior: P(audited AI label wrong) before any human label, from the signals alone.

Three methods, chosen by name (:data:`PRIOR_METHODS`):

- ``fixed`` (default): a fixed, documented combination of the signal table
  (:mod:`.signals`), a logistic score

  ``logit P = logit(BASE_ERROR) - MARGIN_WEIGHT * rm_margin / sd(rm_margin)
  - SIBLING_WEIGHT * sibling_margin / sd(sibling_margin)
  + VOTE_WEIGHT * sum_j against_j + SPLIT_WEIGHT * sum_j split_j``

  Another judge voting against the primary in both orders adds ``VOTE_WEIGHT``;
  one split across its orders adds ``SPLIT_WEIGHT``; the RM margin, scaled by its standard
  deviation over the auditable pairs, orders the pairs within those groups. Each judge
  counts alike: which judge to trust is the error model's job once human labels exist.
- ``dawid_skene``: Dawid-Skene (1979) EM over the annotators (crowd-kit's EM, run on the
  pairs' vote patterns, :mod:`.dawid_skene`): the audited
  label, each other judge per order, the RM's sign and the siblings as two more
  annotators (the siblings agree where the order the other labels of the prompt imply
  backs the label by more than ``SIBLING_MIN``, are against it elsewhere, and cast no vote
  where no other label touches the pair); P(wrong) is the posterior of the class the
  audited label did not choose.
- ``crowdlab``: CROWDLAB (``cleanlab.multiannotator``): the RM's P(A) is the model, the
  judges (per order) are annotators; P(wrong) = 1 - the quality score of the audited
  label.

The audited label is one annotator (the primary judge's label, or the fallback judge's
where the primary did not vote, :func:`.signals.label_judges`); a pair's label judge is
not also an annotator of that pair.

The two aggregators follow the majority where weak judges are wrong together; on the dev
data the fixed combination ranked errors at least as well (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .dawid_skene import dawid_skene_patterns, vote_patterns
from .signals import SignalTable, check_votes

BASE_ERROR = 0.2
MARGIN_WEIGHT = 1.0
SIBLING_WEIGHT = 1.0
VOTE_WEIGHT = 1.0
SPLIT_WEIGHT = 0.5
#: The siblings agree with a label only where they imply its order by more than this; where
#: they imply none (~0: the two are neighbours in their order, a close call) they count as
#: against it. A margin of exactly 0 (no label of the prompt touches the pair) casts no vote.
SIBLING_MIN = 0.01
#: Keeps P(wrong) off 0 and 1 so its logit stays finite.
EPS = 1e-4


def prior_wrong(table: SignalTable, votes: Any, primary: int, *, rm_margin: Any = None,
                method: str = "fixed") -> np.ndarray:
    """P(audited label wrong) per pair, without human labels.

    Parameters
    ----------
    table : SignalTable, N rows
        From :func:`.signals.signal_table` on the same votes.
    votes : array-like of float, shape (N, J, 2)
        The vote tensor (:func:`.signals.encode_votes`).
    primary : int
        Index of the primary judge.
    rm_margin : array-like of float, shape (N,), optional
        Cross-fitted ``r(A) - r(B)`` (not oriented); used by ``dawid_skene`` and
        ``crowdlab`` (``NaN`` or None: the RM does not take part).
    method : {"fixed", "dawid_skene", "crowdlab"}, default "fixed"
        (``select`` uses ``selection.prior``, by default ``dawid_skene``)

    Returns
    -------
    ndarray of float, shape (N,)
        In ``[EPS, 1 - EPS]`` for pairs whose audited label is A or B; ``NaN`` elsewhere.
    """
    if method not in PRIOR_METHODS:
        raise ValueError(f"unknown prior method {method!r}; known: {', '.join(PRIOR_METHODS)}")
    x, j = check_votes(votes, primary)
    n = x.shape[0]
    if table.values.shape[0] != n:
        raise ValueError(f"table has {table.values.shape[0]} rows but votes has {n} pairs")
    margin = np.full(n, np.nan) if rm_margin is None else np.asarray(rm_margin, dtype=np.float64)
    if margin.shape != (n,):
        raise ValueError(f"rm_margin must have shape ({n},), got {margin.shape}")
    out = np.full(n, np.nan)
    ok = table.auditable
    if ok.any():
        out[ok] = np.clip(PRIOR_METHODS[method](table, x, j, margin)[ok], EPS, 1 - EPS)
    return out


def _fixed(table: SignalTable, x: np.ndarray, j: int, margin: np.ndarray) -> np.ndarray:
    ok = table.auditable
    z = np.full(table.label.shape, np.log(BASE_ERROR / (1 - BASE_ERROR)))
    for name, w in (("rm_margin", MARGIN_WEIGHT), ("sibling_margin", SIBLING_WEIGHT)):
        if name in table.names:
            m = table.column(name)
            sd = float(m[ok].std()) if ok.sum() > 1 else 0.0
            if sd > 0:
                z -= w * m / sd
    for name, w in (("against:", VOTE_WEIGHT), ("split:", SPLIT_WEIGHT)):
        cols = [k for k, c in enumerate(table.names) if c.startswith(name)]
        if cols:
            z += w * table.values[:, cols].sum(axis=1)
    return 1 / (1 + np.exp(-z))


def _annotators(table: SignalTable, x: np.ndarray, j: int, margin: np.ndarray) -> tuple[np.ndarray, int]:
    """(N, M) class labels (0 = A, 1 = B, NaN) of the annotators; column 0 is the audited label.

    Ties carry no class and are NaN. A judge whose two order slots never differ (its order
    is unknown) is one annotator, so it is not counted twice. A fallback label judge is no
    annotator of the pairs it labels (it is column 0 there).
    """
    cols, rm_col = _annotator_columns(table, x, j, margin)
    return np.column_stack(cols), rm_col


def _annotator_columns(table: SignalTable, x: np.ndarray, j: int, margin: np.ndarray) -> tuple[list[np.ndarray], int]:
    """:func:`_annotators` as a list of (N,) columns, and the RM's column (-1: none)."""
    cols = [np.where(table.label == "A", 0.0, np.where(table.label == "B", 1.0, np.nan))]
    for k in range(x.shape[1]):
        if k == j:
            continue
        v = np.where((table.judge == k)[:, None], np.nan, x[:, k, :])
        as_class = np.where(v == 1, 0.0, np.where(v == -1, 1.0, np.nan))
        same = np.array_equal(np.isnan(v[:, 0]), np.isnan(v[:, 1])) and np.array_equal(
            np.nan_to_num(v[:, 0], nan=9), np.nan_to_num(v[:, 1], nan=9))
        cols += [as_class[:, 0]] if same else [as_class[:, 0], as_class[:, 1]]
    if "sibling_margin" in table.names:  # the siblings' Bradley-Terry order: one more annotator (SIBLING_MIN)
        sib = table.column("sibling_margin")
        primary = cols[0]
        cols.append(np.where(sib == 0, np.nan, np.where(sib > SIBLING_MIN, primary, 1 - primary)))
    rm_col = -1
    if np.isfinite(margin).any():
        cols.append(np.where(np.isfinite(margin), np.where(margin >= 0, 0.0, 1.0), np.nan))
        rm_col = len(cols) - 1
    return cols, rm_col


def _dawid_skene(table: SignalTable, x: np.ndarray, j: int, margin: np.ndarray) -> np.ndarray:
    # Dawid-Skene over the pairs' vote patterns (crowd-kit's EM, without a frame of every vote)
    columns, _ = _annotator_columns(table, x, j, margin)
    patterns, counts, inverse = vote_patterns(columns)
    chose_b = columns[0] == 1
    del columns
    p_b = dawid_skene_patterns(patterns, counts)[inverse]
    return np.where(chose_b, 1 - p_b, p_b)


def _crowdlab(table: SignalTable, x: np.ndarray, j: int, margin: np.ndarray) -> np.ndarray:
    from cleanlab.multiannotator import get_label_quality_multiannotator

    labels, rm_col = _annotators(table, x, j, margin)
    if rm_col >= 0:
        labels = np.delete(labels, rm_col, axis=1)  # the RM is CROWDLAB's model, not an annotator
    m = np.nan_to_num(margin)
    p_a = 1 / (1 + np.exp(-m))
    pred = np.column_stack([p_a, 1 - p_a])
    out = np.full(labels.shape[0], np.nan)
    ok = np.isfinite(labels[:, 0])
    # CROWDLAB needs every annotator column to hold a label and every row one label.
    keep_cols = np.isfinite(labels[ok]).any(axis=0)
    if keep_cols.sum() < 2:  # one annotator: CROWDLAB reduces to the model's label quality
        from cleanlab.rank import get_label_quality_scores

        out[ok] = 1 - get_label_quality_scores(labels[ok, 0].astype(int), pred[ok], method="self_confidence")
        return out
    res = get_label_quality_multiannotator(labels[ok][:, keep_cols], pred[ok], verbose=False,
                                           return_annotator_stats=False)
    q = res["detailed_label_quality"].iloc[:, 0].to_numpy(dtype=np.float64)
    out[ok] = 1 - q
    return out


PRIOR_METHODS: dict[str, Callable[[SignalTable, np.ndarray, int, np.ndarray], np.ndarray]] = {
    "fixed": _fixed, "dawid_skene": _dawid_skene, "crowdlab": _crowdlab,
}
