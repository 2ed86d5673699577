"""The open batch: an iteration pushed to a labeling platform and not yet labeled.

While ``rlthf serve`` waits for a batch's labels (iteration state ``pushing`` or
``pushed``), that batch is owned: a manual ``select``, ``run`` or ``label`` would start
or answer another iteration and leave the pushed tasks awaited by nobody, so
:func:`refuse_if_open` stops them with a one-line error naming the batch and the two ways
to close it: wait for its labels (``rlthf serve`` / ``rlthf pull``), or
``rlthf abandon ITERATION``, which closes it with the labels it has
(:func:`abandon_batch`) and removes its open tasks from the platform, or with
``--keep-tasks`` leaves them there, marked in the iteration's stats.

:func:`batch_progress` is the batch's progress per platform (pushed, labeled, pending),
for ``rlthf status``, ``/health`` and the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import Config
from ..errors import RlthfError
from ..store import iterations as iterations_db
from ..store.labels import claim_batch, label_counts
from ..store.ledger import Ledger, now
from ..vocab import IterationState as S
from .oracle import answer_of, close_batch

#: States of an iteration whose batch is on a platform, waiting for labels.
OPEN_STATES = (S.PUSHING.value, S.PUSHED.value)


class OpenBatchError(RlthfError):
    """An iteration's batch is pushed and waiting for labels: another iteration would orphan it."""


def batch_priority(iteration: int, within: float) -> float:
    """A task's stored priority: ``iteration + within`` for an asked task (``within`` in
    (0, 1], 1 = first of its batch), so a newer batch sorts before every older one in a
    platform's priority view; 0 for a task not asked."""
    return float(iteration) + float(within) if within > 0 else 0.0


def required_labels(platform: str, config: Config) -> int:
    """Labels a task needs before it counts as done: Argilla's ``min_submitted``, else 1."""
    return max(1, int(config.argilla.min_submitted)) if platform == "argilla" else 1


def open_batch(ledger: Ledger) -> dict | None:
    """The latest iteration's row when its batch is pushed and not labeled, else None."""
    row = iterations_db.latest_row(ledger)
    return row if row is not None and row["state"] in OPEN_STATES else None


def refuse_if_open(ledger: Ledger, command: str) -> None:
    """Raise :class:`OpenBatchError` (one line) when a batch is open; ``command`` is the
    refused command's name (``select``, ``run``, ``label``)."""
    row = open_batch(ledger)
    if row is None:
        return
    it = row["id"]
    raise OpenBatchError(
        f"iteration {it}'s batch is {row['state']} and waiting for labels, so `rlthf {command}` would leave it "
        f"orphaned: let `rlthf serve` (or `rlthf pull`) collect its labels, or close it with `rlthf abandon {it}` "
        "(--keep-tasks leaves its open tasks on the platform)")


def pushed_targets(row: dict) -> dict[str, str]:
    """platform -> target the iteration's batch was pushed to (from its stats)."""
    recorded = (row.get("stats") or {}).get("push") or {}
    return {p: str(v["target"]) for p, v in recorded.items() if isinstance(v, dict) and v.get("target")}


def batch_progress(ledger: Ledger, config: Config, row: dict,
                   targets: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """platform -> ``{"target", "pushed", "labeled", "pending", "pending_ids"}`` of the
    iteration ``row``'s asked pairs; ``targets`` (platform -> target) default to the ones
    its stats record."""
    asked = iterations_db.asked_pair_ids(ledger, row["id"])
    out: dict[str, dict[str, Any]] = {}
    for platform, target in (targets if targets is not None else pushed_targets(row)).items():
        known = ledger.pushed(platform, target)
        pushed = [p for p in asked if p in known]
        counts = label_counts(ledger, platform, pushed)
        pending = [p for p in pushed if counts.get(p, 0) < required_labels(platform, config)]
        out[platform] = {"target": target, "pushed": len(pushed), "labeled": len(pushed) - len(pending),
                         "pending": len(pending), "pending_ids": pending}
    return out


def latest_progress(ledger: Ledger, config: Config) -> dict[str, Any] | None:
    """The latest iteration's progress for ``rlthf status``: ``{"iteration", "state",
    "asked", "pushed", "labeled", "pending", "per_platform"}`` (pushed and labeled summed
    over platforms); None before the first iteration."""
    row = iterations_db.latest_row(ledger)
    if row is None:
        return None
    progress = batch_progress(ledger, config, row)
    return {"iteration": row["id"], "state": row["state"],
            "asked": len(iterations_db.asked_pair_ids(ledger, row["id"])),
            "pushed": sum(p["pushed"] for p in progress.values()),
            "labeled": sum(p["labeled"] for p in progress.values()),
            "pending": sum(p["pending"] for p in progress.values()),
            "per_platform": {k: {x: v[x] for x in ("target", "pushed", "labeled", "pending")}
                             for k, v in progress.items()}}


@dataclass
class AbandonReport:
    iteration: int
    answered: int
    open_tasks: dict[str, list[str]] = field(default_factory=dict)  # platform -> external ids left open
    removed: int = 0


def abandon_batch(ledger: Ledger, config: Config, iteration: int, *, owner: Any = None,
                  remove: Callable[[str, str, list[str]], int] | None = None) -> AbandonReport:
    """Close the open batch of ``iteration`` with the labels it has.

    The labels already given are tied to the iteration and count as its answers (the
    others keep their AI label, as skipped pairs do); the iteration is marked labeled with
    ``stats["abandoned"]`` recording its open tasks. ``remove(platform, target,
    external_ids)`` deletes the open tasks on the platform and returns how many it
    removed (None: the tasks stay, marked).
    """
    row = next((r for r in iterations_db.iteration_rows(ledger) if r["id"] == iteration), None)
    if row is None:
        raise RlthfError(f"there is no iteration {iteration} (`rlthf status` lists them)")
    if row["state"] not in OPEN_STATES:
        raise RlthfError(f"iteration {iteration} is {row['state']}, not a pushed batch waiting for labels: "
                         "nothing to abandon")
    progress = batch_progress(ledger, config, row)
    open_ids = {}
    for platform, p in progress.items():
        known = ledger.pushed(platform, p["target"])
        open_ids[platform] = [known[pid] for pid in p["pending_ids"]]
    removed = 0
    if remove is not None:
        for platform, ids in open_ids.items():
            if ids:
                removed += remove(platform, progress[platform]["target"], ids)
    asked = iterations_db.asked_pair_ids(ledger, iteration)
    fence = owner.fence if owner is not None else None
    # Noted first (the state unchanged): a run killed before the close is simply run again.
    stats = dict(iterations_db.iteration_stats(ledger, iteration) or {})
    stats["abandoned"] = {"at": now().isoformat(), "open_tasks": {k: len(v) for k, v in open_ids.items()},
                          "removed": removed, "kept": remove is None}
    iterations_db.set_iteration_state(ledger, iteration, row["state"], stats=stats, fence=fence)
    votes = claim_batch(ledger, iteration, list(progress), asked, fence=fence)
    answers = {pid: answer_of(votes.get(pid, [])) for pid in asked}
    report = close_batch(ledger, config, iteration, answers, owner=owner)
    return AbandonReport(iteration, report.answered, open_ids, removed)


__all__ = ["AbandonReport", "OPEN_STATES", "OpenBatchError", "abandon_batch", "batch_priority", "batch_progress", "latest_progress",
           "open_batch",
           "pushed_targets", "refuse_if_open", "required_labels"]
