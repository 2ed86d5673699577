"""RLTHF selection (arXiv 2502.13417): the margin curve, its boundaries and the actions.

Pure numpy: every function takes arrays and returns arrays or a frozen dataclass.

A reward model trained on AI labels gives each pair a *margin*
``delta = r(AI-chosen) - r(AI-rejected)``. Sorted in descending order the margins form a
monotone curve: high on the left (the RM agrees with the AI label), negative on the right
(it disagrees). :func:`analyze_curve` finds three boundaries on it:

- **elbow**: where the steep start on the left ends;
- **knee**: where the steep drop on the right begins;
- **reflection**: the elbow mirrored through zero, the first rank whose margin is
  ``<= -delta_elbow`` (never left of the knee).

How the elbow and knee are found (first derivative of the curve):

1. the sorted margins are rescaled to ``[0, 1]`` over ranks ``x = i / (N - 1)``, so the
   average slope of the whole curve is 1 whatever the margin scale;
2. the curve is smoothed by a centred moving average of ``smooth * N`` ranks (at least 3;
   from cumulative sums, so the analysis is O(N log N) for the sort and O(N) after it)
   and its slope ``s = -dy/dx`` is taken with :func:`numpy.gradient`, then smoothed again;
3. the *flat* slope is the median of ``s`` over the central half of the ranks, and a rank
   is *steep* where ``s > steep * max(flat, 1e-3)``;
4. elbow = the end of the leading run of steep ranks (0 when the curve starts flat);
   knee = the start of the trailing run of steep ranks (``N`` when it ends flat);
5. smoothing moves each crossing up to one window into the flat part, so each is refined
   to the corner of the (unsmoothed, rescaled) curve within one window: the rank farthest
   from the chord over ``[elbow - window, elbow]`` and ``[knee, knee + window]`` (the
   Kneedle construction of Satopaa et al., 2011, applied locally). On a smooth curve
   without a corner this moves the crossing little.

Smoothing relative to ``N`` and a threshold relative to the curve's own flat slope make
the detection scale-free and robust to noise; curves shorter than ``MIN_CURVE`` points
have no reliable shape, so their elbow is 0 and their knee is ``N`` (no steep regions).

:func:`select_actions` turns the curve into one action per pair:

- **flip** right of the reflection point, but only when the flip gate is open: by
  default (``flip="gated"``) the error rate of the AI labels there must have been
  *measured* on human-labeled pairs of that region, with a Wilson lower bound of at least
  ``flip_min_precision``. Otherwise the region is not flipped (flipping it was harmful
  on real data: there only 20-30% of those labels were wrong);
- **ask** humans: from the reflection point leftwards up to the budget when flips are
  open (a ``probe`` share of the budget samples the flip region to keep measuring it), or
  from the right end of the curve leftwards while the gate is closed, so the pairs the
  machine may not flip go to humans first;
- **keep** the left region as trusted AI labels, cut back from the knee by the back-off
  ratio beta: ranks ``< (1 - beta) * knee``;
- **drop** the rest (the ~50%-accurate middle, and an unflipped flip region) from the
  next training set.

:func:`schedule` gives the paper's amplification alpha and back-off beta per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Sequence

import numpy as np

from ._validation import check_vector
from .curve import MIN_CURVE, Curve, analyze_curve, finite_or_none



class Action(str, Enum):
    """What a selection does with a pair's AI label (stored as the plain string)."""

    ASK = "ask"      # send to humans
    FLIP = "flip"    # train on the other response
    KEEP = "keep"    # trust it
    DROP = "drop"    # leave it out of the next training set

    def __str__(self) -> str:
        return self.value


class Region(str, Enum):
    """Where a pair's margin lies on the curve (or ``audit``: a uniform audit sample)."""

    TRUSTED = "trusted"  # left of the knee, backed off by beta
    MIDDLE = "middle"    # the ~50%-accurate middle
    BAND = "band"        # between the knee and the reflection point
    FLIP = "flip"        # right of the reflection point
    AUDIT = "audit"

    def __str__(self) -> str:
        return self.value


ACTIONS = tuple(a.value for a in Action)
FLIP_MODES = ("gated", "always", "never")

#: The paper's schedule: amplification alpha and back-off beta per iteration (last repeats).
PAPER_AMPLIFICATION = (4, 4, 4, 2, 1, 1)
PAPER_BACK_OFF = (0.6, 0.6, 0.6, 0.4, 0.2, 0.1)


