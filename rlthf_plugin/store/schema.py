"""The ledger's schema: every pair, label, iteration, decision and push of a workspace.

Schema versions are explicit: ``schema_version`` holds the applied version and
:data:`MIGRATIONS` lists the steps from each version to the next.
"""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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
    # Deleted on the platform (or withdrawn there): recorded whatever else the row is.
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    # Replaced by the same annotator's newer answer on the pair (one vote per platform
    # identity): kept apart from ``deleted`` so a platform deletion is never skipped and a
    # superseded label comes back if the newer one is deleted (schema v2).
    sa.Column("superseded", sa.Boolean, nullable=False, default=False),
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

SCHEMA_VERSION = 2


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn)  # today's tables: the steps after this one skip what exists


def _v2_superseded(conn: Connection) -> None:
    """v1 -> v2: ``human_labels.superseded``. A v1 ledger marked an annotator's older label
    ``deleted`` when a newer one superseded it, so the two cannot be told apart: such rows
    (deleted, with a newer live label of the same platform identity on the pair) are also
    marked superseded, and stay deleted (a platform deletion is never undone by a migration)."""
    if "superseded" in {c["name"] for c in sa.inspect(conn).get_columns("human_labels")}:
        return
    default = "0" if conn.dialect.name == "sqlite" else "false"
    conn.execute(sa.text(f"ALTER TABLE human_labels ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT {default}"))
    t, newer = human_labels, human_labels.alias("newer")
    has_newer = sa.exists().where(newer.c.pair_id == t.c.pair_id, newer.c.platform == t.c.platform,
                                  newer.c.annotator == t.c.annotator, newer.c.deleted.is_(False),
                                  newer.c.labeled_at >= t.c.labeled_at, newer.c.id != t.c.id)
    conn.execute(t.update().where(t.c.deleted.is_(True), t.c.platform != "import", t.c.annotator != "", has_newer)
                 .values(superseded=True))


#: MIGRATIONS[v] upgrades a ledger at version v to v + 1 (version 0 = empty database).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {0: _create_v1, 1: _v2_superseded}


__all__ = ["metadata", "schema_version", "pairs", "responses", "pair_sources", "ai_labels", "human_labels",
           "iterations", "decisions", "pushes", "sync_state", "locks", "embeddings", "SCHEMA_VERSION", "MIGRATIONS"]
