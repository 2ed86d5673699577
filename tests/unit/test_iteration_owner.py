"""One owner per iteration (issue 13, fault 5): every entry point takes the ``iteration``
lease through one step API, writes are fenced by the lease in their own transaction, a
heartbeat failure ends the owner cleanly, and /health says 503 with the reason."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from rlthf_plugin.cli import main
from rlthf_plugin.loop.owner import LeaseLostError, LeaseHeldError, IterationOwner
from rlthf_plugin.store import ledger as L
from rlthf_plugin.store import lock


def _asked(workspace, tmp_path, n: int = 3) -> list[str]:
    from rlthf_plugin.io.importer import import_files

    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"p{i}", "response_a": "x", "response_b": "y", "ai_label": "A",
                                     "human_label": "B"}) + "\n" for i in range(n)), encoding="utf-8")
    import_files(workspace.ledger, [str(f)])
    ids = workspace.ledger.pair_ids()
    with workspace.ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=0, state="selected", params={}, stats={}, started_at=L.now()))
        conn.execute(L.decisions.insert(), [{"iteration": 0, "pair_id": p, "action": "ask", "region": "ask",
                                             "reason": {}} for p in ids])
    return ids


def _oracle_labels(workspace) -> int:
    with workspace.ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(L.human_labels)
                            .where(L.human_labels.c.platform == "oracle")).scalar_one()


def test_a_second_owner_is_refused_by_name(workspace):
    with IterationOwner(workspace.ledger, holder="first", ttl=30):
        with pytest.raises(LeaseHeldError, match="first"):
            with IterationOwner(workspace.ledger, holder="second", ttl=30):
                pass
    with IterationOwner(workspace.ledger, holder="second", ttl=30):  # released: free again
        pass


@pytest.mark.parametrize("args", [["label", "--annotator", "oracle:human"],
                                  ["select", "--no-plot"],
                                  ["run", "--annotator", "oracle:human"]])
def test_cli_steps_take_the_lease(workspace, tmp_path, runner, args):
    _asked(workspace, tmp_path)
    assert lock.acquire(workspace.ledger, "iteration", "the-service", ttl=60)
    result = runner.invoke(main, ["-w", str(workspace.root), *args])
    assert result.exit_code == 1, result.output
    assert "the-service" in result.output and "Traceback" not in result.output
    assert _oracle_labels(workspace) == 0
    with workspace.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(L.iterations.c.state).where(L.iterations.c.id == 0)).scalar() == "selected"


def test_writes_are_fenced_by_the_lease(workspace, tmp_path):
    from rlthf_plugin.loop.oracle import label_with_oracle

    _asked(workspace, tmp_path)
    owner = IterationOwner(workspace.ledger, holder="slow", ttl=0.2, heartbeat=False)
    with owner:
        time.sleep(0.4)  # expired, e.g. a long GC pause: someone else takes over
        assert lock.acquire(workspace.ledger, "iteration", "new-owner", ttl=60)
        with pytest.raises(LeaseLostError, match="new-owner"):
            label_with_oracle(workspace.ledger, workspace.config, "oracle:human", owner=owner)
    assert _oracle_labels(workspace) == 0  # the fenced transaction wrote nothing
    assert lock.holder_of(workspace.ledger, "iteration") == "new-owner"  # and did not release theirs


def test_a_heartbeat_failure_ends_the_owner_cleanly(workspace, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise sa.exc.OperationalError("UPDATE locks", {}, Exception("database is locked"))

    owner = IterationOwner(workspace.ledger, holder="me", ttl=0.3)
    with owner:
        monkeypatch.setattr(lock, "renew", broken)
        deadline = time.time() + 5
        while not owner.lost and time.time() < deadline:
            time.sleep(0.02)
        assert owner.lost and "database is locked" in owner.reason
        with pytest.raises(LeaseLostError):
            owner.check()
    assert calls and not owner.heartbeat_alive


def test_health_is_503_with_the_reason_while_the_worker_is_in_error(workspace):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rlthf_plugin.config import update_config_file
    from rlthf_plugin.service.app import create_app

    update_config_file(workspace.root, "serve", poll_seconds=0.2)
    app = create_app(workspace.root, backends=["label-studio"], ml_backend=False)
    with TestClient(app) as client:  # an empty workspace: every step fails ("no pairs")
        deadline = time.time() + 20
        while app.state.worker.error is None and time.time() < deadline:
            time.sleep(0.05)
        r = client.get("/health")
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "worker_error" and "no pairs" not in r.text  # the detail is not public
    from rlthf_plugin.service.health import HEALTH_KEY

    assert "no pairs" in workspace.ledger.get_state(HEALTH_KEY)["detail"]  # it is for the log and rlthf status


def test_the_lease_of_a_killed_local_process_is_taken_over_at_once(workspace):
    import socket
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid names an exited process
    dead = f"{socket.gethostname()}:{proc.pid}:deadbeef"
    assert lock.acquire(workspace.ledger, "iteration", dead, ttl=600)
    with IterationOwner(workspace.ledger, holder="me", ttl=30):
        assert lock.holder_of(workspace.ledger, "iteration") == "me"
    alive = f"{socket.gethostname()}:1:cafe"  # pid 1 is alive
    assert lock.acquire(workspace.ledger, "iteration", alive, ttl=600)
    with pytest.raises(LeaseHeldError):
        with IterationOwner(workspace.ledger, holder="me", ttl=30):
            pass