@dataclass(frozen=True)
class FlipGate:
    """Whether the flip region may be flipped, and on what evidence.

    ``errors`` of ``n`` human-labeled pairs from the flip region had a wrong AI label;
    ``lower_bound`` is the Wilson lower confidence bound of that error rate.
    """

    mode: str
    open: bool
    errors: int
    n: int
    lower_bound: float
    min_precision: float
    reason: str


@dataclass(frozen=True)
class Selection:
    """One action per pair, with the reason for it.

    Attributes
    ----------
    action : ndarray of str, shape (N,)
        ``ask``, ``flip``, ``keep`` or ``drop``.
    region : ndarray of str, shape (N,)
        Where on the curve the pair lies: ``trusted`` (left of the backed-off knee),
        ``middle``, ``band`` (between knee and reflection), ``flip`` (right of the
        reflection point) or ``audit`` (asked as part of the uniform audit sample).
    rank : ndarray of int, shape (N,)
        Position on the curve (0 = highest margin).
    priority : ndarray of float, shape (N,)
        In [0, 1] for asked pairs (1 = ask first), 0 otherwise.
    curve : Curve
    gate : FlipGate
    back_off : float
    budget : int
        How many pairs were asked.
    """

    action: np.ndarray
    region: np.ndarray
    rank: np.ndarray
    priority: np.ndarray
    margins: np.ndarray
    curve: Curve
    gate: FlipGate
    back_off: float
    budget: int

    def counts(self) -> dict[str, int]:
        return {a: int(np.sum(self.action == a)) for a in ACTIONS}

    def reason(self, i: int) -> dict[str, Any]:
        """Why pair ``i`` got its action: region, margin, rank and the boundaries."""
        c = self.curve
        out: dict[str, Any] = {
            "action": str(self.action[i]), "region": str(self.region[i]),
            "margin": finite_or_none(self.margins[i]), "rank": int(self.rank[i]), "n": c.n,
            "elbow": c.elbow, "knee": c.knee, "reflection": c.reflection,
        }
        action = self.action[i]
        if action == Action.FLIP:
            out["why"] = (f"margin {self.margins[i]:.3g} right of the reflection point "
                          f"({c.reflection_margin:.3g}); gate: {self.gate.reason}")
        elif action == Action.KEEP:
            out["why"] = f"left of the knee backed off by beta={self.back_off:g} (rank < {int((1 - self.back_off) * c.knee)})"
        elif action == Action.ASK:
            out["why"] = ("uniform audit sample" if self.region[i] == Region.AUDIT
                          else "probe of the flip region" if self.region[i] == Region.FLIP and self.gate.open
                          else "from the reflection point leftwards" if self.gate.open
                          else "from the right end leftwards (flip gate closed)")
        else:
            out["why"] = ("flip region, not flipped: " + self.gate.reason if self.region[i] == Region.FLIP
                          else "ambiguous middle: left out of the next training set")
        return out


def ai_margins(rewards_a: np.ndarray, rewards_b: np.ndarray, ai_labels: np.ndarray) -> np.ndarray:
    """Margins of the AI labels: ``r(AI-chosen) - r(AI-rejected)``.

    Parameters
    ----------
    rewards_a, rewards_b : array-like of float, shape (N,)
        Rewards of response A and response B.
    ai_labels : array-like of {"A", "B"} or {0, 1}, shape (N,)
        The AI label of each pair (0 / "A" = response A preferred).

    Returns
    -------
    ndarray of float, shape (N,)
    """
    ra = np.asarray(rewards_a, dtype=np.float64)
    rb = np.asarray(rewards_b, dtype=np.float64)
    lab = np.asarray(ai_labels)
    if not (ra.shape == rb.shape == lab.shape) or ra.ndim != 1:
        raise ValueError(f"rewards_a {ra.shape}, rewards_b {rb.shape} and ai_labels {lab.shape} must be (N,)")
    if lab.dtype.kind in "US":
        bad = ~np.isin(lab, ["A", "B"])
        if bad.any():
            raise ValueError(f"ai_labels must be 'A' or 'B'; got {lab[bad][:5].tolist()}")
        is_b = lab == "B"
    else:
        if not np.isin(lab, [0, 1]).all():
            raise ValueError("ai_labels must be 0 (A) or 1 (B)")
        is_b = lab == 1
    return np.where(is_b, rb - ra, ra - rb)


