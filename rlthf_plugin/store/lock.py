"""Leases in the ledger (the ``locks`` table): one holder at a time for a named job (e.g. running an iteration).

Works the same on SQLite and PostgreSQL, so two service processes on one shared ledger
never run the same iteration twice. A lease has a time to live: a holder that dies
without releasing it loses it when it expires; a live holder renews it.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import schema as S
from ._sql import now as _now

if TYPE_CHECKING:
    from .ledger import Ledger


def holder_id() -> str:
    """A name for this process that is unique across machines."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(ledger: Ledger, name: str, holder: str, *, ttl: float = 600.0) -> bool:
    """Take (or renew) the lease ``name`` for ``holder``; False when someone else holds it."""
    now = _now()
    expires = now + dt.timedelta(seconds=ttl)
    try:
        with ledger.engine.begin() as conn:
            conn.execute(S.locks.insert().values(name=name, holder=holder, acquired_at=now, expires_at=expires))
        return True
    except IntegrityError:
        pass  # held already: take it over only if it is ours or expired
    with ledger.engine.begin() as conn:
        result = conn.execute(
            S.locks.update()
            .where(S.locks.c.name == name, sa.or_(S.locks.c.holder == holder, S.locks.c.expires_at < now))
            .values(holder=holder, acquired_at=now, expires_at=expires))
        return result.rowcount == 1


def release(ledger: Ledger, name: str, holder: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(S.locks.delete().where(S.locks.c.name == name, S.locks.c.holder == holder))


def holder_of(ledger: Ledger, name: str) -> str | None:
    """The current, unexpired holder of ``name``."""
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(S.locks.c.holder).where(
            S.locks.c.name == name, S.locks.c.expires_at >= _now())).scalar()


__all__ = ["acquire", "holder_id", "holder_of", "release"]
