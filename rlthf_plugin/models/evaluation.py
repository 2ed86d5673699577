"""Scoring a reward model against human labels: accuracy with a 95% interval, per group.

Pure: margins and labels in, a frozen result out. A pair counts toward accuracy when its
human label names a winner (A or B); human ties are counted apart (``human_ties``), never
as right or wrong. A pair the model cannot order (margin exactly 0, or within ``tie_tol``)
is counted apart too (``model_ties``) and scored as wrong: a reward model that cannot
order a pair gives no preference to train a policy on. The interval is Wilson's score
interval for a binomial proportion (``scipy.stats.binomtest(...).proportion_ci``), which
keeps its coverage at small n and near 0 or 1 where the normal approximation does not.

:func:`split_mask` is the held-out split of ``rlthf evaluate --split F`` and
``rlthf train reward --exclude-split F``: a pair is held out when a salted hash of its id
falls under ``F``, so the same pairs are held out by every command without storing a list.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

#: Confidence of every interval here.
CONFIDENCE = 0.95
#: Salt of the held-out split's hash (changing it would move the split of every workspace).
SPLIT_SALT = "rlthf-evaluate-split-v1"


@dataclass(frozen=True)
class Accuracy:
    """``correct`` of ``n`` pairs with a human winner, and the Wilson 95% interval."""

    correct: int
    n: int
    accuracy: float
    low: float
    high: float

    @classmethod
    def of(cls, correct: int, n: int, confidence: float = CONFIDENCE) -> "Accuracy":
        if n == 0:
            return cls(0, 0, float("nan"), float("nan"), float("nan"))
        lo, hi = wilson_interval(correct, n, confidence)
        return cls(int(correct), int(n), correct / n, lo, hi)

    def text(self) -> str:
        if self.n == 0:
            return "- (no pairs with a human winner)"
        return f"{self.accuracy:.3f} [{self.low:.3f}, {self.high:.3f}] ({self.correct}/{self.n})"


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate_margins` found.

    ``overall`` over every pair with a human winner; ``by_source`` and ``by_category`` the
    same per group (``by_category`` empty when no pair has a category); ``pairs`` every pair
    given; ``human_ties`` pairs whose human label is a tie (not in any accuracy);
    ``unlabeled`` pairs without a usable human label (no votes, or no majority);
    ``model_ties`` pairs with a human winner that the model did not order (in ``n``, wrong).
    """

    overall: Accuracy
    by_source: dict[str, Accuracy] = field(default_factory=dict)
    by_category: dict[str, Accuracy] = field(default_factory=dict)
    pairs: int = 0
    human_ties: int = 0
    unlabeled: int = 0
    model_ties: int = 0
    confidence: float = CONFIDENCE

    def to_dict(self) -> dict:
        """Plain data for JSON: an accuracy over no pairs is None, not NaN."""
        def clean(v):
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return None if isinstance(v, float) and v != v else v

        return clean(asdict(self))


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of ``correct / n`` (scipy.stats), ``(low, high)``; ``n >= 1``."""
    from scipy.stats import binomtest

    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n and n >= 1, got correct={correct}, n={n}")
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def evaluate_margins(margins: Sequence[float], labels: Sequence[str], *, sources: Sequence[str] | None = None,
                     categories: Sequence[str | None] | None = None, tie_tol: float = 0.0,
                     confidence: float = CONFIDENCE) -> Evaluation:
    """Accuracy of ``margins`` against human ``labels``, overall and per group.

    Parameters
    ----------
    margins : (N,) float
        ``r(response_a) - r(response_b)`` per pair; > ``tie_tol`` prefers A, < ``-tie_tol`` B.
    labels : (N,) str
        The human label per pair: ``A``, ``B``, ``tie``, or anything else (e.g. "" or
        ``no_majority``) for no usable label.
    sources, categories : (N,) str, optional
        Group names; a pair whose category is None or "" is in no category.
    tie_tol : float, default 0
        Margins with ``|m| <= tie_tol`` order nothing (counted in ``model_ties``).
    """
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels, dtype=object).astype(str)
    if m.shape != y.shape or m.ndim != 1:
        raise ValueError(f"margins {m.shape} and labels {y.shape} must be (N,) of one length")
    if not np.isfinite(m).all():
        raise ValueError(f"{int((~np.isfinite(m)).sum())} margin(s) are NaN or infinite")
    winner = np.isin(y, ["A", "B"])
    ordered = np.abs(m) > tie_tol
    right = winner & ordered & (np.where(m > 0, "A", "B") == y)

    def acc(mask: np.ndarray) -> Accuracy:
        return Accuracy.of(int(right[mask].sum()), int((winner & mask).sum()), confidence)

    def groups(names) -> dict[str, Accuracy]:
        if names is None:
            return {}
        g = np.asarray([("" if v is None else str(v)) for v in names], dtype=object)
        if g.shape != m.shape:
            raise ValueError(f"group names {g.shape} and margins {m.shape} differ in length")
        return {str(k): acc(g == k) for k in sorted(set(g.tolist()) - {""}) if (winner & (g == k)).any()}

    return Evaluation(acc(np.ones(m.shape, bool)), groups(sources), groups(categories), pairs=int(m.size),
                      human_ties=int((y == "tie").sum()), unlabeled=int((~winner & (y != "tie")).sum()),
                      model_ties=int((winner & ~ordered).sum()), confidence=confidence)


def split_mask(pair_ids: Sequence[str], fraction: float) -> np.ndarray:
    """(N,) bool: the pairs held out by ``--split fraction`` (a salted hash of the id < fraction).

    The same ids and fraction give the same mask everywhere; a larger fraction holds out a
    superset of a smaller one's pairs.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the split fraction must be in [0, 1), got {fraction}")

    def u(pid: str) -> float:
        return int(hashlib.sha256(f"{SPLIT_SALT}:{pid}".encode()).hexdigest()[:13], 16) / 16 ** 13

    return np.array([u(p) < fraction for p in pair_ids], dtype=bool)


def markdown(result: Evaluation, *, title: str = "Evaluation") -> str:
    """The result as a markdown section (for the model card)."""
    pct = f"{result.confidence:.0%}"
    lines = [f"## {title}", "", f"| group | accuracy [{pct} Wilson interval] (correct/n) |", "|---|---|",
             f"| **all** | {result.overall.text()} |"]
    lines += [f"| source {k} | {v.text()} |" for k, v in result.by_source.items()]
    lines += [f"| category {k} | {v.text()} |" for k, v in result.by_category.items()]
    lines += ["", f"{result.pairs} pairs: {result.overall.n} with a human winner, {result.human_ties} human ties "
                  f"(counted apart), {result.unlabeled} without a usable human label; {result.model_ties} "
                  "pair(s) the model did not order (scored wrong)."]
    return "\n".join(lines)


__all__ = ["Accuracy", "CONFIDENCE", "Evaluation", "evaluate_margins", "markdown", "split_mask", "wilson_interval"]
