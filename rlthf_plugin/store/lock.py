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
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import LeaseLostError
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


def renew(ledger: Ledger, name: str, holder: str, *, ttl: float = 600.0) -> bool:
    """Extend ``holder``'s unexpired lease ``name``; False when it is not theirs any more
    (expired, or taken over): the holder must stop, it cannot take it back silently."""
    now = _now()
    with ledger.engine.begin() as conn:
        result = conn.execute(S.locks.update().where(S.locks.c.name == name, S.locks.c.holder == holder,
                                                     S.locks.c.expires_at >= now)
                              .values(expires_at=now + dt.timedelta(seconds=ttl)))
        return result.rowcount == 1


def take_over(ledger: Ledger, name: str, old_holder: str, holder: str, *, ttl: float = 600.0) -> bool:
    """Give ``name`` to ``holder`` if ``old_holder`` still has it (a holder known to be dead)."""
    now = _now()
    with ledger.engine.begin() as conn:
        result = conn.execute(S.locks.update().where(S.locks.c.name == name, S.locks.c.holder == old_holder)
                              .values(holder=holder, acquired_at=now, expires_at=now + dt.timedelta(seconds=ttl)))
        return result.rowcount == 1


def dead_local_holder(holder: str) -> bool:
    """True when ``holder`` (a :func:`holder_id`) names a process of this host that has exited."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def fence(conn: Connection, name: str, holder: str) -> None:
    """Inside a write transaction: raise :class:`LeaseLostError` (rolling the write back)
    unless ``holder`` holds ``name``, unexpired. The update takes the lease row's write
    lock, so no one can take the lease over until the transaction ends."""
    now = _now()
    result = conn.execute(S.locks.update().where(S.locks.c.name == name, S.locks.c.holder == holder,
                                                 S.locks.c.expires_at >= now).values(holder=holder))
    if result.rowcount != 1:
        current = conn.execute(sa.select(S.locks.c.holder).where(S.locks.c.name == name,
                                                                 S.locks.c.expires_at >= now)).scalar()
        raise LeaseLostError(name, f"now held by {current}" if current else "it expired")


def release(ledger: Ledger, name: str, holder: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(S.locks.delete().where(S.locks.c.name == name, S.locks.c.holder == holder))


def holder_of(ledger: Ledger, name: str) -> str | None:
    """The current, unexpired holder of ``name``."""
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(S.locks.c.holder).where(
            S.locks.c.name == name, S.locks.c.expires_at >= _now())).scalar()


__all__ = ["acquire", "dead_local_holder", "fence", "holder_id", "holder_of", "release", "renew", "take_over"]
