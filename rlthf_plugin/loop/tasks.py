"""Which pairs go to humans: the tasks of an iteration, read from the ledger."""

from __future__ import annotations

import sqlalchemy as sa

from ..store import ledger as L
from ..store.judges import iteration_primary, primary_labels
from ..backends.base import Task


def latest_iteration(ledger: L.Ledger) -> int | None:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(L.iterations.c.id))).scalar()


def asked_tasks(ledger: L.Ledger, iteration: int | None = None, *, limit: int | None = None) -> list[Task]:
    """The pairs an iteration sent to humans (action ``ask``), highest priority first.

    ``iteration`` defaults to the latest one. Each task carries the decision's reason,
    margin and priority, and the pair's current AI label.
    """
    if iteration is None:
        iteration = latest_iteration(ledger)
        if iteration is None:
            return []
    with ledger.engine.connect() as conn:
        q = (sa.select(L.decisions).where(L.decisions.c.iteration == iteration, L.decisions.c.action == "ask")
             .order_by(L.decisions.c.priority.desc(), L.decisions.c.pair_id))
        rows = conn.execute(q.limit(limit) if limit else q).mappings().all()
    pairs = {p.id: p for p in ledger.get_pairs(r["pair_id"] for r in rows)}
    # The AI label shown is the primary judge's of that iteration; the score, the share of
    # every vote that agrees with the majority.
    ai, _ = primary_labels(ledger, iteration_primary(ledger, iteration), [r["pair_id"] for r in rows])
    agree = ledger.ai_majority()
    return [
        Task(pairs[r["pair_id"]], priority=float(r["priority"] or 0.0), reason=dict(r["reason"] or {}),
             iteration=iteration, ai_label=ai.get(r["pair_id"]),
             ai_score=agree[r["pair_id"]].agreement if r["pair_id"] in agree else None,
             margin=r["margin"], model_version=f"rlthf-iter{iteration}")
        for r in rows
    ]


def all_tasks(ledger: L.Ledger, *, limit: int | None = None) -> list[Task]:
    """Every pair as a task (label everything), in id order, priority 0."""
    ai = ledger.ai_majority()
    primary, _ = primary_labels(ledger, iteration_primary(ledger))
    pairs = ledger.get_pairs()
    if limit:
        pairs = pairs[:limit]
    return [
        Task(p, priority=0.0, reason={"region": "all"}, ai_label=primary.get(p.id),
             ai_score=ai[p.id].agreement if p.id in ai else None)
        for p in pairs
    ]
