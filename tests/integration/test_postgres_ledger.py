"""The ledger on a real PostgreSQL server: same schema, same answers as SQLite."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.cli import main
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.sync import store_labels
from rlthf_plugin.workspace import Workspace

pytestmark = pytest.mark.integration


def test_postgres_ledger_matches_sqlite(postgres, tmp_path, runner):
    url = postgres.create_db(f"ledger_{uuid.uuid4().hex[:8]}")
    result = runner.invoke(main, ["init", str(tmp_path / "pg"), "--ledger-url", url])
    assert result.exit_code == 0, result.output
    pg = Workspace.open(tmp_path / "pg")
    lite = Workspace.init(tmp_path / "lite")
    try:
        for ws in (pg, lite):
            import_files(ws.ledger, [str(DEV_PAIRS)], skip_invalid=True)
            import_files(ws.ledger, [str(DEV_PAIRS)], skip_invalid=True)  # idempotent on both
        assert pg.ledger.engine.dialect.name == "postgresql"
        assert pg.ledger.status() == lite.ledger.status()
        assert pg.ledger.pair_ids() == lite.ledger.pair_ids()
    finally:
        pg.close()
        lite.close()


def test_concurrent_label_upserts_store_each_once(postgres, tmp_path):
    url = postgres.create_db(f"ledger_{uuid.uuid4().hex[:8]}")
    ws = Workspace.init(tmp_path / "ws")
    ws.close()
    (tmp_path / "ws" / "rlthf.toml").write_text(f'[ledger]\nurl = "{url}"\n')
    ws = Workspace.init(tmp_path / "ws")
    try:
        import_files(ws.ledger, [str(DEV_PAIRS)], skip_invalid=True)
        ids = ws.ledger.pair_ids()[:50]
        labels = [HumanLabel(pid, "A", "ann", "label-studio", f"ann-{i}") for i, pid in enumerate(ids)]
        # 50 labels, each delivered 4 times from 8 threads: stored once each.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda lab: store_labels(ws.ledger, [lab]), labels * 4))
        assert ws.ledger.status()["human_labels_per_platform"]["label-studio"] == 50
    finally:
        ws.close()


def test_iteration_lease_across_processes_on_postgres(postgres, tmp_path):
    """Two processes racing for the iteration lease on one PostgreSQL ledger: one wins."""
    import subprocess
    import sys

    url = postgres.create_db(f"ledger_{uuid.uuid4().hex[:8]}")
    Workspace.init(tmp_path / "ws").close()
    (tmp_path / "ws" / "rlthf.toml").write_text(f'[ledger]\nurl = "{url}"\n')
    Workspace.init(tmp_path / "ws").close()
    code = ("import sys; from rlthf_plugin.workspace import Workspace; from rlthf_plugin.store.lock import acquire;"
            f"ws = Workspace.open({str(tmp_path / 'ws')!r}); print(acquire(ws.ledger, 'iteration', sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"p{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(outputs) == ["False", "False", "False", "True"]


def test_a_v1_ledger_migrates_on_postgres(postgres, tmp_path):
    """Schema v2 (superseded apart from deleted) on a PostgreSQL ledger written by v1."""
    from tests.unit.test_superseded_vs_deleted import check_migrated, make_v1, v1_rows

    from rlthf_plugin.store.ledger import Ledger

    url = postgres.create_db(f"ledger_{uuid.uuid4().hex[:8]}")
    ws = Workspace.init(tmp_path / "ws")
    ws.close()
    (tmp_path / "ws" / "rlthf.toml").write_text(f'[ledger]\nurl = "{url}"\n')
    ws = Workspace.init(tmp_path / "ws")
    try:
        f = tmp_path / "p.jsonl"
        f.write_text('{"prompt": "p", "response_a": "x", "response_b": "y"}\n', encoding="utf-8")
        import_files(ws.ledger, [str(f)])
        (pid,) = ws.ledger.pair_ids()
        make_v1(ws.ledger)
        v1_rows(ws.ledger, pid)
    finally:
        ws.close()
    ledger = Ledger.open(url)
    try:
        check_migrated(ledger, pid)
    finally:
        ledger.close()
