"""Signals against the AI label: every (judge, order) vote, the RM margin, length, as arrays.

The audited label of a pair is its *primary* judge's (where the primary did not vote on
the pair: a fallback judge's, below). Every other piece of evidence is a signal: a number
per pair that says how much it speaks against that label. This module turns votes into a
vote tensor, derives the audited label and builds the signal table that the prior
(:mod:`.prior`) and the error model (:mod:`.error_model`) read.

Votes
-----
A vote tensor ``votes`` has shape ``(N, J, 2)``: pair, judge, order (0 = ``ab``, response A
shown first; 1 = ``ba``). Values: ``+1`` the judge prefers A, ``-1`` B, ``0`` a tie,
``NaN`` no vote. A verdict whose order is unknown (a merged row without ``ai_order``, a
judge that already combined both orders) fills both order slots: ``A`` -> ``(+1, +1)``,
``tie_inconsistent`` -> ``(+1, -1)`` (it flipped when the order was swapped).
An optional ``p_a`` tensor of the same shape holds the judge's P(A) where it gave
logprobs (``NaN`` elsewhere).

A judge's label (:func:`primary_labels`)
----------------------------------------
``A`` / ``B`` when every present order of the judge says so; ``tie`` when every present
order says tie; ``tie_inconsistent`` when its orders disagree (such a pair is a candidate
for humans and is never trusted); ``""`` when the judge has no vote.

The audited label (:func:`label_judges`, :func:`audited_labels`)
-----------------------------------------------------------------
The label of the pair's *label judge*: the primary judge where it voted on the pair;
elsewhere (fallback) the best-covered judge that did vote on it, judges ranked by their
number of labeled pairs, ties by judge order (names sorted). A pair imported from a
subset that only another judge labeled is thus audited under that judge's label; no
judge's label is dropped for want of a primary vote. The label judge is never also an
"other judge" signal of its own pair (it would agree with itself); its own order
consistency and confidence are the ``primary_*`` columns of that pair.

The signal table (:func:`signal_table`)
---------------------------------------
One row per pair, one column per signal; every column is oriented so that larger = more
evidence that the primary label is wrong (the RM margin is the exception: larger = the
RM agrees, as in RLTHF):

=========================  ===========  ==================================================
column                     range        meaning
=========================  ===========  ==================================================
``rm_margin``              real         cross-fitted RM margin r(primary-chosen) -
                                        r(primary-rejected); 0 where unknown
``sibling_margin``         real         leave-one-out Bradley-Terry margin of the primary
                                        label from the other labeled pairs of the same
                                        prompt (:mod:`.siblings`); larger = the siblings
                                        agree; 0 where the prompt has no other pair
``length_log_ratio``       real         log((1 + len chosen) / (1 + len rejected)) of the
                                        primary label: > 0 = it chose the longer response
                                        (judges' verbosity bias)
``primary_confidence``     [0, 0.5]     mean over the label judge's orders of P(its label)
                                        - 0.5 where it gave P(A); 0 where unknown
``primary_single_order``   {0, 1}       1 = only one order of the label judge is known
                                        (its consistency is unknown)
``against:<judge>``        [-1, 1]      per judge other than the primary: mean over its
                                        present orders of -1 (agrees with the audited
                                        label), 0 (tie), +1 (against); 0 where it has no
                                        vote or is the pair's label judge
``split:<judge>``          {0, 1}       per judge other than the primary: its two orders
                                        disagree (0 where it is the pair's label judge)
``label_judge:<judge>``    {0, 1}       only for judges that are the label judge of some
                                        auditable pair in place of the primary: 1 = the
                                        audited label is this judge's (lets the error
                                        model learn its own error rate)
=========================  ===========  ==================================================

Columns are 0 for pairs whose audited label is not ``A`` / ``B`` (nothing to audit).

Settling by escalation judges (:func:`settle`)
----------------------------------------------
Escalation judges (*settlers*, strongest first): the strongest with one winner in every
present order gives the audited label; the primary is then an ``against:`` signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .vote_tensor import ORDERS, SKIPPED_LABELS, VoteTensor, encode_votes  # noqa: F401 (this module's API)

#: Rows of the signal table computed at a time (its temporaries are a few per row and judge).
_ROWS = 65_536


@dataclass(frozen=True)
class SignalTable:
    """The signals per pair.

    Attributes
    ----------
    names : tuple of str, length K
        Column names (see the module docstring).
    values : ndarray of float, shape (N, K)
    label : ndarray of str, shape (N,)
        The audited label: ``A``, ``B``, ``tie``, ``tie_inconsistent`` or ``""``.
    judge : ndarray of int, shape (N,)
        Index of the judge whose label ``label`` is (:func:`label_judges`); -1 where no
        judge voted.
    """

    names: tuple[str, ...]
    values: np.ndarray
    label: np.ndarray
    judge: np.ndarray

    def column(self, name: str) -> np.ndarray:
        """One column, shape (N,); an unknown name raises with the known ones."""
        if name not in self.names:
            raise KeyError(f"no signal {name!r}; known: {', '.join(self.names)}")
        return self.values[:, self.names.index(name)]

    @property
    def auditable(self) -> np.ndarray:
        """(N,) bool: the audited label is a winner (``A`` or ``B``)."""
        return np.isin(self.label, ["A", "B"])


def check_votes(votes: Any, primary: Any) -> tuple[np.ndarray, int]:
    """``(votes as float64 (N, J, 2), primary as int)``, checked: the shape, the vote values
    (+1, -1, 0, NaN) and ``primary`` as an index into the J judges; raises otherwise."""
    x = np.asarray(votes, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 2:
        raise ValueError(f"votes must have shape (N, J, 2), got {x.shape}")
    present = x[np.isfinite(x)]
    if present.size and not np.isin(present, [-1.0, 0.0, 1.0]).all():
        raise ValueError("votes must hold +1 (A), -1 (B), 0 (tie) or NaN (no vote)")
    if isinstance(primary, bool) or not isinstance(primary, (int, np.integer)):
        raise TypeError(f"primary must be a judge index (int), got {type(primary).__name__}")
    if not 0 <= primary < x.shape[1]:
        raise ValueError(f"primary must be in [0, {x.shape[1]}) (the judges of votes), got {primary}")
    return x, int(primary)


def primary_labels(votes: Any, primary: int) -> np.ndarray:
    """The label one judge (``primary``) gives each pair, over both orders.

    Parameters
    ----------
    votes : array-like of float, shape (N, J, 2)
        The vote tensor (:func:`encode_votes`).
    primary : int
        Index of the judge.

    Returns
    -------
    ndarray of str, shape (N,)
        ``A``, ``B``, ``tie``, ``tie_inconsistent`` or ``""`` (see the module docstring).
    """
    x, j = check_votes(votes, primary)
    return _primary_labels(x[:, j, :])


def label_judges(votes: Any, primary: int, *, coverage: Any = None) -> np.ndarray:
    """The judge whose label is audited, per pair: the primary where it voted, else the
    best-covered judge that voted on the pair (see the module docstring).

    Parameters
    ----------
    votes : array-like of float, shape (N, J, 2)
        The vote tensor (:func:`encode_votes`).
    primary : int
        Index of the primary judge; it always wins where it voted.
    coverage : array-like of int, shape (J,), optional
        Labeled pairs per judge, which ranks the fallback judges (more first; ties: the
        lower index). Pass the counts over the whole workspace when ``votes`` holds a
        subset of it. None: counted over ``votes``.

    Returns
    -------
    ndarray of int, shape (N,)
        Judge index per pair; -1 where no judge voted.
    """
    x, j = check_votes(votes, primary)
    return _label_judges(x, j, _coverage(x, coverage))


def audited_labels(votes: Any, primary: int, *, coverage: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``(labels (N,) str, judge (N,) int)``: each pair's audited label and its judge.

    Parameters as :func:`label_judges`; ``labels`` as :func:`primary_labels` of the pair's
    judge (``""`` where ``judge`` is -1).
    """
    x, j = check_votes(votes, primary)
    judge = _label_judges(x, j, _coverage(x, coverage))
    return _labels_of(x, judge), judge


