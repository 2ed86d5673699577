"""Human labels (``human_labels``): one row per annotator's answer, keyed by (platform,
external id) so a label delivered twice (webhook and pull) is stored once."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..batching import batched
from ..pairs import Majority, majority
from . import schema as S
from ._sql import (IN_CHUNK, INSERT_CHUNK, Fence, conflict_keys, dialect_insert, insert_new, now,
                   select_in, utc_naive)
from .sync_state import remember_delivery

if TYPE_CHECKING:
    from .ledger import Ledger


class LabelRow(NamedTuple):
    """A stored human label that is not deleted."""

    pair_id: str
    annotator: str
    label: str
    platform: str
    iteration: int | None


def label_row_query() -> sa.Select:
    """The query of :func:`label_rows` (also read inside other snapshots)."""
    t = S.human_labels
    return (sa.select(t.c.pair_id, t.c.annotator, t.c.label, t.c.platform, t.c.iteration)
            .where(t.c.deleted.is_(False)).order_by(t.c.id))


def label_rows(ledger: Ledger) -> list[LabelRow]:
    """Every human label not deleted, in the order stored."""
    with ledger.engine.connect() as conn:
        return [LabelRow(*r) for r in conn.execute(label_row_query())]


def human_votes(ledger: Ledger) -> dict[str, list[tuple[str, str]]]:
    """pair id -> [(annotator, label), ...] of the labels not deleted."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in label_rows(ledger):
        out[r.pair_id].append((r.annotator, r.label))
    return dict(out)


def human_majority(ledger: Ledger) -> dict[str, Majority]:
    """pair id -> the majority of its human labels."""
    return {pid: majority(label for _, label in v) for pid, v in human_votes(ledger).items()}


#: Platforms whose votes are rows of a dataset, not people on a platform (one per source row).
IMPORTED = "import"


def store_human_labels(ledger: Ledger, rows: Sequence[dict], *, delivery: str | None = None,
                       fence: Fence | None = None) -> int:
    """Store human labels keyed by (platform, external_id); returns how many were new.

    Each row: pair_id, label, annotator, platform, external_id, and optionally comment,
    iteration, deleted, labeled_at (the platform's time of this version of the label, any
    zone; default now). Labels only move forward: a stored label or deletion is replaced
    only by a version at least as new, so a late retry, a replayed event or a pull racing a
    webhook never overwrites a newer answer or undoes a deletion.

    One vote per annotator per pair: an annotator's newest live label on a pair (from any
    project or dataset) supersedes their older ones, which are kept, marked deleted.

    ``delivery`` (a webhook delivery id) is remembered in the same transaction
    (:class:`~.sync_state.ReplayedDelivery` when stored before); a failed store leaves it
    unseen, so the sender's retry is stored. ``fence`` runs first inside the transaction.
    """
    stamp = now()
    full = []
    for r in rows:
        row = {"comment": None, "iteration": None, "deleted": False, **r, "stored_at": stamp}
        row["labeled_at"] = utc_naive(r.get("labeled_at") or stamp)
        full.append(row)
    t = S.human_labels
    with ledger.engine.begin() as conn:
        if fence is not None:
            fence(conn)
        if delivery is not None:
            remember_delivery(conn, delivery)
        if not full:
            return 0
        new = insert_new(conn, t, full)
        upsert = dialect_insert(conn)(t)
        upsert = upsert.on_conflict_do_update(
            index_elements=conflict_keys(t),
            set_={c: upsert.excluded[c] for c in ("pair_id", "label", "annotator", "comment", "deleted",
                                                  "labeled_at", "stored_at")},
            where=t.c.labeled_at <= upsert.excluded.labeled_at)
        for chunk in batched(full, INSERT_CHUNK):
            conn.execute(upsert, list(chunk))
        _one_vote_per_annotator(conn, {(r["pair_id"], r["annotator"]) for r in full
                                       if r["platform"] != IMPORTED and r["annotator"]})
    return new


