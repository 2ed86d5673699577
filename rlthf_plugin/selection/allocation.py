"""One prioritized human batch: suspects, REAL candidates and an exploration sample.

The budget of an iteration is split by ``shares`` (:data:`KINDS`):

- ``suspect``: pool pairs without a human label, highest P(AI label wrong) first;
- ``real``: candidate pairs without any label yet (REAL, arXiv 2409.17169), most
  dissimilar first;
- ``explore``: a uniform seeded sample of the remaining eligible pool pairs. Asked
  regardless of their score, they keep the error model's calibration measured, not
  assumed; they are reported apart.
- ``tie``: a seeded sample of the pairs whose label judge contradicted itself across
  orders and that no escalation judge settled (``tie``, given apart from ``p_wrong``).
  They have no label to audit, so they never compete with the suspects: a fixed share
  (``selection.tie_share``) is theirs, reported apart like exploration.

A kind with fewer items than its share passes the rest of its share on to the others
(suspects first, then REAL, then exploration; an unused ``tie`` share goes the same way).
The items of the kinds are interleaved evenly, so an annotator who stops early has seen
every kind in proportion.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

import numpy as np

from ._validation import check_vector

class Kind(str, Enum):
    """The kind of a task in the human batch (a decision's ``region`` and ``kind``)."""

    SUSPECT = "suspect"  # ranked by P(AI label wrong)
    REAL = "real"        # a REAL candidate without a label, by dissimilarity
    EXPLORE = "explore"  # the uniform exploration sample
    TIE = "tie"          # an unsettled tie_inconsistent pair, its own share

    def __str__(self) -> str:
        return self.value


KINDS = tuple(k.value for k in Kind)
#: The kinds that share what the ``tie`` share leaves.
_OTHERS = (Kind.SUSPECT.value, Kind.REAL.value, Kind.EXPLORE.value)
DEFAULT_SHARES = {Kind.SUSPECT.value: 0.9, Kind.REAL.value: 0.0, Kind.EXPLORE.value: 0.1, Kind.TIE.value: 0.0}


@dataclass(frozen=True)
class Batch:
    """The batch, in queue order (K items).

    Attributes
    ----------
    kind : ndarray of str, shape (K,)
        ``suspect``, ``real``, ``explore`` or ``tie``.
    index : ndarray of int, shape (K,)
        Row in the pool (``suspect``, ``explore``, ``tie``) or in the REAL candidates (``real``).
    score : ndarray of float, shape (K,)
        P(wrong) for pool items, dissimilarity for REAL items.
    priority : ndarray of float, shape (K,)
        In (0, 1], decreasing along the queue.
    """

    kind: np.ndarray
    index: np.ndarray
    score: np.ndarray
    priority: np.ndarray

    def counts(self) -> dict[str, int]:
        """Items per kind; ``tie`` only when the batch has some."""
        out = {k: int(np.sum(self.kind == k)) for k in KINDS}
        if not out[Kind.TIE.value]:
            del out[Kind.TIE.value]
        return out

    def of(self, kind: str) -> np.ndarray:
        """Indices of one kind, in queue order."""
        chosen: np.ndarray = self.index[self.kind == kind]
        return chosen


def allocate(p_wrong: Any, *, budget: int, eligible: Any = None, real_dissimilarity: Any = None,
             shares: Mapping[str, float] | None = None, seed: int = 0, tie: Any = None, audit: Any = None) -> Batch:
    """Choose the human batch.

    Parameters
    ----------
    p_wrong : array-like of float, shape (N,)
        P(AI label wrong) of each pool pair; ``NaN`` = not a suspect candidate.
    budget : int >= 0
        Items in the batch (fewer when there are not enough candidates).
    eligible : array-like of bool, shape (N,), optional
        Pool pairs that may be asked at all (no human label yet). Default: every pair
        with a finite ``p_wrong``.
    real_dissimilarity : array-like of float, shape (M,), optional
        Dissimilarity (e.g. 1 - cosine) of each REAL candidate pair; None = no candidates.
    shares : mapping of {"suspect", "real", "explore", "tie"} to float, optional
        Budget shares (non-negative, summing to 1). Default :data:`DEFAULT_SHARES`.
    seed : int, default 0
        Seeds the exploration and tie samples.
    tie : array-like of bool, shape (N,), optional
        Unsettled ``tie_inconsistent`` pool pairs (no label to audit): drawn only by the
        ``tie`` share, never as suspects or exploration. None: none.
    audit : array-like of bool, shape (N,), optional
        The flip-candidate region (:func:`.flip_audit.audit_region`): the suspects are drawn
        uniformly from it (seeded) before any other pair, so they are an audit sample of it.
        None: suspects by P(wrong) alone.

    Returns
    -------
    Batch
    """
    p = check_vector(p_wrong, "p_wrong")
    n = p.shape[0]
    el = np.isfinite(p) if eligible is None else np.asarray(eligible, dtype=bool)
    if el.shape != (n,):
        raise ValueError(f"eligible must have shape ({n},) like p_wrong, got {el.shape}")
    real = np.zeros(0) if real_dissimilarity is None else np.asarray(real_dissimilarity, dtype=np.float64)
    if real.ndim != 1 or not np.isfinite(real).all():
        raise ValueError(f"real_dissimilarity must be a finite 1-D array, got shape {real.shape}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be an int >= 0, got {budget!r}")
    sh = dict(DEFAULT_SHARES if shares is None else shares)
    unknown = set(sh) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kind(s) {sorted(unknown)} in shares; known: {', '.join(KINDS)}")
    if any(v < 0 for v in sh.values()) or abs(sum(sh.values()) - 1) > 1e-6:
        raise ValueError(f"shares must be >= 0 and sum to 1, got {sh}")
    ties = np.zeros(n, dtype=bool) if tie is None else np.asarray(tie, dtype=bool)
    if ties.shape != (n,):
        raise ValueError(f"tie must have shape ({n},) like p_wrong, got {ties.shape}")
    region = np.zeros(n, dtype=bool) if audit is None else np.asarray(audit, dtype=bool)
    if region.shape != (n,):
        raise ValueError(f"audit must have shape ({n},) like p_wrong, got {region.shape}")
    return _allocate(p, el & ~ties, real, int(budget), {k: float(sh.get(k, 0.0)) for k in KINDS}, seed, ties,
                     region)


def _allocate(p: np.ndarray, el: np.ndarray, real: np.ndarray, budget: int, sh: dict[str, float],
              seed: int, ties: np.ndarray, region: np.ndarray) -> Batch:
    suspects = np.flatnonzero(el & np.isfinite(p))
    suspects = suspects[np.argsort(-p[suspects], kind="stable")]
    if region.any():  # the audit: a uniform sample of the region first, then by P(wrong)
        inside = region[suspects]
        first = np.random.default_rng([seed, 2]).permutation(suspects[inside])
        suspects = np.concatenate([first, suspects[~inside]])
    real_order = np.argsort(-real, kind="stable")
    # The tie share first, on its own candidates; what it cannot use flows on below.
    tie_rows = np.flatnonzero(ties)
    n_tie = min(int(np.floor(sh[Kind.TIE.value] * budget + 0.5)), tie_rows.size)
    chosen_t = (np.random.default_rng([seed, 1]).choice(tie_rows, size=n_tie, replace=False)
                if n_tie else np.zeros(0, dtype=np.int64))
    budget -= n_tie
    rest_share = 1.0 - sh[Kind.TIE.value]
    sh = {k: (sh[k] / rest_share if rest_share > 0 else (1.0 if k == Kind.SUSPECT.value else 0.0))
          for k in _OTHERS}
    avail = {Kind.SUSPECT.value: suspects.size, Kind.REAL.value: real.size, Kind.EXPLORE.value: int(el.sum())}
    # Largest-remainder split of the budget, then unused shares flow on.
    raw = {k: sh[k] * budget for k in _OTHERS}
    take = {k: int(np.floor(raw[k])) for k in _OTHERS}
    for k in sorted(_OTHERS, key=lambda k: raw[k] - take[k], reverse=True)[: budget - sum(take.values())]:
        take[k] += 1
    # Suspects and exploration draw from the same pool pairs.
    pool_total = int(el.sum())
    take[Kind.REAL.value] = min(take[Kind.REAL.value], avail[Kind.REAL.value])
    take[Kind.SUSPECT.value] = min(take[Kind.SUSPECT.value], pool_total)
    take[Kind.EXPLORE.value] = min(take[Kind.EXPLORE.value], pool_total - take[Kind.SUSPECT.value])
    spare = budget - sum(take.values())
    for k in _OTHERS:
        room = ((avail[Kind.REAL.value] - take[Kind.REAL.value]) if k == Kind.REAL.value
                else (pool_total - take[Kind.SUSPECT.value] - take[Kind.EXPLORE.value]))
        extra = min(spare, max(room, 0))
        take[k] += extra
        spare -= extra
    chosen_s = suspects[: take[Kind.SUSPECT.value]]
    left = el.copy()  # the eligible pairs not chosen, in order (setdiff1d's result, without its sorts)
    left[chosen_s] = False
    rest = np.flatnonzero(left)
    del left
    rng = np.random.default_rng(seed)
    chosen_e = rng.choice(rest, size=min(take[Kind.EXPLORE.value], rest.size), replace=False) if rest.size else rest
    chosen_r = real_order[: take[Kind.REAL.value]]
    parts = [(Kind.SUSPECT.value, chosen_s, p[chosen_s]), (Kind.REAL.value, chosen_r, real[chosen_r]),
             (Kind.EXPLORE.value, np.asarray(chosen_e, dtype=np.int64), p[np.asarray(chosen_e, dtype=np.int64)]),
             (Kind.TIE.value, np.asarray(chosen_t, dtype=np.int64), np.full(len(chosen_t), np.nan))]
    kind: list[str] = []
    index: list[np.ndarray] = []
    score: list[np.ndarray] = []
    key: list[np.ndarray] = []
    for name, idx, sc in parts:
        kind += [name] * idx.size
        index.append(idx.astype(np.int64))
        score.append(sc)
        key.append((np.arange(idx.size) + 0.5) / max(idx.size, 1))  # even interleaving
    kind_a = np.asarray(kind, dtype=str)
    index_a = np.concatenate(index) if index else np.zeros(0, dtype=np.int64)
    score_a = np.concatenate(score) if score else np.zeros(0)
    order = np.argsort(np.concatenate(key), kind="stable")
    n = order.size
    priority = 1.0 - np.arange(n) / max(n, 1)
    return Batch(kind_a[order], index_a[order], score_a[order], priority)
