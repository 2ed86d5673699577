"""Pairs, their source rows and the responses of each prompt: reads, the import, candidates."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import sqlalchemy as sa

from ..pairs import PreferencePair
from . import schema as S
from ._sql import insert_ignore, insert_ignore_bulk, select_in

if TYPE_CHECKING:
    from .ledger import Ledger


def _pair(r: Any) -> PreferencePair:
    meta = r["metadata"]
    if isinstance(meta, str):  # pragma: no cover - drivers without JSON support
        meta = json.loads(meta)
    return PreferencePair(r["id"], r["prompt"], r["response_a"], r["response_b"], r["source"], meta or {})


def get_pairs(ledger: Ledger, ids: Iterable[str] | None = None) -> list[PreferencePair]:
    """Pairs by id (in the given order, unknown ids left out), or every pair ordered by id."""
    t = S.pairs
    with ledger.engine.connect() as conn:
        if ids is None:
            return [_pair(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]
        ids = list(ids)
        found = {r.id: _pair(r._mapping) for r in select_in(conn, lambda c: sa.select(t).where(t.c.id.in_(c)), ids)}
    return [found[i] for i in ids if i in found]


def iter_pairs(ledger: Ledger, *, page: int = 5000) -> Iterator[PreferencePair]:
    """Every pair in id order, read ``page`` at a time (keyset paging): memory is one page."""
    for rows in iter_pair_pages(ledger, page=page):
        yield from rows


def iter_pair_pages(ledger: Ledger, *, page: int = 5000) -> Iterator[list[PreferencePair]]:
    """Every pair in id order, as lists of at most ``page`` pairs (keyset paging)."""
    t = S.pairs
    after = None
    with ledger.engine.connect() as conn:
        while True:
            q = sa.select(t).order_by(t.c.id).limit(page)
            if after is not None:
                q = q.where(t.c.id > after)
            rows = [_pair(r) for r in conn.execute(q).mappings()]
            if rows:
                yield rows
            if len(rows) < page:
                return
            after = rows[-1].id


def existing_pair_ids(ledger: Ledger, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that are pairs in the ledger (one indexed query per chunk of ids)."""
    t = S.pairs
    with ledger.engine.connect() as conn:
        return set(r[0] for r in select_in(conn, lambda c: sa.select(t.c.id).where(t.c.id.in_(c)),
                                           dict.fromkeys(ids)))


def pair_ids(ledger: Ledger) -> list[str]:
    """Every pair id, sorted."""
    with ledger.engine.connect() as conn:
        return list(conn.execute(sa.select(S.pairs.c.id).order_by(S.pairs.c.id)).scalars())


def response_groups(ledger: Ledger, *, min_responses: int = 2) -> list[dict]:
    """The responses (id, prompt_id, prompt, text, model) of every prompt with at least
    ``min_responses``, by prompt id then id."""
    r = S.responses
    with ledger.engine.connect() as conn:
        multi = (sa.select(r.c.prompt_id).group_by(r.c.prompt_id)
                 .having(sa.func.count() >= min_responses).subquery())
        q = (sa.select(r.c.id, r.c.prompt_id, r.c.prompt, r.c.text, r.c.model)
             .where(r.c.prompt_id.in_(sa.select(multi.c.prompt_id)))
             .order_by(r.c.prompt_id, r.c.id))
        return [dict(row) for row in conn.execute(q).mappings()]


def add_pairs(ledger: Ledger, rows: Sequence[dict], *, dry_run: bool = False) -> set[str]:
    """Insert the pair rows whose id is new (none with ``dry_run``); returns the ids that existed."""
    t = S.pairs
    with ledger.engine.begin() as conn:
        known = {r[0] for r in select_in(conn, lambda c: sa.select(t.c.id).where(t.c.id.in_(c)),
                                         [p["id"] for p in rows])}
        if not dry_run:
            insert_ignore(conn, t, [p for p in rows if p["id"] not in known])
    return known


def source_keys(ledger: Ledger) -> set[str]:
    """Every source-row key already imported."""
    with ledger.engine.connect() as conn:
        return set(conn.execute(sa.select(S.pair_sources.c.source_key)).scalars())


