"""Why a pair was asked, in words a labeler reads without being anchored.

The machine reason (region, margin, rank, the curve's points, the gate) stays where
labelers do not see it: Label Studio task ``meta``, Argilla metadata hidden from
annotators, and the ledger (``rlthf status``, ``report``, the export). Labelers get one
plain line with no number and no hint of which answer the machine or the AI judge
prefers: the word "flip" or a margin would tell them the machine thinks the AI is wrong.
"""

from __future__ import annotations

from typing import Any, Mapping

#: region / source / strategy -> the line a labeler sees.
PLAIN = {
    "flip": "Asked because our reward model and the AI judge disagree here",
    "ask": "Asked because our reward model is unsure which answer is better",
    "audit": "Random check: picked at random to measure label quality",
    "easy": "New pair: these two answers differ the most",
    "centroid": "New pair: a typical answer against another one",
    "random": "New pair, picked at random",
    "real": "New pair: these two answers differ the most",
    "candidates": "New pair: these two answers differ the most",
    "hard": "New pair: these two answers are close, so the choice matters",
    "all": "Part of the full set: every pair gets a label",
    # the signals strategy's task kinds
    "suspect": "Asked because our reward model and the AI judges disagree here",
    "explore": "Random check: picked at random to measure label quality",
    "tie": "Asked because the AI judges could not decide between these answers",
}
DEFAULT = "Asked because a human label here helps the most"


def plain_reason(reason: Mapping[str, Any] | None) -> str:
    """One line for labelers from a machine reason (a decision's ``reason`` mapping).

    Parameters
    ----------
    reason : mapping or None
        Keys as the selection writes them: ``region`` ("flip", "ask", "audit", ...; the signals
        strategy: the task kind "suspect", "real", "explore"), ``source`` ("rlthf", "real", ...),
        ``strategy`` (REAL: "easy", "hard", ...).

    Returns
    -------
    str
        A sentence with no digits, from :data:`PLAIN`, or :data:`DEFAULT`.
    """
    reason = reason or {}
    for key in ("strategy", "region", "source", "kind"):
        value = reason.get(key)
        if isinstance(value, str) and value in PLAIN:
            return PLAIN[value]
    return DEFAULT


def machine_reason(reason: Mapping[str, Any] | None, priority: float | None = None) -> str:
    """The full machine reason as one line (for operators: task meta, hidden metadata)."""
    parts = [] if priority is None else [f"priority {priority:g}"]
    for key, value in (reason or {}).items():
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " · ".join(parts)


__all__ = ["plain_reason", "machine_reason", "PLAIN", "DEFAULT"]
