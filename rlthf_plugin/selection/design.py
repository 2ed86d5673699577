"""A human batch drawn with known inclusion probabilities (the sampling design).

The estimates of :mod:`.quality` weight every human label by the probability that it was
asked (active statistical inference, Zrnic & Candès, ICML 2024). That needs a batch whose
inclusion probabilities are known before the labels arrive. The design here is a *band*
plus *exploration strata*:

- **band** (stratum 0): the ``budget - explore`` eligible pairs of highest P(wrong), asked
  for sure (inclusion probability 1). They are the suspects: the precision of the batch is
  the ranking's;
- **exploration strata** (stratum ``h >= 1``): the other eligible pairs, cut into ``strata``
  groups of consecutive P(wrong); ``n_h`` of the ``N_h`` pairs of stratum ``h`` are drawn
  uniformly without replacement, inclusion probability ``n_h / N_h``. The exploration
  labels are spread over the strata by Neyman allocation on the predicted residual
  variance ``P(wrong) (1 - P(wrong))``, at least one per stratum while labels last.

With ``strata = 1`` this is exactly the batch of :func:`.allocation.allocate` (suspects,
then a uniform exploration sample of the rest): :func:`design_of_batch` gives that batch's
design, so the loop's batches need no change to be weighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_vector

BAND, OUTSIDE = 0, -1


@dataclass(frozen=True)
class Design:
    """One batch and its design over a pool of N pairs.

    Attributes
    ----------
    stratum : ndarray of int, shape (N,)
        ``-1`` = not eligible at this batch; ``0`` = band (asked for sure); ``h >= 1`` =
        exploration stratum ``h``.
    asked : ndarray of bool, shape (N,)
        The pairs of the batch.
    pi : ndarray of float, shape (N,)
        Inclusion probability of each eligible pair (1 in the band, ``n_h / N_h`` in stratum
        ``h``), 0 where not eligible.
    """

    stratum: np.ndarray
    asked: np.ndarray
    pi: np.ndarray

    @property
    def index(self) -> np.ndarray:
        """Rows asked, band first, then by stratum (shape (K,))."""
        return np.flatnonzero(self.asked)[np.argsort(self.stratum[self.asked], kind="stable")]

    def counts(self) -> dict[str, int]:
        return {"band": int(np.sum(self.asked & (self.stratum == BAND))),
                "explore": int(np.sum(self.asked & (self.stratum > BAND)))}


def inclusion(stratum: Any, asked: Any) -> np.ndarray:
    """Inclusion probabilities ``n_h / N_h`` of a stratified uniform draw.

    Parameters
    ----------
    stratum : array-like of int, shape (N,)
        As :attr:`Design.stratum`.
    asked : array-like of bool, shape (N,)

    Returns
    -------
    ndarray of float, shape (N,)
        1 in the band, ``n_h / N_h`` in stratum ``h``, 0 outside.
    """
    s = np.asarray(stratum, dtype=np.int64)
    a = np.asarray(asked, dtype=bool)
    if s.ndim != 1 or a.shape != s.shape:
        raise ValueError(f"stratum and asked must be 1-D of one length, got {s.shape} and {a.shape}")
    pi = np.zeros(s.size)
    pi[s == BAND] = 1.0
    for h in np.unique(s[s > BAND]):
        m = s == h
        pi[m] = a[m].sum() / m.sum()
    return pi


def design_of_batch(eligible: Any, band: Any, explore: Any) -> Design:
    """The design of a batch made of a sure band and a uniform sample of the other eligible pairs.

    Parameters
    ----------
    eligible : array-like of bool, shape (N,)
        Pairs that could be asked (the batch's population).
    band : array-like of int, shape (B,)
        Rows asked for sure (the suspects by P(wrong)).
    explore : array-like of int, shape (E,)
        Rows of the uniform sample of ``eligible`` minus ``band``.

    Returns
    -------
    Design
        One exploration stratum.
    """
    el = np.asarray(eligible, dtype=bool)
    if el.ndim != 1:
        raise ValueError(f"eligible must be 1-D (N,), got shape {el.shape}")
    b = np.asarray(band, dtype=np.int64).reshape(-1)
    e = np.asarray(explore, dtype=np.int64).reshape(-1)
    for name, idx in (("band", b), ("explore", e)):
        if idx.size and (idx.min() < 0 or idx.max() >= el.size or not el[idx].all()):
            raise ValueError(f"{name} holds rows that are not eligible pairs of the pool of {el.size}")
    stratum = np.where(el, 1, OUTSIDE)
    stratum[b] = BAND
    asked = np.zeros(el.size, dtype=bool)
    asked[b] = True
    asked[e] = True
    return Design(stratum, asked, inclusion(stratum, asked))


def draw_design(p_wrong: Any, *, budget: int, explore: float = 0.1, strata: int = 1, eligible: Any = None,
                seed: int = 0) -> Design:
    """Draw a batch: the band of highest P(wrong), then stratified uniform exploration.

    Parameters
    ----------
    p_wrong : array-like of float, shape (N,)
        P(AI label wrong), known before the batch; ``NaN`` = not eligible.
    budget : int >= 0
        Pairs in the batch (fewer when fewer are eligible).
    explore : float in [0, 1], default 0.1
        Share of the budget drawn in the exploration strata (rounded, at least 1 when
        ``explore > 0`` and ``budget >= 1``).
    strata : int >= 1, default 1
        Exploration strata, cut at quantiles of P(wrong) among the non-band pairs.
    eligible : array-like of bool, shape (N,), optional
        Default: every pair with a finite ``p_wrong``.
    seed : int, default 0

    Returns
    -------
    Design
    """
    p = check_vector(p_wrong, "p_wrong")
    el = np.isfinite(p) if eligible is None else np.asarray(eligible, dtype=bool) & np.isfinite(p)
    if el.shape != p.shape:
        raise ValueError(f"eligible must have shape {p.shape} like p_wrong, got {el.shape}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be an int >= 0, got {budget!r}")
    if not 0 <= explore <= 1:
        raise ValueError(f"explore must be in [0, 1], got {explore}")
    if isinstance(strata, bool) or not isinstance(strata, (int, np.integer)) or strata < 1:
        raise ValueError(f"strata must be an int >= 1, got {strata!r}")
    rows = np.flatnonzero(el)
    budget = min(int(budget), rows.size)
    n_explore = int(round(explore * budget))
    if explore > 0 and budget >= 1:
        n_explore = max(n_explore, 1)
    order = rows[np.argsort(-p[rows], kind="stable")]
    band, rest = order[: budget - n_explore], order[budget - n_explore:]
    stratum = np.full(p.size, OUTSIDE, dtype=np.int64)
    stratum[band] = BAND
    asked = np.zeros(p.size, dtype=bool)
    asked[band] = True
    if rest.size:
        # rest is in decreasing P(wrong): stratum 1 = highest scores.
        cuts = np.array_split(np.arange(rest.size), min(strata, rest.size))
        sizes = np.array([c.size for c in cuts])
        sd = np.array([np.sqrt(np.mean(p[rest[c]] * (1 - p[rest[c]]))) + 1e-6 for c in cuts])
        take = _neyman(sizes, sd, min(n_explore, rest.size))
        rng = np.random.default_rng(seed)
        for h, (c, k) in enumerate(zip(cuts, take), start=1):
            stratum[rest[c]] = h
            if k:
                asked[rng.choice(rest[c], size=k, replace=False)] = True
    return Design(stratum, asked, inclusion(stratum, asked))


def _neyman(sizes: np.ndarray, sd: np.ndarray, total: int) -> np.ndarray:
    """Labels per stratum: one each first (while they last), the rest by N_h * sd_h."""
    take = np.zeros(sizes.size, dtype=np.int64)
    first = np.argsort(-(sizes * sd), kind="stable")[:total]
    take[first] = 1
    left = total - int(take.sum())
    while left > 0:
        room = sizes - take
        score = np.where(room > 0, sizes * sd / (take + 1), -np.inf)
        take[int(np.argmax(score))] += 1
        left -= 1
    return take