@dataclass
class ImportState:
    """What an import needs to know of the ledger before it writes."""

    #: pair id -> its stored response_a (the stored order decides how labels map).
    known: dict[str, str] = field(default_factory=dict)
    #: source key -> pair id, and whether that source row had the responses swapped.
    source_pairs: dict[str, str] = field(default_factory=dict)
    source_swapped: dict[str, bool] = field(default_factory=dict)


#: Tables an import writes, in the order of their foreign keys.
IMPORT_TABLES = {"pairs": S.pairs, "pair_sources": S.pair_sources, "responses": S.responses,
                 "ai_labels": S.ai_labels, "human_labels": S.human_labels}


class ImportWriter:
    """One import's open transaction: what the ledger (including this import so far) knows
    about some keys, and the inserts of one chunk of rows.

    The importer streams its input through here chunk by chunk, so memory holds one chunk,
    not the file; the transaction makes it all or nothing (an exception rolls back all).
    """

    #: Tables counted in :meth:`added`.
    COUNTED = ("pairs", "responses", "ai_labels", "human_labels")

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self._before = {name: self._count(name) for name in self.COUNTED}

    def _count(self, name: str) -> int:
        return self.conn.execute(sa.select(sa.func.count()).select_from(IMPORT_TABLES[name])).scalar_one()

    def state(self, pair_ids: Iterable[str], source_keys: Iterable[str]) -> ImportState:
        """The :class:`ImportState` restricted to ``pair_ids`` and ``source_keys``."""
        p, ps = S.pairs, S.pair_sources
        known = dict(select_in(self.conn, lambda c: sa.select(p.c.id, p.c.response_a).where(p.c.id.in_(c)),
                               dict.fromkeys(pair_ids)))
        sources = list(select_in(self.conn, lambda c: sa.select(ps.c.source_key, ps.c.pair_id, ps.c.swapped)
                                 .where(ps.c.source_key.in_(c)), dict.fromkeys(source_keys)))
        return ImportState(known=known, source_pairs={k: pid for k, pid, _ in sources},
                           source_swapped={k: bool(sw) for k, _, sw in sources})

    def write(self, rows: dict[str, list[dict]]) -> None:
        """Insert the new rows of one chunk, per table name (:data:`IMPORT_TABLES`)."""
        for name, table in IMPORT_TABLES.items():
            insert_ignore_bulk(self.conn, table, rows.get(name, []))

    def added(self) -> dict[str, int]:
        """Table name -> rows added so far (pairs, responses, ai_labels, human_labels)."""
        return {name: self._count(name) - self._before[name] for name in self.COUNTED}


#: SQLite page cache of an import's connection, in KiB (SQLite's default is 2 MiB). The ids
#: are hashes, so each chunk inserts into every index at random places; once the indexes
#: outgrow the cache, pages are spilled and read again and the import grows superlinearly.
#: 1M synthetic pairs (indexes ~0.5 GB): the inserts alone took 352 s with the default
#: cache and 153 s with 256 MiB; the whole import 206 s CPU / 479 MB peak RSS with 256 MiB
#: and 166 s / 794 MB with 512 MiB. The cache, not the input, bounds the import's memory.
IMPORT_CACHE_KIB = 512 * 1024


@contextmanager
def import_transaction(ledger: Ledger) -> Iterator[ImportWriter]:
    """An :class:`ImportWriter` on one transaction: committed when the block ends, rolled
    back when it raises."""
    with ledger.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            before = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
            conn.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
            conn.commit()
        try:
            with conn.begin():
                yield ImportWriter(conn)
        finally:
            if sqlite and not conn.invalidated:  # the pooled connection gets its usual cache back
                conn.exec_driver_sql(f"PRAGMA cache_size = {before}")
                conn.commit()


__all__ = ["ImportState", "add_pairs", "existing_pair_ids", "get_pairs", "iter_pair_pages", "iter_pairs", "pair_ids", "response_groups",
           "source_keys", "ImportWriter", "import_transaction"]
