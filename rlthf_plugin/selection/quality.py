"""The curated set's accuracy, estimated from every human label, with an interval.

What is estimated: ``Q``, the number of curated labels a human would disagree with, among
the pairs no human has answered (the AI label, or its flip where flipped); human answers
count as right. The curated accuracy is ``1 - Q / N`` over the ``N`` pairs in scope.

How (active statistical inference, Zrnic & Candès, ICML 2024, with the PPI++ power tuning
of Angelopoulos et al. 2024): each batch ``t`` is a stratified draw with known inclusion
probabilities over its population ``U_t`` (:mod:`.design`), and P(wrong) ``f_t`` was
computed before its labels. Write ``g_i`` for "the curated label of pair i is wrong"
(``w_i`` where kept, ``1 - w_i`` where flipped, ``w_i`` = the AI label is wrong). Batch
``t`` gives the difference estimate

    X_t = sum_{U_t} (a_i + b_i lam f_i) + sum_h B_h * mean_{S_h}(w - lam f) - sum_{L_t} w_i

where ``a_i + b_i w_i = g_i`` (``b = -1`` for flips), ``B_h`` is the sum of ``b`` over
stratum ``h``, ``S_h`` its sampled pairs (the band, stratum 0, is asked whole and known
exactly) and ``L_t`` the pairs of ``U_t`` that humans answered at ``t`` or later (known).
``X_t - Q`` has mean zero given the past for every ``lam``, so the batches form a
martingale; they are averaged with weights fixed by the design before their labels (the
inverse of ``sum_h B_h^2 (1 - n_h / N_h) / n_h``) and the interval is the martingale CLT one
with Student's t quantile (degrees of freedom: the random labels less one),

    Var(X_t) = sum_h B_h^2 (1 - n_h / N_h) s_h^2 / n_h,

``s_h^2`` the residuals' variance in the stratum, never below the mean squared residual of
every random label of every batch with Agresti & Coull's pseudo-labels: ``z^2 / 2`` errors
(squared residual 1) and as many agreements (0), ``z`` the interval's normal quantile (one
or two labels per stratum are common, a dozen random labels with no error among them too,
and the model's own P(wrong) may be badly calibrated: the prior before any label often is).
With two pseudo-labels of 1/4 instead, twelve random labels without an error gave an
interval that missed the shipped demo's true accuracy (0.885 outside [0.894, 1]).

``lam = None`` tunes ``lam`` as PPI++ does (covariance of label and prediction over their
variance, from every sampled label weighted by 1 / inclusion probability), clipped to
[0, 1]; ``lam = 1`` is the plain AIPW / difference estimator; ``lam = 0`` ignores the model.

Without any sampled batch there is no estimate: the interval is everything possible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_level, check_unit


@dataclass(frozen=True)
class QualityEstimate:
    """The curated accuracy and the errors left, with an interval.

    Attributes
    ----------
    estimate, low, high : float
        Curated accuracy (share of in-scope pairs whose curated label a human agrees with).
    confidence : float
        Two-sided confidence of ``[low, high]``.
    errors, errors_low, errors_high : float
        Curated labels a human would disagree with (among unanswered pairs).
    n : int
        Pairs in scope. ``human``: answered by a human; ``open``: not answered.
    lam : float
        The weight of the predictions (PPI++'s lambda).
    batches : int
        Batches with a sampled (random) part that the estimate used.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    errors: float
    errors_low: float
    errors_high: float
    n: int
    human: int
    open: int
    lam: float
    batches: int
    per_batch: list = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def r(x: float) -> float:
            return round(float(x), 4)

        return {"curated_accuracy": {"estimate": r(self.estimate), "low": r(self.low), "high": r(self.high),
                                     "confidence": self.confidence},
                "remaining_errors": {"estimate": r(self.errors), "low": r(self.errors_low),
                                     "high": r(self.errors_high), "confidence": self.confidence},
                "pairs": self.n, "human": self.human, "open": self.open, "lam": r(self.lam),
                "batches": self.batches}


def curated_accuracy(f: Any, stratum: Any, asked_at: Any, wrong: Any, *, flipped: Any = None,
                     confidence: float = 0.95, lam: float | None = None) -> QualityEstimate:
    """Estimate the curated accuracy from T batches (see the module docstring).

    Parameters
    ----------
    f : array-like of float, shape (T, N)
        P(AI label wrong) of each pair as known before batch ``t`` (used where
        ``stratum[t] >= 0``).
    stratum : array-like of int, shape (T, N)
        Design of batch ``t``: ``-1`` not in its population, ``0`` band (asked for sure),
        ``h >= 1`` exploration stratum (uniform draw without replacement).
    asked_at : array-like of int, shape (N,)
        Batch in which a human answered the pair; ``-1`` never. Pairs answered outside
        the batches (imported labels) count as right and take ``-1`` with ``wrong`` set.
    wrong : array-like of float, shape (N,)
        1 / 0: the AI label was wrong / right by the human answer; ``NaN`` unanswered.
        An answered pair with ``NaN`` (a human tie) counts as 0.
    flipped : array-like of bool, shape (N,), optional
        Unanswered pairs whose AI label the curated set flips.
    confidence : float in (0, 1), default 0.95
    lam : float in [0, 1] or None, default None (power-tuned)

    Returns
    -------
    QualityEstimate
    """
    conf = check_level(confidence, "confidence")
    F = np.atleast_2d(np.asarray(f, dtype=np.float64))
    S = np.atleast_2d(np.asarray(stratum, dtype=np.int64))
    at = np.asarray(asked_at, dtype=np.int64)
    w = np.asarray(wrong, dtype=np.float64)
    n = at.size
    if F.shape != S.shape or F.shape[1] != n or w.shape != (n,):
        raise ValueError(f"f and stratum must have shape (T, {n}) and wrong ({n},), "
                         f"got {F.shape}, {S.shape} and {w.shape}")
    if at.size and at.max() >= F.shape[0]:
        raise ValueError(f"asked_at names batch {at.max()} but only {F.shape[0]} were given")
    fl = np.zeros(n, dtype=bool) if flipped is None else np.asarray(flipped, dtype=bool)
    if fl.shape != (n,):
        raise ValueError(f"flipped must have shape ({n},), got {fl.shape}")
    answered = np.isfinite(w) | (at >= 0)
    if (fl & answered).any():
        raise ValueError("flipped must not include pairs a human answered")
    if lam is not None:
        lam = check_unit(lam, "lam")
    return _estimate(F, S, at, np.nan_to_num(w, nan=0.0), answered, fl, conf, lam)


def _estimate(F: np.ndarray, S: np.ndarray, at: np.ndarray, w: np.ndarray, answered: np.ndarray, fl: np.ndarray,
              conf: float, lam: float | None) -> QualityEstimate:
    from scipy.stats import t as student

    scope = answered | (S >= 0).any(axis=0)
    n = int(scope.sum())
    b = np.where(fl, -1.0, 1.0)
    a = np.where(fl, 1.0, 0.0)
    open_ = scope & ~answered
    if lam is None:
        lam = _power_tuned(F, S, at, w)
    from scipy.stats import norm

    pooled, n_sampled = _pooled_second_moment(F, S, at, w, lam, float(norm.ppf(0.5 + conf / 2)) ** 2)
    xs, vs, wts, info = [], [], [], []
    for t in range(F.shape[0]):
        pop = S[t] >= 0
        f = np.clip(np.nan_to_num(F[t], nan=0.0), 0, 1)
        strata = [h for h in np.unique(S[t][pop]) if h > 0]
        band = pop & (S[t] == 0)
        # The band is asked whole: its w is known (answered pairs are never flipped: b = 1).
        x = float(np.sum(w[band])) + float(np.sum((a + b * lam * f)[pop & (S[t] > 0)]))
        v = design = 0.0
        usable = True
        for h in strata:
            m = pop & (S[t] == h)
            s = m & (at == t)
            nh, Nh, Bh = int(s.sum()), int(m.sum()), float(b[m].sum())
            if nh == 0:  # inclusion probability 0: this batch cannot speak for the stratum
                usable = False
                break
            r = w[s] - lam * f[s]
            x += Bh * float(r.mean())
            s2 = max(float(r.var(ddof=1)) if nh > 1 else 0.0, pooled)
            fpc = 1 - nh / Nh
            v += Bh ** 2 * fpc * s2 / nh
            design += Bh ** 2 * fpc / nh
        # Everything of U_t answered at t or later is known: not part of Q.
        x -= float(np.sum(w[pop & (at >= t)]))
        if usable and pop.any():
            xs.append(x)
            vs.append(v)
            wts.append(design)
            info.append({"batch": t, "population": int(pop.sum()), "estimate": round(x, 3),
                         "sd": round(float(np.sqrt(v)), 3)})
    q_max = float(np.sum(open_))
    human = int((answered & scope).sum())
    if not xs:
        return _result(0.0, 0.0, q_max, n, human, conf, lam, 0, info, empty=True)
    xs_a, vs_a, d_a = map(np.asarray, (xs, vs, wts))
    if (d_a == 0).any():  # a batch with no random part knows Q exactly (its population was asked whole)
        k = int(np.flatnonzero(d_a == 0)[-1])
        q, sd = xs_a[k], 0.0
    else:
        # Weights fixed by the design alone (known before the labels): a martingale average.
        wt = (1 / d_a) / np.sum(1 / d_a)
        q, sd = float(np.sum(wt * xs_a)), float(np.sqrt(np.sum(wt ** 2 * vs_a)))
    # Student's t with the random labels' degrees of freedom: a handful of labels is common.
    z = float(student.ppf(0.5 + conf / 2, max(n_sampled - 1, 1)))
    lo, hi = max(q - z * sd, 0.0), min(q + z * sd, q_max)
    q = min(max(q, 0.0), q_max)
    return _result(q, lo, hi, n, human, conf, lam, len(xs), info)


def _pooled_second_moment(F: np.ndarray, S: np.ndarray, at: np.ndarray, w: np.ndarray,
                          lam: float, z2: float) -> tuple[float, int]:
    """Mean squared residual ``(w - lam f)^2`` over every sampled (random) label of every batch,
    with ``z2 / 2`` pseudo-errors (squared residual 1) and ``z2 / 2`` pseudo-agreements (0),
    as Agresti & Coull's interval adds them: a floor for each stratum's residual variance that
    does not trust the model's own P(wrong) and holds with no error among a few labels.
    Returns it and the number of sampled labels."""
    sq, k = 0.0, 0
    for t in range(F.shape[0]):
        s = (S[t] > 0) & (at == t)
        r = w[s] - lam * np.clip(np.nan_to_num(F[t][s], nan=0.0), 0, 1)
        sq += float(np.sum(r ** 2))
        k += int(s.sum())
    return (sq + z2 / 2) / (k + z2), k


def _result(q: float, lo: float, hi: float, n: int, human: int, conf: float, lam: float, batches: int, info: Any,
            empty: bool = False) -> QualityEstimate:
    n_ = max(n, 1)
    acc = 1 - q / n_ if not empty else 1 - (hi / 2) / n_
    return QualityEstimate(float(acc), float(1 - hi / n_), float(1 - lo / n_), conf, float(q if not empty else hi / 2),
                           float(lo), float(hi), n, human, n - human, float(lam), batches, info)


def _power_tuned(F: np.ndarray, S: np.ndarray, at: np.ndarray, w: np.ndarray) -> float:
    """PPI++'s lambda = Cov(w, f) / Var(f) over the sampled labels, weighted by 1/pi, in [0, 1]."""
    fs, ws, ps = [], [], []
    for t in range(F.shape[0]):
        for h in np.unique(S[t][S[t] > 0]):
            m = S[t] == h
            s = m & (at == t)
            if s.any():
                fs.append(np.nan_to_num(F[t][s], nan=0.0))
                ws.append(w[s])
                ps.append(np.full(int(s.sum()), m.sum() / s.sum()))
    if not fs:
        return 1.0
    f, y, wt = np.concatenate(fs), np.concatenate(ws), np.concatenate(ps)
    if f.size < 3:
        return 1.0
    mf, my = np.average(f, weights=wt), np.average(y, weights=wt)
    var = np.average((f - mf) ** 2, weights=wt)
    if var <= 1e-12:
        return 1.0
    return float(np.clip(np.average((f - mf) * (y - my), weights=wt) / var, 0.0, 1.0))


def classical_interval(wrong_sample: Any, n_pool: int, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """Curated accuracy from a uniform sample of the pool, the classical (Wald) way.

    The sampled pairs are human-labeled (right); the rest keep the AI label, whose error
    rate is the sample's. Returns ``(estimate, low, high)``.

    Parameters
    ----------
    wrong_sample : array-like of {0, 1}, shape (n,)
        Whether the AI label of each sampled pair was wrong.
    n_pool : int
        Pairs in the pool.
    """
    from scipy.stats import norm

    y = np.asarray(wrong_sample, dtype=np.float64)
    k = y.size
    if k == 0 or n_pool <= k:
        return 1.0, 0.0, 1.0
    check_level(confidence, "confidence")
    rest = n_pool - k
    p = float(y.mean())
    sd = np.sqrt(max(p * (1 - p), 0.0) / k * (1 - k / n_pool) * k / max(k - 1, 1))
    z = float(norm.ppf(0.5 + confidence / 2))
    acc = 1 - rest * p / n_pool
    half = z * rest * sd / n_pool
    return acc, max(acc - half, 0.0), min(acc + half, 1.0)


@dataclass(frozen=True)
class StopVerdict:
    """Whether another batch is worth it.

    Attributes
    ----------
    per_100 : float
        Expected AI errors the next batch fixes per 100 labels (mean calibrated P(wrong)
        of its pairs, times 100).
    target : float or None
        ``selection.target_accuracy``; None = no target.
    reached : bool
        The curated accuracy's lower bound is at or above ``target``.
    stop : bool
        ``reached`` (the only reason to stop that the product acts on).
    reason : str
    """

    per_100: float
    target: float | None
    reached: bool
    stop: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"errors_fixed_per_100_labels": round(self.per_100, 2), "target_accuracy": self.target,
                "target_reached": self.reached, "stop": self.stop, "reason": self.reason}


def stop_verdict(next_p_wrong: Any, accuracy_low: float, *, target: float | None = None) -> StopVerdict:
    """The stopping verdict from the estimates.

    Parameters
    ----------
    next_p_wrong : array-like of float, shape (K,)
        Calibrated P(wrong) of the pairs the next batch would ask (empty: nothing to ask).
    accuracy_low : float
        Lower bound of the curated accuracy.
    target : float in [0, 1] or None
    """
    p = np.asarray(next_p_wrong, dtype=np.float64).reshape(-1)
    p = p[np.isfinite(p)]
    if target is not None:
        target = check_unit(target, "target_accuracy")
    per_100 = float(100 * p.mean()) if p.size else 0.0
    reached = target is not None and accuracy_low >= target
    if reached:
        reason = f"the curated accuracy's lower bound {accuracy_low:.3f} reached the target {target:g}"
    elif not p.size:
        reason = "no pair left to ask"
    else:
        reason = (f"the next batch fixes about {per_100:.1f} AI errors per 100 labels"
                  + ("" if target is None else f"; lower bound {accuracy_low:.3f} < target {target:g}"))
    return StopVerdict(per_100, target, bool(reached), bool(reached or not p.size), reason)