def settle(votes: Any, judge: Any, settlers: Sequence[int], only: Any = None) -> np.ndarray:
    """The label judge of each pair after the escalation judges ``settlers`` (see the module docstring).

    Parameters
    ----------
    votes : array-like of float, shape (N, J, 2)
        The vote tensor (:func:`encode_votes`).
    judge : array-like of int, shape (N,)
        The label judge before settling (:func:`label_judges`; -1 = none).
    settlers : sequence of int: judge indices, strongest first.
    only : array-like of bool, shape (N,), optional: settle only these pairs (None: all).

    Returns
    -------
    ndarray of int, shape (N,): the strongest settler with one winner in every present order
    where there is one, else ``judge``.
    """
    x = np.asarray(votes, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 2:
        raise ValueError(f"votes must have shape (N, J, 2), got {x.shape}")
    out = np.asarray(judge, dtype=np.int64).copy()
    if out.shape != (x.shape[0],):
        raise ValueError(f"judge must have shape ({x.shape[0]},), got {out.shape}")
    done = np.zeros(out.shape, dtype=bool) if only is None else ~np.asarray(only, dtype=bool)
    for k in settlers:
        if not 0 <= int(k) < x.shape[1]:
            raise ValueError(f"settler {k} is not a judge index in [0, {x.shape[1]})")
        won = ~done & np.isin(_primary_labels(x[:, int(k), :]), ["A", "B"])
        out[won] = int(k)
        done |= won
    return out


def _coverage(x: np.ndarray, coverage: Any) -> np.ndarray:
    if coverage is None:
        voted: np.ndarray = np.isfinite(x).any(axis=2).sum(axis=0)
        return voted
    c = np.asarray(coverage, dtype=np.float64)
    if c.shape != (x.shape[1],):
        raise ValueError(f"coverage must have shape ({x.shape[1]},) (one count per judge), got {c.shape}")
    return c


def _label_judges(x: np.ndarray, j: int, coverage: np.ndarray) -> np.ndarray:
    rank = sorted(range(x.shape[1]), key=lambda k: (k != j, -coverage[k], k))  # the primary first
    voted = np.isfinite(x).any(axis=2)[:, rank]
    first = np.argmax(voted, axis=1)
    return np.where(voted.any(axis=1), np.asarray(rank, dtype=np.int64)[first], -1)


def _labels_of(x: np.ndarray, judge: np.ndarray) -> np.ndarray:
    """Each pair's label by its own judge (``judge`` (N,), -1 = none)."""
    if x.shape[1] == 0:
        return np.full(x.shape[0], "", dtype=str)
    pv = x[np.arange(x.shape[0]), np.maximum(judge, 0), :]
    return _primary_labels(np.where((judge >= 0)[:, None], pv, np.nan))


def _primary_labels(pv: np.ndarray) -> np.ndarray:
    present = np.isfinite(pv)
    n_present = present.sum(axis=1)
    lo = np.where(present, pv, np.inf).min(axis=1)
    hi = np.where(present, pv, -np.inf).max(axis=1)
    out = np.full(pv.shape[0], "", dtype=object)
    same = (n_present > 0) & (lo == hi)
    out[same & (hi == 1)] = "A"
    out[same & (hi == -1)] = "B"
    out[same & (hi == 0)] = "tie"
    out[(n_present > 0) & (lo != hi)] = "tie_inconsistent"
    return out.astype(str)


def signal_table(votes: Any, primary: int, *, judge_names: Sequence[str], rm_margin: Any = None,
                 length_a: Any = None, length_b: Any = None, p_a: Any = None, coverage: Any = None,
                 sibling_margin: Any = None, settlers: Sequence[int] = (), settle_only: Any = None) -> SignalTable:
    """Build the signal table of the pairs (columns in the module docstring).

    Parameters
    ----------
    votes : array-like of float, shape (N, J, 2)
        The vote tensor (:func:`encode_votes`).
    primary : int
        Index of the primary judge in ``votes``; pairs it did not vote on are audited
        under a fallback judge (:func:`label_judges`).
    judge_names : sequence of str, length J
        Names of the judges (they name the ``against:`` / ``split:`` columns).
    rm_margin : array-like of float, shape (N,), optional
        Cross-fitted RM margin ``r(A) - r(B)`` of each pair (not yet oriented by the
        primary label); ``NaN`` where unknown. None: the column is 0.
    length_a, length_b : array-like of int, shape (N,), optional
        Response lengths in characters. None: the column is 0.
    p_a : array-like of float, shape (N, J, 2), optional
        P(A) per vote (:func:`encode_votes`). None: no confidence known.
    coverage : array-like of int, shape (J,), optional
        Labeled pairs per judge, ranking the fallback judges (:func:`label_judges`).
    sibling_margin : array-like of float, shape (N,), optional
        ``s(A) - s(B)`` from the other pairs of the same prompt
        (:func:`.siblings.sibling_margins`), not yet oriented. None: the column is 0.
    settlers : sequence of int, default ()
        Escalation judges, strongest first (:func:`settle`): where one gave a winner, the
        pair is audited under its label; ``settle_only`` (N,) bool limits it to those pairs.

    Returns
    -------
    SignalTable
    """
    x, j = check_votes(votes, primary)
    n, n_judges = x.shape[:2]
    names = [str(s) for s in judge_names]
    if len(names) != n_judges:
        raise ValueError(f"judge_names has {len(names)} names but votes has {n_judges} judges")
    if len(set(names)) != len(names):
        raise ValueError("judge_names must be distinct")
    margin = _vector(rm_margin, n, "rm_margin", default=np.nan)
    sibling = _vector(sibling_margin, n, "sibling_margin", default=0.0)
    la = _lengths(length_a, n, "length_a")
    lb = _lengths(length_b, n, "length_b")
    if (la < 0).any() or (lb < 0).any():
        raise ValueError("length_a and length_b must be >= 0")
    p = None
    if p_a is not None:
        p = np.asarray(p_a, dtype=np.float64)
        if p.shape != x.shape:
            raise ValueError(f"p_a has shape {p.shape} but votes has {x.shape}")
        if (p[np.isfinite(p)] < 0).any() or (p[np.isfinite(p)] > 1).any():
            raise ValueError("p_a must be probabilities in [0, 1] (or NaN)")
    return _signal_table(x, j, names, margin, la, lb, p, _coverage(x, coverage), np.nan_to_num(sibling),
                         tuple(settlers), settle_only)


def _lengths(value: Any, n: int, name: str) -> np.ndarray:
    """(n,) lengths as they are when integers (a pool's int32: no float copy), else float64; 0 when None."""
    if value is None:
        return np.zeros(n)
    v = np.asarray(value)
    return _vector(v, n, name, default=0.0) if v.dtype.kind not in "iu" or v.shape != (n,) else v


def _vector(value: Any, n: int, name: str, *, default: float) -> np.ndarray:
    if value is None:
        return np.full(n, default)
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) like votes, got {v.shape}")
    return v


