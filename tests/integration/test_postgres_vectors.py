"""The vector store with a PostgreSQL ledger (issue 22): the ledger holds the ids, the
workspace's files the vectors; vectors cached in the PostgreSQL ``embeddings`` table move
into the files on first use; select (both strategies, two iterations with the simulated
annotator) gives the decisions of the frozen SQLite reference, and its stats are valid JSON
on PostgreSQL (no NaN)."""

from __future__ import annotations

import gzip
import json
import math
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from rlthf_plugin.store import embeddings as embeddings_db
from rlthf_plugin.store import iterations as iterations_db
from rlthf_plugin.store.vector_files import folder_name
from rlthf_plugin.workspace import Workspace
from tests.unit.select_scenario import EMBEDDER, STRATEGIES, run

pytestmark = pytest.mark.integration

REFERENCE = Path(__file__).parents[1] / "unit" / "data" / "select_reference.json.gz"


def _finite(x) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    return True


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_postgres_ledger_with_vector_files_decides_as_the_reference(postgres, tmp_path, strategy):
    url = postgres.create_db(f"vectors_{uuid.uuid4().hex[:8]}")
    got = run(tmp_path / "ws", strategy, ledger_url=url)
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as f:
        want = json.load(f)[strategy]
    assert [(r["iteration"], r["pair_id"], r["action"], r["region"], r["rank"]) for r in got] == \
        [(r["iteration"], r["pair_id"], r["action"], r["region"], r["rank"]) for r in want]
    assert max(abs(g["margin"] - w["margin"]) for g, w in zip(got, want)) < 1e-4
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.ledger.engine.dialect.name == "postgresql"
        assert not embeddings_db.has_vectors(ws.ledger, EMBEDDER)  # moved out of the PostgreSQL table
        manifest = json.loads((ws.root / "vectors" / folder_name(EMBEDDER) / "manifest.json").read_text())
        assert manifest["rows"] > 1000 and manifest["migrated_from_ledger"] is True
        with ws.ledger.engine.connect() as conn:
            stats = [r[0] for r in conn.execute(sa.text("SELECT stats::text FROM iterations ORDER BY id"))]
        assert len(stats) == 2 and all("NaN" not in s for s in stats)
        assert all(_finite(json.loads(s)) for s in stats)


def test_postgres_ledger_runs_the_flip_audit_as_sqlite_does(postgres, tmp_path):
    """With the flip audit on (the default level), the next select finds the audit region's rows
    by their reason's text in SQL (``store.iterations.audit_stream``): PostgreSQL's JSON column
    decides exactly as SQLite's text, and iteration 1 certifies iteration 0's region."""
    url = postgres.create_db(f"audit_{uuid.uuid4().hex[:8]}")
    on_postgres = run(tmp_path / "pg", "signals", ledger_url=url, flip_audit=0.8)
    on_sqlite = run(tmp_path / "lite", "signals", flip_audit=0.8)
    key = ("iteration", "pair_id", "action", "region", "rank", "audit")
    assert [tuple(r[k] for k in key) for r in on_postgres] == [tuple(r[k] for k in key) for r in on_sqlite]
    region = sum(r["audit"] == 0 for r in on_postgres)
    assert region > 0
    with Workspace.open(tmp_path / "pg") as ws:
        stats = [r["stats"] for r in iterations_db.iteration_rows(ws.ledger)]
    flips = stats[1]["certified"]["flips"]
    assert flips["audit_iteration"] == 0 and flips["region"] == region and flips["labels"] > 0