def wilson_lower_bound(successes: int, n: int, *, z: float = 1.645) -> float:
    """Wilson score lower confidence bound of a proportion (0.0 when ``n == 0``).

    ``z = 1.645`` is a one-sided 95% bound: the lower end of scipy's two-sided Wilson
    interval (``binomtest(...).proportion_ci(method="wilson")``) at level ``2 Phi(z) - 1``.
    """
    if n <= 0:
        return 0.0
    from scipy import stats

    level = 2 * stats.norm.cdf(z) - 1
    return float(max(0.0, stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson").low))


def mcnemar_exact(b: int, c: int) -> float:
    """One-sided exact McNemar p-value that the first method is better.

    ``b`` pairs only the first method got right, ``c`` only the second; under the null
    each discordant pair is a fair coin, so p = P(X >= b) for X ~ Binomial(b + c, 1/2)
    (``scipy.stats.binomtest``). 1.0 when there is no discordant pair.
    """
    if b < 0 or c < 0:
        raise ValueError(f"need counts >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)


def flip_gate(errors: int, n: int, *, mode: str = "gated", min_precision: float = 0.5,
              min_evidence: int = 10, z: float = 1.645) -> FlipGate:
    """Decide whether to flip the region right of the reflection point.

    Parameters
    ----------
    errors, n : int
        Human-labeled pairs that lay in the flip region when they were asked (``n``), and
        how many of them had a wrong AI label (``errors``).
    mode : {"gated", "always", "never"}, default "gated"
        ``always`` is the paper (flip without evidence); ``never`` disables flips.
    min_precision : float in [0, 1], default 0.5
        The gate opens when the Wilson lower bound of ``errors / n`` reaches this.
    min_evidence : int, default 10
        Fewer labeled pairs than this keep the gate closed.
    z : float, default 1.645
        z-score of the one-sided confidence bound.
    """
    if mode not in FLIP_MODES:
        raise ValueError(f"unknown flip mode {mode!r}; known: {', '.join(FLIP_MODES)}")
    if not 0 <= errors <= n:
        raise ValueError(f"need 0 <= errors <= n, got errors={errors}, n={n}")
    lb = wilson_lower_bound(errors, n, z=z)
    if mode == "always":
        return FlipGate(mode, True, errors, n, lb, min_precision, "always flip (paper, no evidence needed)")
    if mode == "never":
        return FlipGate(mode, False, errors, n, lb, min_precision, "flips disabled")
    if n < min_evidence:
        return FlipGate(mode, False, errors, n, lb, min_precision,
                        f"closed: {n} labeled pair(s) from the flip region, need {min_evidence}")
    is_open = lb >= min_precision
    word = "open" if is_open else "closed"
    return FlipGate(mode, is_open, errors, n, lb, min_precision,
                    f"{word}: {errors}/{n} AI errors measured there, lower bound {lb:.2f} "
                    f"{'>=' if is_open else '<'} {min_precision:g}")


def select_actions(margins: np.ndarray, *, budget: int, back_off: float, gate: FlipGate | None = None,
                   probe: float = 0.1, audit: float = 0.0, smooth: float = 0.05, steep: float = 2.0,
                   seed: int = 0) -> Selection:
    """One RLTHF iteration's actions on the pairs that have no human label yet.

    Parameters
    ----------
    margins : array-like of float, shape (N,)
        Margins of the AI labels (:func:`ai_margins`).
    budget : int >= 0
        Pairs to ask humans about in this iteration (at most N).
    back_off : float in [0, 1)
        beta: the trusted region is the ranks ``< (1 - beta) * knee``.
    gate : FlipGate or None, default None
        From :func:`flip_gate`; None means a closed gate without evidence.
    probe : float in [0, 1], default 0.1
        While the gate is open, this share of the budget samples the flip region
        (uniformly, seeded) so its error rate keeps being measured.
    audit : float in [0, 1], default 0.0
        This share of the budget is asked uniformly at random over all pairs (region
        ``audit`` in the reason): an unbiased sample on which the reward model can be
        compared with the AI labels (the held-out check before relabeling with the RM).
    smooth, steep : float
        Passed to :func:`analyze_curve`.
    seed : int, default 0

    Returns
    -------
    Selection
    """
    m = check_vector(margins, "margins")
    if not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be an int >= 0, got {budget!r}")
    if not 0 <= back_off < 1:
        raise ValueError(f"back_off must be in [0, 1), got {back_off}")
    for name, value in (("probe", probe), ("audit", audit)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    curve = analyze_curve(m, smooth=smooth, steep=steep)
    gate = gate or flip_gate(0, 0)
    return _select(m, curve, min(int(budget), m.shape[0]), back_off, gate, probe, audit, seed)


def _select(m: np.ndarray, curve: Curve, budget: int, back_off: float, gate: FlipGate,
            probe: float, audit: float, seed: int) -> Selection:
    n = m.shape[0]
    rank = curve.ranks()
    keep_end = int((1 - back_off) * curve.knee)
    region = np.empty(n, dtype=object)
    region[:] = Region.MIDDLE.value  # one shared string (np.full would copy it per pair)
    region[rank < keep_end] = Region.TRUSTED.value
    region[(rank >= curve.knee) & (rank < curve.reflection)] = Region.BAND.value
    region[rank >= curve.reflection] = Region.FLIP.value
    action = np.empty(n, dtype=object)
    action[:] = Action.DROP.value  # one shared string (np.full would copy it per pair)
    action[region == Region.TRUSTED] = Action.KEEP.value
    if gate.open:
        action[region == Region.FLIP] = Action.FLIP.value
    # Ranks to ask, in order of priority.
    asked_ranks: list[int] = []
    rng = np.random.default_rng(seed)
    k_audit = int(round(audit * budget))
    budget -= k_audit
    if budget:
        if gate.open:
            n_flip = n - curve.reflection
            k_probe = min(n_flip, int(round(probe * budget)))
            probes = rng.choice(np.arange(curve.reflection, n), size=k_probe, replace=False) if k_probe else []
            walk = range(curve.reflection - 1, -1, -1)
            asked_ranks = list(np.sort(probes)[::-1]) + list(walk[: budget - k_probe])
            if len(asked_ranks) < budget:  # the left of the reflection point is too short
                taken = set(asked_ranks)  # built once: a set per candidate made this quadratic
                rest = [r for r in range(n - 1, curve.reflection - 1, -1) if r not in taken]
                asked_ranks += rest[: budget - len(asked_ranks)]
        else:
            asked_ranks = list(range(n - 1, n - 1 - budget, -1))
    if k_audit:
        free = np.setdiff1d(np.arange(n), np.asarray(asked_ranks, dtype=np.int64))
        audits = rng.choice(free, size=min(k_audit, free.size), replace=False)
        region[curve.order[audits]] = Region.AUDIT.value
        asked_ranks += [int(r) for r in audits]
    priority = np.zeros(n)
    if asked_ranks:
        pos = curve.order[np.asarray(asked_ranks, dtype=np.int64)]
        action[pos] = Action.ASK.value
        priority[pos] = 1.0 - np.arange(len(pos)) / max(len(pos), 1)
    return Selection(np.asarray(action, dtype=str), np.asarray(region, dtype=str), rank, priority, m,
                     curve, gate, float(back_off), len(asked_ranks))


def schedule(iteration: int, *, amplification: Sequence[float] = PAPER_AMPLIFICATION,
             back_off: Sequence[float] = PAPER_BACK_OFF) -> tuple[float, float]:
    """(alpha, beta) of a 0-based iteration; the last value of each schedule repeats.

    Defaults are the paper's: alpha 4, 4, 4, 2, 1, 1 and beta 0.6, 0.6, 0.6, 0.4, 0.2, 0.1.
    """
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    if not len(amplification) or not len(back_off):
        raise ValueError("amplification and back_off schedules must not be empty")
    alpha = float(amplification[min(iteration, len(amplification) - 1)])
    beta = float(back_off[min(iteration, len(back_off) - 1)])
    if alpha < 1:
        raise ValueError(f"amplification must be >= 1, got {alpha} at iteration {iteration}")
    if not 0 <= beta < 1:
        raise ValueError(f"back_off must be in [0, 1), got {beta} at iteration {iteration}")
    return alpha, beta


__all__ = ["ACTIONS", "Action", "Curve", "FLIP_MODES", "FlipGate", "MIN_CURVE", "PAPER_AMPLIFICATION", "PAPER_BACK_OFF",
           "Region", "Selection", "ai_margins", "analyze_curve", "flip_gate", "mcnemar_exact", "schedule",
           "select_actions", "wilson_lower_bound"]
