"""Pushes: which pair went to which platform target, under which task or record id."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Iterable

import sqlalchemy as sa

from . import schema as S
from ._sql import Fence, insert_ignore, now, select_in

if TYPE_CHECKING:
    from .ledger import Ledger


def record_pushes(ledger: Ledger, platform: str, target: str, mapping: dict[str, str],
                  iteration: int | None = None, *, fence: Fence | None = None) -> None:
    """Remember pair id -> platform task/record id for a push target (``fence`` first)."""
    stamp = now()
    rows = [{"platform": platform, "target": target, "pair_id": pid, "external_id": str(ext),
             "iteration": iteration, "pushed_at": stamp} for pid, ext in mapping.items()]
    with ledger.engine.begin() as conn:
        if fence is not None:
            fence(conn)
        insert_ignore(conn, S.pushes, rows, update=("external_id",))


def pushed(ledger: Ledger, platform: str, target: str) -> dict[str, str]:
    """pair id -> external id of everything pushed to that target."""
    t = S.pushes
    with ledger.engine.connect() as conn:
        return dict(conn.execute(sa.select(t.c.pair_id, t.c.external_id).where(
            t.c.platform == platform, t.c.target == target)).all())


def pushed_any(ledger: Ledger, platform: str) -> bool:
    """Whether anything was ever pushed to ``platform``."""
    t = S.pushes
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(t.c.pair_id).where(t.c.platform == platform).limit(1)).first() is not None


def pushes_per_platform(ledger: Ledger) -> dict[str, int]:
    """platform -> pairs pushed to it (over all its targets)."""
    t = S.pushes
    with ledger.engine.connect() as conn:
        return dict(conn.execute(sa.select(t.c.platform, sa.func.count()).group_by(t.c.platform)).all())


def pushes_per_target(ledger: Ledger) -> dict[tuple[str, str], int]:
    """(platform, target) -> pairs pushed there."""
    t = S.pushes
    with ledger.engine.connect() as conn:
        return {(p, tg): n for p, tg, n in conn.execute(
            sa.select(t.c.platform, t.c.target, sa.func.count()).group_by(t.c.platform, t.c.target)).all()}


def pushed_elsewhere(ledger: Ledger, platform: str, target: str, pair_ids: Iterable[str]) -> dict[str, list[str]]:
    """pair id -> the other push targets ("platform target") holding it, for ``pair_ids``."""
    t = S.pushes
    out: dict[str, list[str]] = defaultdict(list)
    elsewhere = sa.not_(sa.and_(t.c.platform == platform, t.c.target == target))
    with ledger.engine.connect() as conn:
        rows = select_in(conn, lambda c: sa.select(t.c.pair_id, t.c.platform, t.c.target)
                         .where(t.c.pair_id.in_(c), elsewhere), dict.fromkeys(pair_ids))
        for pid, other_platform, other_target in rows:
            out[pid].append(f"{other_platform} {other_target}")
    return dict(out)


def pairs_on_several_targets(ledger: Ledger) -> dict[str, list[str]]:
    """pair id -> its push targets ("platform target"), for pairs pushed to more than one:
    an annotator on two of them would vote twice (one vote per annotator counts)."""
    t = S.pushes
    several = sa.select(t.c.pair_id).group_by(t.c.pair_id).having(sa.func.count() > 1)
    out: dict[str, list[str]] = defaultdict(list)
    with ledger.engine.connect() as conn:
        q = sa.select(t.c.pair_id, t.c.platform, t.c.target).where(t.c.pair_id.in_(several)).order_by(
            t.c.pair_id, t.c.pushed_at)
        for pid, platform, target in conn.execute(q):
            out[pid].append(f"{platform} {target}")
    return dict(out)


__all__ = ["pairs_on_several_targets", "pushed", "pushed_any", "pushed_elsewhere", "pushes_per_platform",
           "pushes_per_target", "record_pushes"]