def _signal_table(x: np.ndarray, j: int, names: list[str], margin: np.ndarray, la: np.ndarray, lb: np.ndarray,
                  p: np.ndarray | None, coverage: np.ndarray, sibling: np.ndarray,
                  settlers: tuple[int, ...] = (), settle_only: Any = None) -> SignalTable:
    n = x.shape[0]
    judge = _label_judges(x, j, coverage)
    if settlers:
        judge = settle(x, judge, settlers, settle_only)
    label = _labels_of(x, judge)
    ok = np.isin(label, ["A", "B"])
    others = [k for k in range(len(names)) if k != j]
    label_judges = [k for k in others if (ok & (judge == k)).any()]
    columns = ["rm_margin", "sibling_margin", "length_log_ratio", "primary_confidence", "primary_single_order",
               *(f"{kind}:{names[k]}" for k in others for kind in ("against", "split")),
               *(f"label_judge:{names[k]}" for k in label_judges)]
    # Each column is written into the table as it is computed, a block of rows at a time (every
    # column is row-wise): a million pairs hold no second copy of the table and no (N, J, 2) temporaries.
    values = np.empty((n, len(columns)))
    for lo in range(0, n, _ROWS):
        hi = min(n, lo + _ROWS)
        _signal_rows(values[lo:hi], x[lo:hi], label[lo:hi], ok[lo:hi], judge[lo:hi], margin[lo:hi], sibling[lo:hi],
                     la[lo:hi], lb[lo:hi], None if p is None else p[lo:hi], others, label_judges)
    return SignalTable(tuple(columns), values, label, judge)


