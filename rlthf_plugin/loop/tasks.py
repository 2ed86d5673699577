"""Which pairs go to humans: the tasks of an iteration, read from the ledger."""

from __future__ import annotations

from ..backends.base import Task
from ..selection.calibration import Calibration
from .calibration import ai_label_probability
from ..store import iterations as iterations_db
from ..store.iterations import latest_iteration
from ..store.ledger import Ledger
from ..store.votes import audited_labels, iteration_primary


def asked_tasks(ledger: Ledger, iteration: int | None = None, *, limit: int | None = None,
                calibration: Calibration | None = None) -> list[Task]:
    """The pairs an iteration sent to humans (action ``ask``), highest priority first.

    ``iteration`` defaults to the latest one. Each task carries the decision's reason,
    margin and priority, and the pair's current AI label; with a ``calibration``
    (:func:`~rlthf_plugin.loop.calibration.current_calibration`) its ``ai_score`` is the
    calibrated probability that the AI label is right, and the model version names the
    calibration. Without one there is no score: an uncalibrated number would mislead.
    """
    if iteration is None:
        iteration = latest_iteration(ledger)
        if iteration is None:
            return []
    rows = iterations_db.asked_decisions(ledger, iteration, limit=limit)
    version = f"rlthf-iter{iteration}" + (f"-{calibration.tag}" if calibration is not None else "")
    pairs = {p.id: p for p in ledger.get_pairs(r["pair_id"] for r in rows)}
    # The AI label shown is the one that iteration audited: its primary judge's, or the fallback
    # judge's where the primary did not vote (the other judges are signals).
    ai = audited_labels(ledger, iteration_primary(ledger, iteration), [r["pair_id"] for r in rows]).labels
    return [
        Task(pairs[r["pair_id"]], priority=float(r["priority"] or 0.0), reason=dict(r["reason"] or {}),
             iteration=iteration, ai_label=ai.get(r["pair_id"]),
             ai_score=ai_label_probability(calibration, ai.get(r["pair_id"]), r["margin"]),
             margin=r["margin"], model_version=version)
        for r in rows
    ]


def all_tasks(ledger: Ledger, *, limit: int | None = None) -> list[Task]:
    """Every pair as a task (label everything), in id order, priority 0."""
    ai = audited_labels(ledger, iteration_primary(ledger)).labels
    pairs = ledger.get_pairs()
    if limit:
        pairs = pairs[:limit]
    return [
        Task(p, priority=0.0, reason={"region": "all"}, ai_label=ai.get(p.id))
        for p in pairs
    ]


__all__ = ["all_tasks", "asked_tasks", "latest_iteration"]
