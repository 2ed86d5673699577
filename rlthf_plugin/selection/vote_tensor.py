"""Votes as rows -> the ``(N, J, 2)`` vote tensor (:mod:`.signals` describes it), a batch of
rows at a time.

:class:`VoteTensor` sums the votes of each (pair, judge, order) slot as batches arrive, so
the store can read a million AI labels a page at a time and keep only these sums
(:func:`rlthf_plugin.store.votes.read_votes`); :func:`encode_votes` is one batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Order slots of the vote tensor.
ORDERS = ("ab", "ba")
#: A vote's label -> its values in the (ab, ba) slots when the order is unknown.
_BOTH_ORDERS = {"A": (1.0, 1.0), "B": (-1.0, -1.0), "tie": (0.0, 0.0), "tie_inconsistent": (1.0, -1.0)}
_ONE_ORDER = {"A": 1.0, "B": -1.0, "tie": 0.0}
#: Labels that carry no verdict (dropped, not an error).
SKIPPED_LABELS = ("parse_error", "")


class VoteTensor:
    """The sums of the votes of ``n_pairs`` x ``n_judges`` x 2 order slots, added a batch at a time.

    :meth:`add` takes rows as :func:`encode_votes` does; :meth:`result` gives what
    :func:`encode_votes` would give for all the rows added, in the order added.
    """

    def __init__(self, n_pairs: int, n_judges: int):
        self.n_pairs, self.n_judges = int(n_pairs), int(n_judges)
        shape = (self.n_pairs, self.n_judges, 2)
        self._total: np.ndarray = np.zeros(shape)
        self._count: np.ndarray = np.zeros(shape, dtype=np.int32)
        self._p_sum: np.ndarray = np.zeros(shape)
        self._p_count: np.ndarray = np.zeros(shape, dtype=np.int32)

    def add(self, pair_index: Any, judge_index: Any, order: Any, label: Any, p_a: Any = None) -> None:
        """Add a batch of V votes (see :func:`encode_votes` for the arguments); raises
        ``ValueError`` naming the bad values, before adding any vote of the batch."""
        pi: np.ndarray = np.asarray(pair_index, dtype=np.int64).reshape(-1)
        ji: np.ndarray = np.asarray(judge_index, dtype=np.int64).reshape(-1)
        od: np.ndarray = np.asarray(order, dtype=str).reshape(-1)
        lab: np.ndarray = np.asarray(label, dtype=str).reshape(-1)
        pa: np.ndarray = np.full(pi.shape, np.nan) if p_a is None else np.asarray(p_a, dtype=np.float64).reshape(-1)
        _check(pi, ji, od, lab, pa, self.n_pairs, self.n_judges)
        keep = ~np.isin(lab, SKIPPED_LABELS)
        pi, ji, od, lab, pa = pi[keep], ji[keep], od[keep], lab[keep], pa[keep]
        both = od == ""
        # An unknown order fills both slots (tie_inconsistent: A in one, B in the other).
        first = np.array([_BOTH_ORDERS[x][0] if b else _ONE_ORDER.get(x, 0.0) for x, b in zip(lab, both)],
                         dtype=np.float64)
        second = np.array([_BOTH_ORDERS[x][1] for x in lab[both]], dtype=np.float64)
        rows = np.concatenate([pi, pi[both]])
        cols = np.concatenate([ji, ji[both]])
        slots = np.concatenate([np.where(od == "ba", 1, 0), np.ones(int(both.sum()), dtype=np.int64)])
        probs = np.concatenate([pa, pa[both]])
        np.add.at(self._total, (rows, cols, slots), np.concatenate([first, second]))
        np.add.at(self._count, (rows, cols, slots), 1)
        known = np.isfinite(probs)
        np.add.at(self._p_sum, (rows[known], cols[known], slots[known]), probs[known])
        np.add.at(self._p_count, (rows[known], cols[known], slots[known]), 1)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(votes, p)`` as :func:`encode_votes` returns them; the sums are used up (computed
        in place: call once)."""
        votes = np.sign(self._total, out=self._total)
        votes[self._count == 0] = np.nan
        p = np.divide(self._p_sum, np.maximum(self._p_count, 1), out=self._p_sum)
        p[self._p_count == 0] = np.nan
        self._count = self._p_count = np.zeros(0, dtype=np.int32)
        return votes, p


def _check(pi: np.ndarray, ji: np.ndarray, od: np.ndarray, lab: np.ndarray, pa: np.ndarray, n_pairs: int,
           n_judges: int) -> None:
    v = pi.shape[0]
    for name, arr in (("judge_index", ji), ("order", od), ("label", lab), ("p_a", pa)):
        if arr.shape[0] != v:
            raise ValueError(f"{name} has {arr.shape[0]} entries but pair_index has {v}")
    if v and (pi.min() < 0 or pi.max() >= n_pairs):
        raise ValueError(f"pair_index must be in [0, {n_pairs}), got values in [{pi.min()}, {pi.max()}]")
    if v and (ji.min() < 0 or ji.max() >= n_judges):
        raise ValueError(f"judge_index must be in [0, {n_judges}), got values in [{ji.min()}, {ji.max()}]")
    bad = ~np.isin(od, ["ab", "ba", ""])
    if bad.any():
        raise ValueError(f"order must be 'ab', 'ba' or '' (unknown); got {sorted(set(od[bad]))[:5]}")
    known = set(_BOTH_ORDERS) | set(SKIPPED_LABELS)
    bad = ~np.isin(lab, sorted(known))
    if bad.any():
        raise ValueError(f"label must be one of {sorted(known)}; got {sorted(set(lab[bad]))[:5]}")
    bad = (od != "") & (lab == "tie_inconsistent")
    if bad.any():
        raise ValueError(f"{int(bad.sum())} vote(s) with a known order are labeled 'tie_inconsistent'; "
                         "a single order gives A, B or tie")


def encode_votes(pair_index: Any, judge_index: Any, order: Any, label: Any, *, n_pairs: int, n_judges: int,
                 p_a: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Votes as rows -> the ``(N, J, 2)`` vote tensor and its P(A) twin.

    Parameters
    ----------
    pair_index, judge_index : array-like of int, shape (V,)
        Row of the pair (``0 <= . < n_pairs``) and of the judge (``< n_judges``) of each vote.
    order : array-like of str, shape (V,)
        ``ab``, ``ba`` or ``""`` (unknown: the verdict fills both slots).
    label : array-like of str, shape (V,)
        ``A``, ``B``, ``tie``, ``tie_inconsistent`` (only with an unknown order),
        ``parse_error`` or ``""`` (both skipped).
    n_pairs, n_judges : int
    p_a : array-like of float, shape (V,), optional
        The judge's P(A) for the vote, ``NaN`` where unknown.

    Returns
    -------
    votes : ndarray of float, shape (N, J, 2)
        ``+1`` A, ``-1`` B, ``0`` tie, ``NaN`` no vote. Several votes for one slot (a
        pair imported twice with the same judge) count by the sign of their sum:
        conflicting votes make a tie.
    p : ndarray of float, shape (N, J, 2)
        P(A) per slot (the mean of its votes'), ``NaN`` where unknown.
    """
    tensor = VoteTensor(n_pairs, n_judges)
    tensor.add(pair_index, judge_index, order, label, p_a)
    return tensor.result()


__all__ = ["ORDERS", "SKIPPED_LABELS", "VoteTensor", "encode_votes"]