def _signal_rows(values: np.ndarray, x: np.ndarray, label: np.ndarray, ok: np.ndarray, judge: np.ndarray,
                 margin: np.ndarray, sibling: np.ndarray, la: np.ndarray, lb: np.ndarray, p: np.ndarray | None,
                 others: list[int], label_judges: list[int]) -> None:
    """Fill ``values`` (rows, K), the table's columns for a block of rows (see :func:`_signal_table`)."""
    rows, own = np.arange(x.shape[0]), np.maximum(judge, 0)
    sign = np.where(label == "A", 1.0, np.where(label == "B", -1.0, 0.0))  # +1 = the audited label is A
    values[:, 0] = np.where(ok & np.isfinite(margin), sign * np.nan_to_num(margin), 0.0)
    values[:, 1] = np.where(ok, sign * sibling, 0.0)
    values[:, 2] = np.where(ok, sign * (np.log1p(la) - np.log1p(lb)), 0.0)
    values[:, 3] = 0.0
    if p is not None:
        pp = p[rows, own, :]  # the label judge's P(A) per order
        p_label = np.where(sign[:, None] > 0, pp, 1 - pp)  # P(its label) per order
        known = np.isfinite(p_label)
        cnt = known.sum(axis=1)
        mean = np.where(known, p_label, 0.0).sum(axis=1) / np.maximum(cnt, 1)
        values[:, 3] = np.where(ok & (cnt > 0), np.clip(mean - 0.5, 0.0, 0.5), 0.0)
    values[:, 4] = np.where(ok & (np.isfinite(x[rows, own, :]).sum(axis=1) == 1), 1.0, 0.0)
    c = 5
    for k in others:
        v = x[:, k, :]
        other = ok & (judge != k)  # a label judge is no signal about its own label
        present = np.isfinite(v)
        cnt = present.sum(axis=1)
        against = -sign[:, None] * np.where(present, v, 0.0)  # +1 = this order voted against
        values[:, c] = np.where(other & (cnt > 0), against.sum(axis=1) / np.maximum(cnt, 1), 0.0)
        split = (cnt == 2) & (v[:, 0] != v[:, 1])
        values[:, c + 1] = np.where(other & split, 1.0, 0.0)
        c += 2
    for k in label_judges:
        values[:, c] = np.where(ok & (judge == k), 1.0, 0.0)
        c += 1
