"""Pushes: which pair went to which platform target, under which task or record id."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from . import schema as S
from ._sql import insert_ignore, now

if TYPE_CHECKING:
    from .ledger import Ledger


def record_pushes(ledger: Ledger, platform: str, target: str, mapping: dict[str, str],
                  iteration: int | None = None) -> None:
    """Remember pair id -> platform task/record id for a push target."""
    stamp = now()
    rows = [{"platform": platform, "target": target, "pair_id": pid, "external_id": str(ext),
             "iteration": iteration, "pushed_at": stamp} for pid, ext in mapping.items()]
    with ledger.engine.begin() as conn:
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


__all__ = ["pushed", "pushed_any", "pushes_per_platform", "pushes_per_target", "record_pushes"]
