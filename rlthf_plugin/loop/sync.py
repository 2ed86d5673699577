"""Moving tasks out and labels in: the imperative shell around a :class:`LabelingBackend`.

:func:`store_labels` is the one way a human label enters the ledger, whether it came
from a pull or from a webhook, so a lost webhook is repaired by the next pull and a
label delivered twice is stored once.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from ..backends.base import HumanLabel, LabelingBackend, PushReport, Task
from ..errors import DuplicateTargetError
from ..store.ledger import Fence, Ledger
from .owner import IterationOwner, owned
from .tasks import task_ids

log = logging.getLogger(__name__)


def store_labels(ledger: Ledger, labels: Sequence[HumanLabel], *, iteration: int | None = None,
                 delivery: str | None = None, fence: Fence | None = None) -> int:
    """Store labels keyed by (platform, external id); returns how many were new.

    Labels for pairs the ledger does not know are ignored (a task created by hand on the
    platform); an edited annotation updates its row and a deleted one is marked deleted,
    each only when it is at least as new as what is stored (labels only move forward); a
    deletion with an empty pair id marks the stored label with that external id.
    ``delivery`` is the webhook delivery id, remembered in the same transaction as the
    labels (:class:`~rlthf_plugin.store.ledger.ReplayedDelivery` when seen before);
    ``fence`` is the iteration owner's check (:mod:`rlthf_plugin.loop.owner`).
    """
    # A deletion naming only the annotation, or without the platform's time (Label Studio):
    # marked by external id, ordered after every stored version of the label.
    gone = [lab for lab in labels if lab.deleted and (not lab.pair_id or lab.labeled_at is None)]
    # Only the pairs this delivery names: a webhook must not read the whole ledger.
    known = ledger.existing_pair_ids(lab.pair_id for lab in labels if lab.pair_id)
    rows = [
        {
            "pair_id": lab.pair_id, "label": lab.label, "annotator": lab.annotator, "platform": lab.platform,
            "external_id": lab.external_id, "comment": lab.comment, "iteration": iteration,
            "deleted": lab.deleted, **({"labeled_at": lab.labeled_at} if lab.labeled_at else {}),
        }
        for lab in labels if lab.pair_id in known and not (lab.deleted and lab.labeled_at is None)
    ]
    for (platform, at), ids in _by_platform_time(gone).items():
        ledger.mark_deleted(platform, ids, at=at, delivery=None if rows else delivery)
        if not rows:
            delivery = None  # remembered once
    if gone and not rows:
        return 0
    return ledger.store_human_labels(rows, delivery=delivery, fence=fence)


def _by_platform_time(labels: Sequence[HumanLabel]) -> dict[tuple[str, Any], list[str]]:
    groups: dict[tuple[str, Any], list[str]] = {}
    for lab in labels:
        groups.setdefault((lab.platform, lab.labeled_at), []).append(lab.external_id)
    return groups


def push(ledger: Ledger, backend: LabelingBackend, tasks: Sequence[Task], *, iteration: int | None = None,
         owner: IterationOwner | None = None, allow_duplicate_targets: bool = False) -> PushReport:
    """Push tasks and record pair id -> task id in the ledger (idempotent).

    ``tasks`` may be a :class:`~rlthf_plugin.loop.tasks.TaskList` (what ``asked_tasks`` and
    ``all_tasks`` give): its ids are checked first, then its pairs are read and sent a
    page at a time, so memory holds ids and one batch of texts, not every pair.

    The push of an iteration's batch (``iteration`` given) runs as the iteration's owner
    (``owner``, or a fresh one for the call) and records the pushes fenced by its lease.
    A pair already on another project or dataset is refused with
    :class:`~rlthf_plugin.errors.DuplicateTargetError` (one annotator could vote on both)
    unless ``allow_duplicate_targets``, which warns.
    """
    if iteration is None and owner is None:
        return _push(ledger, backend, tasks, None, None, allow_duplicate_targets)
    with owned(ledger, owner) as o:
        return _push(ledger, backend, tasks, iteration, o, allow_duplicate_targets)


def _push(ledger: Ledger, backend: LabelingBackend, tasks: Sequence[Task], iteration: int | None,
          owner: IterationOwner | None, allow_duplicate_targets: bool) -> PushReport:
    backend.ensure_project()
    elsewhere = ledger.pushed_elsewhere(backend.platform, backend.target, task_ids(tasks))
    if elsewhere:
        targets = sorted({t for ts in elsewhere.values() for t in ts})
        what = (f"{len(elsewhere)} pair(s) are already on {', '.join(targets[:3])}"
                f"{' ...' if len(targets) > 3 else ''}: an annotator on both would vote twice")
        if not allow_duplicate_targets:
            raise DuplicateTargetError(f"{what}; push them anyway with --allow-duplicate-targets "
                                       "(each annotator's newest vote on a pair counts once)")
        log.warning("%s (each annotator's newest vote on a pair counts once)", what)
    if owner is not None:
        owner.check()
    known = ledger.pushed(backend.platform, backend.target)
    report = backend.push(tasks, known=known)
    ledger.record_pushes(backend.platform, backend.target, report.mapping, iteration,
                         fence=owner.fence if owner is not None else None)
    return report


def pull(ledger: Ledger, backend: LabelingBackend, *, full: bool = False) -> tuple[int, int]:
    """Pull labels since the last pull (all with ``full``); returns (read, new).

    Also repairs lost deletions when the platform lists every label of the target
    (``PullResult.present``): a label the ledger holds for a pair pushed there, missing from
    the listing and confirmed gone by the adapter, is marked deleted.
    """
    key = f"pull:{backend.platform}:{backend.target}"
    cursor = None if full else ledger.get_state(key)
    result = backend.pull(cursor=cursor)
    new = store_labels(ledger, result.labels)
    if result.present is not None and hasattr(backend, "confirm_deleted"):
        pushed = ledger.pushed(backend.platform, backend.target)
        if result.scope is not None:  # an incremental pull: only the tasks it listed
            pushed = {pid: ext for pid, ext in pushed.items() if pid in result.scope}
        stored = ledger.live_label_ids(backend.platform, pushed)
        missing = sorted(ext for ext in stored if ext not in result.present)
        if missing:
            gone = backend.confirm_deleted(missing)
            if gone:
                log.info("%s %s: %d label(s) deleted on the platform; marked deleted", backend.platform,
                         backend.target, ledger.mark_deleted(backend.platform, gone))
    if result.cursor is not None:
        ledger.set_state(key, result.cursor)
    return len(result.labels), new
