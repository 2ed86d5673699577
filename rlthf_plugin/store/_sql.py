"""The few SQL helpers every query module shares: the clock, dialect-aware upserts, and the
one place that splits long IN-lists."""

from __future__ import annotations

import datetime as dt
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..batching import batched
from ..errors import WorkspaceError

#: Ids per IN (...) clause: SQLite's default limit on bound parameters is 999.
IN_CHUNK = 900
#: Rows per executemany batch of an insert.
INSERT_CHUNK = 5000


def now() -> dt.datetime:
    """UTC now, naive (the ledger stores naive UTC timestamps)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def utc_naive(stamp: dt.datetime) -> dt.datetime:
    """``stamp`` as the ledger stores it: UTC, naive (a naive ``stamp`` is taken as UTC)."""
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return stamp


#: What the ledger raises when the database fails (locked, full, gone): callers outside
#: store/ catch it without importing SQLAlchemy.
LedgerError = sa.exc.SQLAlchemyError

#: A check run first inside a write's transaction (the iteration owner's lease fence); it
#: raises to roll the write back.
Fence = Callable[[Connection], None]


def select_in(conn: Connection, query: Callable[[list[Any]], sa.Executable], ids: Iterable[Any]) -> Iterator[Any]:
    """Rows of ``query(chunk)`` for each chunk of at most :data:`IN_CHUNK` ids, in order.

    ``query`` builds the statement for one chunk (a list), e.g.
    ``lambda chunk: sa.select(t).where(t.c.id.in_(chunk))``.
    """
    for chunk in batched(ids, IN_CHUNK):
        # fetchall: one driver call per chunk instead of a fetchone per row (a third of the
        # time of reading 200k cached embeddings).
        yield from conn.execute(query(chunk)).fetchall()


def dialect_insert(conn: Connection) -> Callable[[sa.Table], Any]:
    """The ``insert`` construct with ON CONFLICT support for the connection's database."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    raise WorkspaceError(f"unsupported ledger database '{dialect}' (SQLite or PostgreSQL)")  # pragma: no cover


def conflict_keys(table: sa.Table) -> list[str]:
    """The columns an upsert into ``table`` is keyed by: its unique constraint, else its primary key."""
    uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    if uniques:
        return [c.name for c in uniques[0].columns]
    return [c.name for c in table.primary_key.columns]


def insert_ignore(conn: Connection, table: sa.Table, rows: Sequence[dict], *, update: Sequence[str] = ()) -> None:
    """Insert rows, skipping (or, for the ``update`` columns, updating) existing keys."""
    if not rows:
        return
    stmt = dialect_insert(conn)(table)
    keys = conflict_keys(table)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    for chunk in batched(rows, INSERT_CHUNK):
        conn.execute(stmt, chunk)


def insert_ignore_bulk(conn: Connection, table: sa.Table, rows: Sequence[dict]) -> None:
    """:func:`insert_ignore` for large batches whose rows all give the same columns.

    On a driver with positional parameters (SQLite) the statement is compiled once and the
    rows go to the driver's ``executemany`` as tuples, each value through its column
    type's bind processor (once for a run of the same object, such as one timestamp):
    SQLAlchemy's per-row parameter handling was a fifth of an import's time (py-spy, 300k
    pairs). Other drivers take :func:`insert_ignore`'s path. Columns left out must have no
    Python-side default (none is filled in here).
    """
    if not rows:
        return
    dialect = conn.dialect
    stmt = dialect_insert(conn)(table).on_conflict_do_nothing(index_elements=conflict_keys(table))
    compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
    if compiled.positiontup is None:
        insert_ignore(conn, table, rows)
        return
    if compiled.insert_prefetch:
        raise ValueError(f"{table.name}: rows leave out columns with a default: "
                         f"{', '.join(c.name for c in compiled.insert_prefetch)}")
    names = list(compiled.positiontup)
    get = itemgetter(*names)
    processors = [(i, p) for i, name in enumerate(names)
                  if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    for chunk in batched(rows, INSERT_CHUNK):
        params = [list(get(r)) for r in chunk] if len(names) > 1 else [[r[names[0]]] for r in chunk]
        for i, process in processors:
            last, out = _UNSET, None
            for p in params:
                if p[i] is not last:
                    last, out = p[i], process(p[i])
                p[i] = out
        conn.exec_driver_sql(compiled.string, [tuple(p) for p in params])


_UNSET = object()


def insert_new(conn: Connection, table: sa.Table, rows: Sequence[dict]) -> int:
    """Insert rows whose key is new; returns how many were inserted.

    Counted from what the insert itself returns: counting the table before and after
    overcounts when other writers commit in between.
    """
    if not rows:
        return 0
    key = table.primary_key.columns.values()[0]
    stmt = dialect_insert(conn)(table).on_conflict_do_nothing(index_elements=conflict_keys(table)).returning(key)
    return sum(len(conn.execute(stmt, chunk).all()) for chunk in batched(rows, INSERT_CHUNK))
