"""Human labels (``human_labels``): one row per annotator's answer, keyed by (platform,
external id) so a label delivered twice (webhook and pull) is stored once."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

import sqlalchemy as sa

from ..pairs import Majority, majority
from . import schema as S
from ._sql import IN_CHUNK, insert_ignore, insert_new, iter_chunks, now, select_in

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


def store_human_labels(ledger: Ledger, rows: Sequence[dict]) -> int:
    """Upsert human labels keyed by (platform, external_id); returns how many were new.

    Each row: pair_id, label, annotator, platform, external_id, and optionally comment,
    iteration, deleted, labeled_at. An existing key is updated (an edited annotation),
    never duplicated.
    """
    if not rows:
        return 0
    stamp = now()
    full = [{"comment": None, "iteration": None, "deleted": False, "labeled_at": stamp, **r, "stored_at": stamp}
            for r in rows]
    with ledger.engine.begin() as conn:
        new = insert_new(conn, S.human_labels, full)
        insert_ignore(conn, S.human_labels, full,
                      update=("label", "annotator", "comment", "deleted", "labeled_at", "stored_at"))
    return new


def mark_deleted(ledger: Ledger, platform: str, external_ids: Sequence[str]) -> None:
    """Mark the labels with these external ids on ``platform`` deleted."""
    t = S.human_labels
    with ledger.engine.begin() as conn:
        for chunk in iter_chunks(list(external_ids), IN_CHUNK):
            conn.execute(t.update().where(t.c.platform == platform, t.c.external_id.in_(list(chunk)))
                         .values(deleted=True, stored_at=now()))


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


def claim_batch(ledger: Ledger, iteration: int, platforms: Sequence[str], pair_ids: Sequence[str]) -> dict[str, list[str]]:
    """Tie the labels of ``pair_ids`` from ``platforms`` that have no iteration yet to
    ``iteration``; returns pair id -> its labels (not deleted) from those platforms."""
    t = S.human_labels
    votes: dict[str, list[str]] = defaultdict(list)
    with ledger.engine.begin() as conn:
        for chunk in iter_chunks(list(pair_ids), IN_CHUNK):
            where = (t.c.platform.in_(list(platforms)), t.c.pair_id.in_(list(chunk)), t.c.deleted.is_(False))
            conn.execute(t.update().where(*where, t.c.iteration.is_(None)).values(iteration=iteration))
            for pid, label in conn.execute(sa.select(t.c.pair_id, t.c.label).where(*where)):
                votes[pid].append(label)
    return dict(votes)


__all__ = ["LabelRow", "claim_batch", "count_labels", "human_majority", "human_votes", "label_counts", "label_rows",
           "labels_per_platform", "mark_deleted", "store_human_labels"]
