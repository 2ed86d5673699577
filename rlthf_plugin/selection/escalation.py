"""Which pairs to escalate to the next judge before humans are asked (Trust or Escalate).

Jung, Brahman, Choi (ICLR 2025): a cascade of judges, cheap to strong; where a judge is
not trusted the pair goes to the next one, and humans see only what the judges leave in
doubt. A judge call costs cents where a human label costs dollars, so each iteration
first spends an escalation budget, then refits, then draws the human batch
(:mod:`rlthf_plugin.loop.escalation`).

:func:`choose_escalations` picks the pairs, in this order:

1. pairs this judge already answered in one order only (a killed run: finishing them
   costs one call each, and no pair is ever judged twice);
2. ``tie_inconsistent`` pairs (their label judge contradicted itself across orders): they
   have no label to audit, and the next judge may settle them;
3. the other untrusted, unasked pairs by the value of the answer, one of :data:`RULES`:

   - ``uncertainty``: P(wrong) closest to 0.5 (``p (1 - p)`` highest), where the current
     evidence is least decided;
   - ``p_wrong``: the highest P(wrong), the likeliest errors;
   - ``beyond_batch``: the highest P(wrong) after the ``skip`` most suspect pairs (the ones
     the next human batch takes anyway): the answer is worth most where it can move a pair
     into the batch or settle a likely error no human will see.

The rule of the product (``[escalation] rule``) was chosen on dev data:
``benchmarks/cascade_dev.py``, results in docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_vector

RULES = ("uncertainty", "p_wrong", "beyond_batch")
DEFAULT_RULE = "p_wrong"


def escalation_value(p_wrong: Any, *, rule: str = DEFAULT_RULE, skip: int = 0) -> np.ndarray:
    """(N,) float: how much a verdict of the next judge is worth per pair (higher first).

    Parameters
    ----------
    p_wrong : array-like of float, shape (N,)
        P(the audited label is wrong); ``NaN`` = unknown (valued last).
    rule : one of :data:`RULES`
    skip : int >= 0
        ``beyond_batch`` only: the pairs with the ``skip`` highest P(wrong) are valued last.
    """
    p = check_vector(p_wrong, "p_wrong")
    if rule not in RULES:
        raise ValueError(f"unknown escalation rule {rule!r}; known: {', '.join(RULES)}")
    if isinstance(skip, bool) or not isinstance(skip, (int, np.integer)) or skip < 0:
        raise ValueError(f"skip must be an int >= 0, got {skip!r}")
    known = np.isfinite(p)
    if rule == "uncertainty":
        value = p * (1 - p)
    else:
        value = p.copy()
        if rule == "beyond_batch" and skip:
            top = np.flatnonzero(known)[np.argsort(-p[known], kind="stable")[:skip]]
            value[top] = -1.0 + p[top]  # after every other known pair, still in P(wrong) order
    return np.where(known, value, -np.inf)


def choose_escalations(p_wrong: Any, *, budget: int, eligible: Any, inconsistent: Any = None,
                       in_flight: Any = None, rule: str = DEFAULT_RULE, skip: int = 0) -> np.ndarray:
    """Rows to send to the next judge, in asking order (see the module docstring).

    Parameters
    ----------
    p_wrong : array-like of float, shape (N,)
        P(the audited label is wrong); ``NaN`` where unknown.
    budget : int >= 0
        Pairs to escalate (at most; fewer when fewer are eligible).
    eligible : array-like of bool, shape (N,)
        Pairs that may be escalated: not trusted, not asked of humans, without this
        judge's verdict yet.
    inconsistent : array-like of bool, shape (N,), optional
        Eligible pairs whose label is ``tie_inconsistent``: escalated first.
    in_flight : array-like of bool, shape (N,), optional
        Pairs this judge answered in one order only: escalated before anything else
        (they are eligible whatever ``eligible`` says).
    rule, skip
        As :func:`escalation_value`.

    Returns
    -------
    ndarray of int, shape (K,), K <= budget
    """
    value = escalation_value(p_wrong, rule=rule, skip=skip)
    n = value.shape[0]

    def mask(x: Any, name: str) -> np.ndarray:
        m = np.zeros(n, dtype=bool) if x is None else np.asarray(x, dtype=bool)
        if m.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) like p_wrong, got {m.shape}")
        return m

    el, inc, flight = mask(eligible, "eligible"), mask(inconsistent, "inconsistent"), mask(in_flight, "in_flight")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be an int >= 0, got {budget!r}")
    tier = np.where(flight, 0, np.where(el & inc, 1, np.where(el, 2, 3)))
    order: np.ndarray = np.lexsort((np.arange(n), -value, tier))  # tier first, then value, then row
    order = order[tier[order] < 3]
    return order[: int(budget)].astype(np.int64)


__all__ = ["DEFAULT_RULE", "RULES", "choose_escalations", "escalation_value"]
