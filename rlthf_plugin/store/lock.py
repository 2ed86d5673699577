"""Leases in the ledger: one holder at a time for a named job (e.g. running an iteration).

Works the same on SQLite and PostgreSQL, so two service processes on one shared ledger
never run the same iteration twice. A lease has a time to live: a holder that dies
without releasing it loses it when it expires; a live holder renews it.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import LeaseLostError
from . import ledger as L


def holder_id() -> str:
    """A name for this process that is unique across machines."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(ledger: L.Ledger, name: str, holder: str, *, ttl: float = 600.0) -> bool:
    """Take (or renew) the lease ``name`` for ``holder``; False when someone else holds it."""
    now = L.now()
    expires = now + dt.timedelta(seconds=ttl)
    try:
        with ledger.engine.begin() as conn:
            conn.execute(L.locks.insert().values(name=name, holder=holder, acquired_at=now, expires_at=expires))
        return True
    except IntegrityError:
        pass  # held already: take it over only if it is ours or expired
    with ledger.engine.begin() as conn:
        result = conn.execute(
            L.locks.update()
            .where(L.locks.c.name == name, sa.or_(L.locks.c.holder == holder, L.locks.c.expires_at < now))
            .values(holder=holder, acquired_at=now, expires_at=expires))
        return result.rowcount == 1


def renew(ledger: L.Ledger, name: str, holder: str, *, ttl: float = 600.0) -> bool:
    """Extend ``holder``'s unexpired lease ``name``; False when it is not theirs any more
    (expired, or taken over): the holder must stop, it cannot take it back silently."""
    now = L.now()
    with ledger.engine.begin() as conn:
        result = conn.execute(L.locks.update().where(L.locks.c.name == name, L.locks.c.holder == holder,
                                                     L.locks.c.expires_at >= now)
                              .values(expires_at=now + dt.timedelta(seconds=ttl)))
        return result.rowcount == 1


def take_over(ledger: L.Ledger, name: str, old_holder: str, holder: str, *, ttl: float = 600.0) -> bool:
    """Give ``name`` to ``holder`` if ``old_holder`` still has it (a holder known to be dead)."""
    now = L.now()
    with ledger.engine.begin() as conn:
        result = conn.execute(L.locks.update().where(L.locks.c.name == name, L.locks.c.holder == old_holder)
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
    now = L.now()
    result = conn.execute(L.locks.update().where(L.locks.c.name == name, L.locks.c.holder == holder,
                                                 L.locks.c.expires_at >= now).values(holder=holder))
    if result.rowcount != 1:
        current = conn.execute(sa.select(L.locks.c.holder).where(L.locks.c.name == name,
                                                                 L.locks.c.expires_at >= now)).scalar()
        raise LeaseLostError(name, f"now held by {current}" if current else "it expired")


def release(ledger: L.Ledger, name: str, holder: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(L.locks.delete().where(L.locks.c.name == name, L.locks.c.holder == holder))


def holder_of(ledger: L.Ledger, name: str) -> str | None:
    """The current, unexpired holder of ``name``."""
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(L.locks.c.holder).where(
            L.locks.c.name == name, L.locks.c.expires_at >= L.now())).scalar()


@contextmanager
def lease(ledger: L.Ledger, name: str, *, holder: str | None = None, ttl: float = 600.0) -> Iterator[bool]:
    """``with lease(ledger, "iteration") as got:`` runs the body with ``got`` True only
    for the one process that holds the lease; it is released afterwards."""
    holder = holder or holder_id()
    got = acquire(ledger, name, holder, ttl=ttl)
    try:
        yield got
    finally:
        if got:
            release(ledger, name, holder)
