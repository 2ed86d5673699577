"""The ledger: every pair, label, iteration, decision and push of a workspace.

SQLAlchemy Core over SQLite by default; any SQLAlchemy URL (e.g.
``postgresql+psycopg://...``) works. Writes are idempotent upserts keyed by stable ids,
so a retried import, pull or webhook never duplicates a row.

Schema versions are explicit: ``schema_version`` holds the applied version and
:data:`MIGRATIONS` lists the steps from each version to the next. Opening a ledger applies
the missing steps in one transaction; a ledger newer than this code is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import WorkspaceError
from ..pairs import Majority, PreferencePair, majority

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

pairs = sa.Table(
    "pairs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("prompt_id", sa.String(32), nullable=False, index=True),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("response_a", sa.Text, nullable=False),
    sa.Column("response_b", sa.Text, nullable=False),
    sa.Column("source", sa.String(200), nullable=False, default=""),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    # How the pair entered: "import" or "candidates" (REAL); candidates carry a similarity.
    sa.Column("origin", sa.String(20), nullable=False, default="import"),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Every response seen for a prompt: the groups REAL picks candidate pairs from.
responses = sa.Table(
    "responses", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("prompt_id", sa.String(32), nullable=False, index=True),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Where a pair came from, one row per source row (external ids such as PandaLM's idx).
pair_sources = sa.Table(
    "pair_sources", metadata,
    sa.Column("source_key", sa.String(300), primary_key=True),
    sa.Column("pair_id", sa.String(32), sa.ForeignKey("pairs.id"), nullable=False, index=True),
    sa.Column("swapped", sa.Boolean, nullable=False, default=False),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
)

ai_labels = sa.Table(
    "ai_labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pair_id", sa.String(32), sa.ForeignKey("pairs.id"), nullable=False, index=True),
    sa.Column("judge", sa.String(200), nullable=False),
    sa.Column("label", sa.String(20), nullable=False),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("prompt_version", sa.String(64), nullable=False, default=""),
    # "ab", "ba" for one order of a judge call, "both" for a combined verdict, "" when imported.
    sa.Column("order", sa.String(8), nullable=False, default=""),
    sa.Column("source_key", sa.String(300), nullable=False, default=""),
    sa.Column("raw", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("pair_id", "judge", "prompt_version", "order", "source_key", name="uq_ai_label"),
)

human_labels = sa.Table(
    "human_labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pair_id", sa.String(32), sa.ForeignKey("pairs.id"), nullable=False, index=True),
    sa.Column("label", sa.String(20), nullable=False),
    sa.Column("annotator", sa.String(200), nullable=False),
    # "import", "oracle", "label-studio", "argilla"...
    sa.Column("platform", sa.String(40), nullable=False),
    # The platform's id of this annotation (or the source row and vote index): the upsert key.
    sa.Column("external_id", sa.String(300), nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("iteration", sa.Integer, nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("labeled_at", sa.DateTime, nullable=False),
    sa.Column("stored_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("platform", "external_id", name="uq_human_label"),
)

iterations = sa.Table(
    "iterations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("params", sa.JSON, nullable=False, default=dict),
    sa.Column("stats", sa.JSON, nullable=False, default=dict),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
)

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("iteration", sa.Integer, sa.ForeignKey("iterations.id"), primary_key=True),
    sa.Column("pair_id", sa.String(32), sa.ForeignKey("pairs.id"), primary_key=True),
    # ask | flip | keep | drop
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("region", sa.String(20), nullable=False, default=""),
    sa.Column("margin", sa.Float, nullable=True),
    sa.Column("rank", sa.Integer, nullable=True),
    sa.Column("priority", sa.Float, nullable=True),
    sa.Column("reason", sa.JSON, nullable=False, default=dict),
)

pushes = sa.Table(
    "pushes", metadata,
    sa.Column("platform", sa.String(40), primary_key=True),
    # Project id / dataset name on that platform (with its URL).
    sa.Column("target", sa.String(300), primary_key=True),
    sa.Column("pair_id", sa.String(32), sa.ForeignKey("pairs.id"), primary_key=True),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("iteration", sa.Integer, nullable=True),
    sa.Column("pushed_at", sa.DateTime, nullable=False),
)

# Incremental sync cursors and other small state (pull cursors, locks).
sync_state = sa.Table(
    "sync_state", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# Leases held by a service process (e.g. "iteration"): one holder at a time, even across
# processes sharing one PostgreSQL ledger; a lease expires if its holder dies.
locks = sa.Table(
    "locks", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
)

embeddings = sa.Table(
    "embeddings", metadata,
    sa.Column("model", sa.String(300), primary_key=True),
    sa.Column("text_hash", sa.String(32), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)

SCHEMA_VERSION = 1


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn)


#: MIGRATIONS[v] upgrades a ledger at version v to v + 1 (version 0 = empty database).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {0: _create_v1}


def now() -> dt.datetime:
    """The current time, UTC, naive: how the ledger stores every timestamp."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def utc_naive(stamp: dt.datetime) -> dt.datetime:
    """``stamp`` as the ledger stores it: UTC, naive (a naive ``stamp`` is taken as UTC)."""
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return stamp


