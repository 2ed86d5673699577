"""Small key-value state of the sync (``sync_state``): pull cursors, and the ids of webhook
deliveries already seen (replay protection)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema as S
from ._sql import dialect_insert, insert_ignore, now

if TYPE_CHECKING:
    from .ledger import Ledger


def get_state(ledger: Ledger, key: str, default: Any = None) -> Any:
    """The value stored under ``key`` (``default`` when none)."""
    with ledger.engine.connect() as conn:
        value = conn.execute(sa.select(S.sync_state.c.value).where(S.sync_state.c.key == key)).scalar()
    return default if value is None else value


def set_state(ledger: Ledger, key: str, value: Any) -> None:
    """Store ``value`` (JSON) under ``key``, replacing what was there."""
    with ledger.engine.begin() as conn:
        insert_ignore(conn, S.sync_state, [{"key": key, "value": value, "updated_at": now()}],
                      update=("value", "updated_at"))


#: Key prefix of webhook deliveries stored with their labels (replay protection).
DELIVERY_PREFIX = "webhook-seen:"
#: How long a delivery id is remembered (a signed delivery that old fails its timestamp check).
DELIVERY_MEMORY = dt.timedelta(days=1)


class ReplayedDelivery(Exception):
    """A webhook delivery id that was stored before."""


def remember_delivery(conn: Connection, delivery: str) -> None:
    """Record a webhook delivery id inside the caller's transaction (the one storing its
    labels); raise :class:`ReplayedDelivery` when it is there already."""
    stamp = now()
    stmt = dialect_insert(conn)(S.sync_state).on_conflict_do_nothing(index_elements=["key"])
    if conn.execute(stmt, [{"key": DELIVERY_PREFIX + delivery, "value": stamp.isoformat(),
                            "updated_at": stamp}]).rowcount != 1:
        raise ReplayedDelivery(delivery)
    t = S.sync_state
    conn.execute(t.delete().where(t.c.key.startswith(DELIVERY_PREFIX), t.c.updated_at < stamp - DELIVERY_MEMORY))


def delivery_seen(ledger: Ledger, delivery: str) -> bool:
    """True when a webhook delivery with this id was stored."""
    return get_state(ledger, DELIVERY_PREFIX + delivery) is not None


__all__ = ["DELIVERY_PREFIX", "ReplayedDelivery", "delivery_seen", "get_state", "remember_delivery", "set_state"]
