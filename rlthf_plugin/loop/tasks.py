"""Which pairs go to humans: the tasks of an iteration, read from the ledger.

Both task lists are :class:`TaskList`: the ordered pair ids are held, and the pairs'
texts are read a page at a time while the list is iterated, so a push of a million
pairs holds one page of texts, not a million (the discipline of import and export).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence, overload

from ..backends.base import Task
from ..config import Config
from ..selection.calibration import Calibration
from .workspace_calibration import ai_label_probability, current_calibration
from ..store import iterations as iterations_db
from ..store.iterations import latest_iteration
from ..store.ledger import Ledger
from ..store.votes import audited_labels, iteration_primary

#: Tasks built at a time while a TaskList is iterated (the pair texts held at once).
PAGE = 1000


class TaskList(Sequence[Task]):
    """Tasks read lazily from the ledger, highest priority first (then by pair id).

    ``pair_ids`` is the order; ``build(ids)`` makes the tasks of some of them (same
    order), reading their pairs from the ledger. Iterating builds :data:`PAGE` at a time;
    an index or a slice builds just those. ``ordered`` tells an adapter that the order is
    already the import order (:func:`~rlthf_plugin.backends.base.by_priority`).
    """

    ordered = True

    def __init__(self, pair_ids: list[str], build: Callable[[Sequence[str]], list[Task]], *, page: int | None = None):
        self.pair_ids = pair_ids
        self._build = build
        self._page = page or PAGE

    def __len__(self) -> int:
        return len(self.pair_ids)

    @overload
    def __getitem__(self, i: int) -> Task: ...

    @overload
    def __getitem__(self, i: slice) -> list[Task]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._build(self.pair_ids[i])
        return self._build([self.pair_ids[i]])[0]

    def __iter__(self) -> Iterator[Task]:
        for start in range(0, len(self.pair_ids), self._page):
            yield from self._build(self.pair_ids[start:start + self._page])

    def __repr__(self) -> str:
        return f"TaskList({len(self)} tasks)"


def task_ids(tasks: Sequence[Task]) -> list[str]:
    """The pair ids of ``tasks`` in order, without reading a TaskList's texts."""
    return list(tasks.pair_ids) if isinstance(tasks, TaskList) else [t.pair.id for t in tasks]


def asked_tasks(ledger: Ledger, iteration: int | None = None, *, limit: int | None = None,
                calibration: Calibration | None = None) -> TaskList:
    """The pairs an iteration sent to humans (action ``ask``), highest priority first.

    ``iteration`` defaults to the latest one. Each task carries the decision's reason,
    margin and priority, and the pair's current AI label; with a ``calibration``
    (:func:`~rlthf_plugin.loop.workspace_calibration.current_calibration`) its ``ai_score`` is the
    calibrated probability that the AI label is right, and the model version names the
    calibration. Without one there is no score: an uncalibrated number would mislead.
    """
    if iteration is None:
        iteration = latest_iteration(ledger)
        if iteration is None:
            return TaskList([], lambda ids: [])
    order = iterations_db.asked_order(ledger, iteration, limit=limit)
    version = f"rlthf-iter{iteration}" + (f"-{calibration.tag}" if calibration is not None else "")
    # The AI label shown is the one that iteration audited: its primary judge's, or the fallback
    # judge's where the primary did not vote (the other judges are signals); read once for every
    # task (votes are read whole), a short label per pair.
    ai = audited_labels(ledger, iteration_primary(ledger, iteration), order).labels if order else {}

    def build(ids: Sequence[str]) -> list[Task]:
        rows = iterations_db.asked_decisions(ledger, iteration, ids)
        pairs = {p.id: p for p in ledger.get_pairs(ids)}
        return [
            Task(pairs[pid], priority=float(rows[pid]["priority"] or 0.0), reason=dict(rows[pid]["reason"] or {}),
                 iteration=iteration, ai_label=ai.get(pid),
                 ai_score=ai_label_probability(calibration, ai.get(pid), rows[pid]["margin"]),
                 margin=rows[pid]["margin"], model_version=version)
            for pid in ids
        ]

    return TaskList(order, build)


def calibrated_asked_tasks(ledger: Ledger, config: Config, iteration: int | None = None, *,
                           limit: int | None = None) -> TaskList:
    """:func:`asked_tasks` scored by the workspace's current calibration (none before the
    humans have labeled enough): what every push of an iteration's batch sends."""
    return asked_tasks(ledger, iteration, limit=limit, calibration=current_calibration(ledger, config))


def all_tasks(ledger: Ledger, *, limit: int | None = None) -> TaskList:
    """Every pair as a task (label everything), in id order, priority 0."""
    ai = audited_labels(ledger, iteration_primary(ledger)).labels
    ids = ledger.pair_ids()
    if limit:
        ids = ids[:limit]

    def build(page: Sequence[str]) -> list[Task]:
        return [Task(p, priority=0.0, reason={"region": "all"}, ai_label=ai.get(p.id))
                for p in ledger.get_pairs(page)]

    return TaskList(ids, build)


__all__ = ["PAGE", "TaskList", "all_tasks", "asked_tasks", "calibrated_asked_tasks", "latest_iteration", "task_ids"]