#: sync_state key prefix of webhook deliveries already stored (replay protection).
DELIVERY_PREFIX = "webhook-seen:"
#: Platforms whose votes are rows of a dataset, not people on a platform (one per source row).
IMPORTED = "import"


class ReplayedDelivery(Exception):
    """A webhook delivery id that was stored before."""


def _dialect_insert(conn: Connection) -> Callable[[sa.Table], Any]:
    """The ``insert`` construct with ON CONFLICT support for the connection's database."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover
        raise WorkspaceError(f"unsupported ledger database '{dialect}' (SQLite or PostgreSQL)")
    return insert


def insert_ignore(conn: Connection, table: sa.Table, rows: Sequence[dict], *, update: Sequence[str] = ()) -> None:
    """Insert rows, skipping (or, for the ``update`` columns, updating) existing keys."""
    if not rows:
        return
    stmt = _dialect_insert(conn)(table)
    keys = [c.name for c in table.primary_key.columns]
    uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    if uniques:
        keys = [c.name for c in uniques[0].columns]
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    for start in range(0, len(rows), 5000):
        conn.execute(stmt, list(rows[start:start + 5000]))


class Ledger:
    """The workspace's database. Open with :meth:`open`; every method is one transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> "Ledger":
        """Connect, and apply pending migrations; ``create`` allows an empty database."""
        engine = sa.create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # WAL: readers never block the writer
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

    # -- pairs --------------------------------------------------------------------------
    def count(self, table: sa.Table, *where: Any) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()

    def get_pairs(self, ids: Iterable[str] | None = None) -> list[PreferencePair]:
        """Pairs by id (in the given order), or every pair ordered by id."""
        with self.engine.connect() as conn:
            if ids is None:
                rows = conn.execute(sa.select(pairs).order_by(pairs.c.id)).mappings().all()
                return [_pair(r) for r in rows]
            ids = list(ids)
            found: dict[str, PreferencePair] = {}
            for start in range(0, len(ids), 900):
                chunk = ids[start:start + 900]
                for r in conn.execute(sa.select(pairs).where(pairs.c.id.in_(chunk))).mappings():
                    found[r["id"]] = _pair(r)
            return [found[i] for i in ids if i in found]

    def existing_pair_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are pairs in the ledger (one indexed query per 900 ids)."""
        ids = list(dict.fromkeys(ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 900):
                found.update(conn.execute(sa.select(pairs.c.id).where(pairs.c.id.in_(ids[start:start + 900]))).scalars())
        return found

    def pair_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(pairs.c.id).order_by(pairs.c.id)).scalars())

    # -- labels -------------------------------------------------------------------------
    def ai_votes(self) -> dict[str, list[str]]:
        """pair id -> every AI label stored for it (imported votes and judge verdicts).

        For judge calls only the combined verdict (order "both" or "") counts, not the
        single-order answers it was made from.
        """
        out: dict[str, list[str]] = defaultdict(list)
        with self.engine.connect() as conn:
            q = sa.select(ai_labels.c.pair_id, ai_labels.c.label).where(ai_labels.c.order.in_(["", "both"]))
            for pid, label in conn.execute(q.order_by(ai_labels.c.id)):
                out[pid].append(label)
        return dict(out)

    def human_votes(self) -> dict[str, list[tuple[str, str]]]:
        """pair id -> [(annotator, label), ...] of the labels not deleted."""
        out: dict[str, list[tuple[str, str]]] = defaultdict(list)
        with self.engine.connect() as conn:
            q = sa.select(human_labels.c.pair_id, human_labels.c.annotator, human_labels.c.label)
            for pid, who, label in conn.execute(q.where(human_labels.c.deleted.is_(False)).order_by(human_labels.c.id)):
                out[pid].append((who, label))
        return dict(out)

    def ai_majority(self) -> dict[str, Majority]:
        return {pid: majority(v) for pid, v in self.ai_votes().items()}

    def human_majority(self) -> dict[str, Majority]:
        return {pid: majority(label for _, label in v) for pid, v in self.human_votes().items()}

    def store_human_labels(self, rows: Sequence[dict], *, delivery: str | None = None,
                           fence: Callable[[Connection], None] | None = None) -> int:
        """Store human labels keyed by (platform, external_id); returns how many were new.

        Each row: pair_id, label, annotator, platform, external_id, and optionally
        comment, iteration, deleted, labeled_at (the platform's time of this version of the
        label; default now). Labels only move forward: a stored label or deletion is
        replaced only by a version at least as new, so a late retry, a replayed event or a
        pull racing a webhook never overwrites a newer answer or undoes a deletion.

        One vote per annotator per pair: an annotator's newest live label on a pair (from any
        project or dataset) supersedes their older ones, which are kept, marked deleted.

        ``delivery`` (a webhook delivery id) is remembered in the same transaction:
        :class:`ReplayedDelivery` when it was stored before, and a failed store leaves it
        unseen, so the sender's retry is stored. ``fence`` runs first inside the
        transaction (the iteration lease's check).
        """
        stamp = now()
        full = []
        for r in rows:
            row = {"comment": None, "iteration": None, "deleted": False, **r, "stored_at": stamp}
            row["labeled_at"] = utc_naive(r.get("labeled_at") or stamp)
            full.append(row)
        t = human_labels
        with self.engine.begin() as conn:
            if fence is not None:
                fence(conn)
            if delivery is not None:
                _remember_delivery(conn, delivery, stamp)
            if not full:
                return 0
            # New rows are counted by what the insert itself returns: counting the table
            # before and after overcounts when other writers commit in between.
            new = 0
            insert = _dialect_insert(conn)
            first = insert(t).on_conflict_do_nothing(index_elements=["platform", "external_id"]).returning(t.c.id)
            for chunk in iter_chunks(full, 5000):
                new += len(conn.execute(first, list(chunk)).all())
            upsert = insert(t)
            upsert = upsert.on_conflict_do_update(
                index_elements=["platform", "external_id"],
                set_={c: upsert.excluded[c] for c in ("pair_id", "label", "annotator", "comment", "deleted",
                                                      "labeled_at", "stored_at")},
                where=t.c.labeled_at <= upsert.excluded.labeled_at)
            for chunk in iter_chunks(full, 5000):
                conn.execute(upsert, list(chunk))
            _one_vote_per_annotator(conn, {(r["pair_id"], r["annotator"]) for r in full
                                           if r["platform"] != IMPORTED and r["annotator"]})
        return new

    def mark_deleted(self, platform: str, external_ids: Sequence[str], *, at: dt.datetime | None = None,
                     delivery: str | None = None) -> int:
        """Mark labels deleted by their platform ids (a deletion event naming only ids), unless
        a version newer than ``at`` (default now) is stored; returns how many changed."""
        stamp = now()
        at = utc_naive(at) if at is not None else stamp
        t = human_labels
        changed = 0
        with self.engine.begin() as conn:
            if delivery is not None:
                _remember_delivery(conn, delivery, stamp)
            for chunk in iter_chunks(list(external_ids), 900):
                changed += conn.execute(
                    t.update().where(t.c.platform == platform, t.c.external_id.in_(list(chunk)),
                                     t.c.deleted.is_(False), t.c.labeled_at <= at)
                    .values(deleted=True, labeled_at=at, stored_at=stamp)).rowcount
        return changed

    def delivery_seen(self, delivery: str) -> bool:
        """True when a webhook delivery with this id was stored."""
        return self.get_state(DELIVERY_PREFIX + delivery) is not None

    def live_label_ids(self, platform: str, pair_ids: Iterable[str]) -> dict[str, str]:
        """external id -> pair id of the labels of ``platform`` on ``pair_ids`` not deleted."""
        t = human_labels
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in iter_chunks(list(pair_ids), 900):
                q = sa.select(t.c.external_id, t.c.pair_id).where(
                    t.c.platform == platform, t.c.deleted.is_(False), t.c.pair_id.in_(list(chunk)))
                out.update(dict(conn.execute(q).all()))
        return out

    # -- pushes and sync state ------------------------------------------------------------
    def record_pushes(self, platform: str, target: str, mapping: dict[str, str], iteration: int | None = None,
                      *, fence: Callable[[Connection], None] | None = None) -> None:
        """Remember pair id -> platform task/record id for a push target (``fence``: the
        iteration owner's check, run inside the transaction)."""
        stamp = now()
        rows = [
            {"platform": platform, "target": target, "pair_id": pid, "external_id": str(ext),
             "iteration": iteration, "pushed_at": stamp}
            for pid, ext in mapping.items()
        ]
        with self.engine.begin() as conn:
            if fence is not None:
                fence(conn)
            insert_ignore(conn, pushes, rows, update=("external_id",))

    def pushed(self, platform: str, target: str) -> dict[str, str]:
        """pair id -> external id of everything pushed to that target."""
        with self.engine.connect() as conn:
            q = sa.select(pushes.c.pair_id, pushes.c.external_id).where(
                pushes.c.platform == platform, pushes.c.target == target)
            return dict(conn.execute(q).all())

    def pushed_elsewhere(self, platform: str, target: str, pair_ids: Iterable[str]) -> dict[str, list[str]]:
        """pair id -> the other push targets ("platform target") holding it, for ``pair_ids``."""
        out: dict[str, list[str]] = defaultdict(list)
        with self.engine.connect() as conn:
            for chunk in iter_chunks(list(dict.fromkeys(pair_ids)), 900):
                q = sa.select(pushes.c.pair_id, pushes.c.platform, pushes.c.target).where(
                    pushes.c.pair_id.in_(list(chunk)),
                    sa.not_(sa.and_(pushes.c.platform == platform, pushes.c.target == target)))
                for pid, other_platform, other_target in conn.execute(q):
                    out[pid].append(f"{other_platform} {other_target}")
        return dict(out)

    def pairs_on_several_targets(self) -> dict[str, list[str]]:
        """pair id -> its push targets ("platform target"), for pairs pushed to more than one."""
        with self.engine.connect() as conn:
            several = sa.select(pushes.c.pair_id).group_by(pushes.c.pair_id).having(sa.func.count() > 1)
            q = sa.select(pushes.c.pair_id, pushes.c.platform, pushes.c.target).where(
                pushes.c.pair_id.in_(several)).order_by(pushes.c.pair_id, pushes.c.pushed_at)
            out: dict[str, list[str]] = defaultdict(list)
            for pid, platform, target in conn.execute(q):
                out[pid].append(f"{platform} {target}")
        return dict(out)

    def get_state(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sync_state.c.value).where(sync_state.c.key == key)).scalar()
        return default if value is None else value

    def set_state(self, key: str, value: Any) -> None:
        with self.engine.begin() as conn:
            insert_ignore(conn, sync_state, [{"key": key, "value": value, "updated_at": now()}],
                          update=("value", "updated_at"))

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Counts for ``rlthf status``."""
        ai_votes, human_votes = self.ai_votes(), self.human_votes()
        ai = {pid: majority(v) for pid, v in ai_votes.items()}
        human = {pid: majority(label for _, label in v) for pid, v in human_votes.items()}
        both = [pid for pid in human if pid in ai and human[pid].label in ("A", "B") and ai[pid].label in ("A", "B")]
        disagree = sum(1 for pid in both if human[pid].label != ai[pid].label)
        ai_conflicts = sum(1 for v in ai_votes.values() if len({x for x in v if x in ("A", "B")}) > 1)
        human_conflicts = sum(1 for v in human_votes.values() if len({x for _, x in v if x in ("A", "B")}) > 1)
        with self.engine.connect() as conn:
            per_platform = dict(conn.execute(
                sa.select(pushes.c.platform, sa.func.count()).group_by(pushes.c.platform)).all())
            human_per_platform = dict(conn.execute(
                sa.select(human_labels.c.platform, sa.func.count()).where(human_labels.c.deleted.is_(False))
                .group_by(human_labels.c.platform)).all())
            n_iter = conn.execute(sa.select(sa.func.count()).select_from(iterations)).scalar_one()
            multi = conn.execute(
                sa.select(sa.func.count()).select_from(
                    sa.select(responses.c.prompt_id).group_by(responses.c.prompt_id)
                    .having(sa.func.count() >= 3).subquery())).scalar_one()
        return {
            "pairs": self.count(pairs),
            "responses": self.count(responses),
            "prompts_with_3plus_responses": multi,
            "ai_labeled": len(ai),
            "ai_label_votes": self.count(ai_labels, ai_labels.c.order.in_(["", "both"])),
            "ai_vote_conflicts": ai_conflicts,
            "human_labeled": len(human),
            "human_label_votes": sum(human_per_platform.values()),
            "human_labels_per_platform": human_per_platform,
            "human_vote_conflicts": human_conflicts,
            "both_labeled_with_winner": len(both),
            "ai_human_disagreement": (disagree / len(both)) if both else None,
            "iterations": n_iter,
            "pushes_per_platform": per_platform,
            # One annotator could vote twice on these (push --allow-duplicate-targets put them there).
            "pairs_on_several_targets": self.pairs_on_several_targets(),
        }


def _remember_delivery(conn: Connection, delivery: str, stamp: dt.datetime) -> None:
    """Record a webhook delivery id inside the caller's transaction; raise
    :class:`ReplayedDelivery` when it is there already. Ids older than a day are dropped
    (a signed delivery that old fails its timestamp check anyway)."""
    key = DELIVERY_PREFIX + delivery
    stmt = _dialect_insert(conn)(sync_state).on_conflict_do_nothing(index_elements=["key"])
    if conn.execute(stmt, [{"key": key, "value": stamp.isoformat(), "updated_at": stamp}]).rowcount != 1:
        raise ReplayedDelivery(delivery)
    conn.execute(sync_state.delete().where(sync_state.c.key.startswith(DELIVERY_PREFIX),
                                           sync_state.c.updated_at < stamp - dt.timedelta(days=1)))


def _one_vote_per_annotator(conn: Connection, keys: set[tuple[str, str]]) -> None:
    """For each (pair, annotator): keep only the newest live platform label, mark older ones deleted."""
    t = human_labels
    for pid, who in keys:
        rows = conn.execute(sa.select(t.c.id, t.c.labeled_at).where(
            t.c.pair_id == pid, t.c.annotator == who, t.c.platform != IMPORTED, t.c.deleted.is_(False))
            .order_by(t.c.labeled_at.desc(), t.c.id.desc())).all()
        if len(rows) > 1:
            conn.execute(t.update().where(t.c.id.in_([r.id for r in rows[1:]])).values(deleted=True))


def _pair(r: Any) -> PreferencePair:
    meta = r["metadata"]
    if isinstance(meta, str):  # pragma: no cover - drivers without JSON support
        meta = json.loads(meta)
    return PreferencePair(r["id"], r["prompt"], r["response_a"], r["response_b"], r["source"], meta or {})


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