def _one_vote_per_annotator(conn: Connection, keys: set[tuple[str, str]]) -> None:
    """For each (pair, annotator): keep only the newest live platform label, mark older ones deleted."""
    t = S.human_labels
    for pid, who in keys:
        rows = conn.execute(sa.select(t.c.id).where(
            t.c.pair_id == pid, t.c.annotator == who, t.c.platform != IMPORTED, t.c.deleted.is_(False))
            .order_by(t.c.labeled_at.desc(), t.c.id.desc())).scalars().all()
        if len(rows) > 1:
            conn.execute(t.update().where(t.c.id.in_(rows[1:])).values(deleted=True))


def mark_deleted(ledger: Ledger, platform: str, external_ids: Sequence[str], *, at: dt.datetime | None = None,
                 delivery: str | None = None) -> int:
    """Mark the labels with these external ids on ``platform`` deleted as of ``at`` (default
    now), unless a newer version is stored; returns how many changed. ``delivery`` as in
    :func:`store_human_labels`."""
    stamp = now()
    at = utc_naive(at) if at is not None else stamp
    t = S.human_labels
    changed = 0
    with ledger.engine.begin() as conn:
        if delivery is not None:
            remember_delivery(conn, delivery)
        for chunk in batched(external_ids, IN_CHUNK):
            changed += conn.execute(
                t.update().where(t.c.platform == platform, t.c.external_id.in_(list(chunk)), t.c.deleted.is_(False),
                                 t.c.labeled_at <= at)
                .values(deleted=True, labeled_at=at, stored_at=stamp)).rowcount
    return changed


def live_label_ids(ledger: Ledger, platform: str, pair_ids: Iterable[str]) -> dict[str, str]:
    """external id -> pair id of the labels of ``platform`` on ``pair_ids`` not deleted."""
    t = S.human_labels
    with ledger.engine.connect() as conn:
        return dict(tuple(r) for r in select_in(conn, lambda c: sa.select(t.c.external_id, t.c.pair_id).where(
            t.c.platform == platform, t.c.deleted.is_(False), t.c.pair_id.in_(c)), pair_ids))


def label_counts(ledger: Ledger, platform: str, pair_ids: Sequence[str]) -> dict[str, int]:
    """pair id -> labels (not deleted) stored from ``platform``."""
    t = S.human_labels
    with ledger.engine.connect() as conn:
        return dict(tuple(r) for r in select_in(conn, lambda c: (
            sa.select(t.c.pair_id, sa.func.count())
            .where(t.c.platform == platform, t.c.deleted.is_(False), t.c.pair_id.in_(c)).group_by(t.c.pair_id)),
            pair_ids))


def count_labels(ledger: Ledger, *, exclude_platforms: Iterable[str] = ()) -> int:
    """Human labels not deleted, except those from ``exclude_platforms``."""
    t = S.human_labels
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t).where(
            t.c.deleted.is_(False), t.c.platform.notin_(sorted(exclude_platforms)))).scalar_one()


def labels_per_platform(ledger: Ledger) -> dict[str, int]:
    """platform -> human labels not deleted."""
    t = S.human_labels
    with ledger.engine.connect() as conn:
        return dict(conn.execute(sa.select(t.c.platform, sa.func.count()).where(t.c.deleted.is_(False))
                                 .group_by(t.c.platform)).all())


def claim_batch(ledger: Ledger, iteration: int, platforms: Sequence[str], pair_ids: Sequence[str], *,
                fence: Fence | None = None) -> dict[str, list[str]]:
    """Tie the labels of ``pair_ids`` from ``platforms`` that have no iteration yet to
    ``iteration``; returns pair id -> its labels (not deleted) from those platforms."""
    t = S.human_labels
    votes: dict[str, list[str]] = defaultdict(list)
    with ledger.engine.begin() as conn:
        if fence is not None:
            fence(conn)
        for chunk in batched(pair_ids, IN_CHUNK):
            where = (t.c.platform.in_(list(platforms)), t.c.pair_id.in_(list(chunk)), t.c.deleted.is_(False))
            conn.execute(t.update().where(*where, t.c.iteration.is_(None)).values(iteration=iteration))
            for pid, label in conn.execute(sa.select(t.c.pair_id, t.c.label).where(*where)):
                votes[pid].append(label)
    return dict(votes)


__all__ = ["LabelRow", "claim_batch", "count_labels", "human_majority", "human_votes", "label_counts", "label_rows",
           "labels_per_platform", "live_label_ids", "mark_deleted", "store_human_labels"]
