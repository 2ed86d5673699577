"""The contract every labeling backend passes, against real servers (one run per platform).

The servers are real (Label Studio 1.23.2; argilla-server 2.8.0 with Redis and the
harness's in-memory search engine, see tests/integration/argilla_env.py); the backends
talk HTTP to them; annotations are made by a second user through the platform's API.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest
import sqlalchemy as sa

from rlthf_plugin.store import ledger as L
from rlthf_plugin.loop import sync
from rlthf_plugin.loop.tasks import asked_tasks

from .conftest import ReceiverThread, add_asked_iteration, wait_for
from .contract import workspace_env

pytestmark = pytest.mark.integration

PLATFORMS = ["label_studio_env", "argilla_env"]


@pytest.fixture(params=PLATFORMS)
def env(request):
    return request.getfixturevalue(request.param)


def fresh_name(prefix: str = "contract") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def platform_votes(workspace, platform: str, pair_id: str) -> list[str]:
    """Labels stored for a pair from one platform (not the imported votes)."""
    with workspace.ledger.engine.connect() as conn:
        q = sa.select(L.human_labels.c.label).where(
            L.human_labels.c.platform == platform, L.human_labels.c.pair_id == pair_id,
            L.human_labels.c.deleted.is_(False))
        return sorted(conn.execute(q).scalars())


def test_push_1000_is_idempotent(env, real_workspace):
    add_asked_iteration(real_workspace.ledger, 1000)
    env.configure(real_workspace, name=fresh_name())
    backend = env.backend(real_workspace)
    tasks = asked_tasks(real_workspace.ledger)
    report = sync.push(real_workspace.ledger, backend, tasks, iteration=1)
    assert report.created == 1000 and not report.failed
    assert env.remote_count(backend) == 1000
    assert len(real_workspace.ledger.pushed(backend.platform, backend.target)) == 1000
    again = sync.push(real_workspace.ledger, backend, tasks, iteration=1)
    assert again.created == 0 and again.existing == 1000
    assert env.remote_count(backend) == 1000


def test_pull_keeps_every_annotator_and_is_incremental(env, real_workspace):
    ids = add_asked_iteration(real_workspace.ledger, 12)
    env.configure(real_workspace, name=fresh_name())
    backend = env.backend(real_workspace)
    report = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1)
    ext = report.mapping
    for pid in ids[:4]:
        env.annotate(backend, ext[pid], "A", annotator=1)
    env.annotate(backend, ext[ids[0]], "B", annotator=2)
    env.annotate(backend, ext[ids[1]], "tie", annotator=2)
    read, new = sync.pull(real_workspace.ledger, backend)
    assert new == 6
    assert platform_votes(real_workspace, backend.platform, ids[0]) == ["A", "B"]
    assert platform_votes(real_workspace, backend.platform, ids[1]) == ["A", "tie"]
    # Idempotent and incremental: nothing new the second time, nor on a full re-read.
    assert sync.pull(real_workspace.ledger, backend)[1] == 0
    assert sync.pull(real_workspace.ledger, backend, full=True)[1] == 0
    env.annotate(backend, ext[ids[5]], "B", annotator=1)
    read, new = sync.pull(real_workspace.ledger, backend)
    assert new == 1


def test_webhook_delivers_and_forgeries_get_401(env, real_workspace):
    ids = add_asked_iteration(real_workspace.ledger, 5)
    receiver = ReceiverThread(real_workspace.root)
    webhook_url = f"{receiver.url}/webhooks/{env.platform}"
    env.configure(real_workspace, name=fresh_name(), webhook_url=webhook_url)
    receiver.start()
    try:
        backend = env.backend(real_workspace)
        report = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1)
        env.annotate(backend, report.mapping[ids[0]], "B", annotator=1)
        # No pull here: only the webhook can have stored it.
        wait_for(lambda: platform_votes(real_workspace, backend.platform, ids[0]) == ["B"],
                 what="the webhook's label")
        body = b'{"action": "ANNOTATION_CREATED", "event": "response.created"}'
        for headers in env.forged_deliveries(body):
            r = httpx.post(webhook_url, content=body, headers=headers, timeout=10)
            assert r.status_code == 401, (headers, r.text)
    finally:
        receiver.stop()


def test_killed_push_rerun_leaves_exactly_1000(env, real_workspace):
    add_asked_iteration(real_workspace.ledger, 1000)
    options = env.configure(real_workspace, name=fresh_name())
    backend = env.backend(real_workspace)
    cmd = [sys.executable, "-m", "rlthf_plugin", "push", "--backend", env.platform, *options]
    proc = subprocess.Popen(cmd, env=workspace_env(real_workspace), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: env.remote_count(backend) > 0 or proc.poll() is not None, timeout=120, every=0.05,
                 what="the first tasks")
        proc.kill()  # mid-push: some tasks exist, the ledger may not know them
    finally:
        proc.wait()
    partial = env.remote_count(backend)
    rerun = subprocess.run(cmd, env=workspace_env(real_workspace), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert env.remote_count(backend) == 1000, f"{partial} before the rerun"
    assert len(real_workspace.ledger.pushed(backend.platform, backend.target)) == 1000
