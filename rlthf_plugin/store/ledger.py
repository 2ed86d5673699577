"""The ledger: every pair, label, iteration, decision and push of a workspace.

SQLAlchemy Core over SQLite by default; any SQLAlchemy URL (e.g.
``postgresql+psycopg://...``) works. Writes are idempotent upserts keyed by stable ids,
so a retried import, pull or webhook never duplicates a row.

The schema is :mod:`.schema` (re-exported here: ``ledger.pairs``, ``ledger.human_labels``...);
the queries live in one module per concept (:mod:`.pairs`, :mod:`.votes`, :mod:`.labels`,
:mod:`.iterations`, :mod:`.pushes`, :mod:`.sync_state`, :mod:`.embeddings`, :mod:`.lock`),
each public function one transaction. :class:`Ledger` is the handle they take; its
methods are the public shortcuts to the most used ones. Opening a ledger applies the
missing schema migrations in one transaction; a ledger newer than this code is refused.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Iterable, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import WorkspaceError
from ..pairs import Majority, PreferencePair
from . import embeddings as _embeddings
from . import labels as _labels
from . import pairs as _pairs
from . import pushes as _pushes
from . import sync_state as _sync_state
from . import votes as _votes
from ._sql import Fence, LedgerError, insert_ignore, now, utc_naive
from .sync_state import DELIVERY_PREFIX, ReplayedDelivery
from .vector_files import VectorFiles
from .schema import (MIGRATIONS, SCHEMA_VERSION, ai_labels, decisions, embeddings, human_labels, iterations, locks,
                     metadata, pair_sources, pairs, pushes, responses, schema_version, sync_state)


class Ledger:
    """The workspace's database. Open with :meth:`open`; every method is one transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine
        #: The workspace's vector files (:meth:`attach_vectors`); None: the ``embeddings`` table.
        self.vectors: VectorFiles | None = None

    def attach_vectors(self, root: str | os.PathLike) -> VectorFiles:
        """Keep vectors in files under ``root`` (:mod:`.vector_files`) instead of the
        ``embeddings`` table; vectors already in the table move there on first use."""
        self.vectors = VectorFiles(root, self)
        return self.vectors

    @property
    def vector_store(self) -> "VectorFiles | Ledger":
        """Where vectors are kept: the attached files, else this ledger's table."""
        return self.vectors if self.vectors is not None else self

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> "Ledger":
        """Connect, and apply pending migrations; ``create`` allows an empty database."""
        engine = sa.create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # WAL: readers never block the writer
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        ledger = cls(engine)
        ledger.migrate(create=create)
        return ledger

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> tuple[bool, str]:
        """(True, "ok") when the database answers, else (False, why)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as e:
            return False, f"{type(e).__name__}: {e}"
        return True, "ok"

    # -- schema -------------------------------------------------------------------------
    def version(self, conn: Connection) -> int:
        if not sa.inspect(conn).has_table("schema_version"):
            return 0
        return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0

    def migrate(self, *, create: bool = False) -> int:
        with self.engine.begin() as conn:
            current = self.version(conn)
            if current == 0 and not create:
                raise WorkspaceError(f"no ledger at {self.engine.url!r}: run 'rlthf init' first")
            if current > SCHEMA_VERSION:
                raise WorkspaceError(
                    f"the ledger has schema version {current}, newer than this rlthf_plugin "
                    f"({SCHEMA_VERSION}): upgrade the package"
                )
            while current < SCHEMA_VERSION:
                MIGRATIONS[current](conn)
                current += 1
                conn.execute(schema_version.insert().values(version=current, applied_at=now()))
            return current

    def count(self, table: sa.Table, *where: Any) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()

    # -- shortcuts to the query modules ---------------------------------------------------
    def get_pairs(self, ids: Iterable[str] | None = None) -> list[PreferencePair]:
        """Pairs by id (in the given order), or every pair ordered by id."""
        return _pairs.get_pairs(self, ids)

    def existing_pair_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are pairs in the ledger."""
        return _pairs.existing_pair_ids(self, ids)

    def pair_ids(self) -> list[str]:
        return _pairs.pair_ids(self)

    def ai_votes(self) -> dict[str, list[str]]:
        """pair id -> every AI vote (imported votes and judge verdicts)."""
        return _votes.ai_votes(self)

    def human_votes(self) -> dict[str, list[tuple[str, str]]]:
        """pair id -> [(annotator, label), ...] of the labels not deleted."""
        return _labels.human_votes(self)

    def ai_majority(self) -> dict[str, Majority]:
        return _votes.ai_majority(self)

    def human_majority(self) -> dict[str, Majority]:
        return _labels.human_majority(self)

    def store_human_labels(self, rows: Sequence[dict], *, delivery: str | None = None,
                           fence: Fence | None = None) -> int:
        """Store human labels keyed by (platform, external_id), only forward; returns how many
        were new (:func:`.labels.store_human_labels`)."""
        return _labels.store_human_labels(self, rows, delivery=delivery, fence=fence)

    def mark_deleted(self, platform: str, external_ids: Sequence[str], *, at: dt.datetime | None = None,
                     delivery: str | None = None) -> int:
        """Mark labels deleted by platform id unless a newer version is stored (:func:`.labels.mark_deleted`)."""
        return _labels.mark_deleted(self, platform, external_ids, at=at, delivery=delivery)

    def delivery_seen(self, delivery: str) -> bool:
        """True when a webhook delivery with this id was stored."""
        return _sync_state.delivery_seen(self, delivery)

    def live_label_ids(self, platform: str, pair_ids: Iterable[str]) -> dict[str, str]:
        """external id -> pair id of the labels of ``platform`` on ``pair_ids`` not deleted."""
        return _labels.live_label_ids(self, platform, pair_ids)

    def record_pushes(self, platform: str, target: str, mapping: dict[str, str], iteration: int | None = None,
                      *, fence: Fence | None = None) -> None:
        """Remember pair id -> platform task/record id for a push target (``fence``: the
        iteration owner's check, inside the transaction)."""
        _pushes.record_pushes(self, platform, target, mapping, iteration, fence=fence)

    def pushed_elsewhere(self, platform: str, target: str, pair_ids: Iterable[str]) -> dict[str, list[str]]:
        """pair id -> the other push targets holding it (:func:`.pushes.pushed_elsewhere`)."""
        return _pushes.pushed_elsewhere(self, platform, target, pair_ids)

    def pushed(self, platform: str, target: str) -> dict[str, str]:
        """pair id -> external id of everything pushed to that target."""
        return _pushes.pushed(self, platform, target)

    def get_state(self, key: str, default: Any = None) -> Any:
        return _sync_state.get_state(self, key, default)

    def set_state(self, key: str, value: Any) -> None:
        _sync_state.set_state(self, key, value)

    # The embedding cache protocol of :class:`~rlthf_plugin.models.vectors.EmbeddingCache`.
    # Through the attached vector files when there are (:attr:`vectors`).
    def load_vectors(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        if self.vectors is not None:
            return self.vectors.load_vectors(model, hashes)
        return _embeddings.load_vectors(self, model, hashes)

    def save_vectors(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        if self.vectors is not None:
            self.vectors.save_vectors(model, hashes, vectors)
        else:
            _embeddings.save_vectors(self, model, hashes, vectors)

    def status(self) -> dict[str, Any]:
        """Counts for ``rlthf status``."""
        from .status import status

        return status(self)


__all__ = ["DELIVERY_PREFIX", "Fence", "Ledger", "LedgerError", "MIGRATIONS", "ReplayedDelivery", "SCHEMA_VERSION",
           "ai_labels", "decisions", "embeddings", "human_labels", "insert_ignore", "iterations", "locks",
           "metadata", "now", "pair_sources", "pairs", "pushes", "responses", "schema_version", "sync_state",
           "utc_naive"]
