"""`rlthf serve` as the loop's service, against a real Label Studio 1.23.2.

The worker pushes, annotations are made by a second user through Label Studio's API, Label
Studio posts its webhooks to the service, and the worker starts the next iteration by
itself. Fault tests: labels made while the receiver is down arrive by reconciliation;
concurrent (and repeated) deliveries store each label once; a service killed with SIGKILL
mid-push and restarted leaves exactly the planned tasks.
"""

from __future__ import annotations

import json
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rlthf_plugin.store import ledger as L
from rlthf_plugin.backends.label_studio import SECRET_HEADER
from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.workspace import Workspace
from rlthf_plugin.store.iterations import asked_pair_ids

from .conftest import ReceiverThread, write_pandalm_sample, add_asked_iteration, free_port, wait_for
from .serve_helpers import SERVE, fresh_name, get_json, iteration_row, platform_labels, serve_process, state_of, truth

pytestmark = pytest.mark.integration

PLATFORM = "label-studio"


@pytest.fixture
def small_workspace(tmp_path):
    """80 real PandaLM pairs (AI label from gpt-3.5, three human votes each), with a
    reward model small enough for CPU tests (MiniLM at 64 tokens, 3 folds, 10% budget)."""
    sample = write_pandalm_sample(tmp_path / "sample.jsonl", 80)
    ws = Workspace.init(tmp_path / "ws")
    import_files(ws.ledger, [str(sample)])
    update_config_file(ws.root, "embedding", max_length=64)
    update_config_file(ws.root, "selection", budget=0.1, folds=3)
    update_config_file(ws.root, "serve", **SERVE)
    ws.config = load_config(ws.root)
    yield ws
    ws.close()


def configure(env, ws: Workspace, receiver: ReceiverThread, **serve) -> None:
    env.configure(ws, name=fresh_name(), webhook_url=f"{receiver.url}/webhooks/{env.platform}")
    if serve:
        update_config_file(ws.root, "serve", **serve)
    ws.config = load_config(ws.root)


@pytest.fixture(params=["label_studio_env", "argilla_env"])
def env(request):
    return request.getfixturevalue(request.param)


def test_worker_runs_the_next_iteration_when_the_batch_is_labeled(env, small_workspace):
    ws, platform = small_workspace, env.platform
    # A selection killed half-way: the worker redoes it (its partial decisions are replaced).
    with ws.ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=0, state="selecting", params={}, stats={}, started_at=L.now()))
        conn.execute(L.decisions.insert(), [{"iteration": 0, "pair_id": pid, "action": "ask", "reason": {}}
                                            for pid in ws.ledger.pair_ids()[:3]])
    receiver = ReceiverThread(ws.root, backends=[platform])
    configure(env, ws, receiver, max_iterations=2)
    receiver.start()
    try:
        wait_for(lambda: state_of(ws, 0) == "pushed", timeout=300, what="iteration 0 pushed")
        backend = env.backend(ws)
        asked0 = asked_pair_ids(ws.ledger, 0)
        row0 = iteration_row(ws, 0)
        assert len(asked0) == row0["stats"]["budget"] == round(0.1 * row0["stats"]["pool"]) > 0
        pushed = ws.ledger.pushed(platform, backend.target)
        assert set(pushed) == set(asked0) and env.remote_count(backend) == len(asked0)
        assert row0["stats"]["push"][platform]["planned"] == len(asked0)

        answers = truth(ws, asked0)
        for pid in asked0:  # a second user, through the platform's API: the platform sends the webhooks
            env.annotate(backend, pushed[pid], answers[pid], annotator=1)
        # No pull after the start: only the webhooks can bring these labels in.
        wait_for(lambda: state_of(ws, 1) == "pushed", timeout=300, what="iteration 1 started and pushed")
        metrics = receiver.app.state.metrics
        assert metrics.value("rlthf_labels_stored_total", platform=platform, path="webhook") == len(asked0)
        assert metrics.value("rlthf_labels_stored_total", platform=platform, path="pull") == 0
        row0 = iteration_row(ws, 0)
        assert row0["state"] == "labeled" and row0["stats"]["batch"]["answered"] == len(asked0)
        labels = platform_labels(ws, platform)
        assert sorted(lab["pair_id"] for lab in labels) == sorted(asked0)
        assert {lab["iteration"] for lab in labels} == {0}
        assert {lab["label"] for lab in labels} <= {"A", "B", "tie"}

        asked1 = asked_pair_ids(ws.ledger, 1)
        assert asked1 and not set(asked1) & set(asked0)
        assert iteration_row(ws, 1)["stats"]["human_labeled"] == sum(answers[p] in ("A", "B") for p in asked0)
        assert env.remote_count(backend) == len(asked0) + len(asked1)

        health = httpx.get(f"{receiver.url}/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        assert receiver.app.state.worker.status()["state"].startswith("waiting for labels")  # details stay inside
        text = httpx.get(f"{receiver.url}/metrics", timeout=10).text
        assert "rlthf_iteration 1" in text and 'rlthf_iteration_state{state="pushed"} 1' in text
        assert 'rlthf_iterations_started_total 2' in text
        assert f'rlthf_iteration_pending_tasks {len(asked1)}' in text
    finally:
        receiver.stop()


def test_labels_made_while_the_receiver_is_down_arrive_by_reconciliation(label_studio_env, small_workspace):
    ws = small_workspace
    ids = add_asked_iteration(ws.ledger, 50)  # iteration 1, state "asked"
    receiver = ReceiverThread(ws.root, backends=[PLATFORM])
    configure(label_studio_env, ws, receiver, max_iterations=2)
    receiver.start()
    try:
        wait_for(lambda: state_of(ws, 1) == "pushed", timeout=120, what="the batch pushed")
    finally:
        receiver.stop()
    backend = label_studio_env.backend(ws)
    pushed = ws.ledger.pushed(PLATFORM, backend.target)
    for pid in ids:  # Label Studio's deliveries fail: nobody listens
        label_studio_env.annotate(backend, pushed[pid], "B", annotator=2)
    assert platform_labels(ws) == []
    receiver.start()
    try:
        wait_for(lambda: state_of(ws, 1) == "labeled", timeout=120, what="the batch reconciled")
        assert sorted(lab["pair_id"] for lab in platform_labels(ws)) == sorted(ids)
        metrics = receiver.app.state.metrics
        assert metrics.value("rlthf_labels_stored_total", platform=PLATFORM, path="pull") == 50
        assert metrics.value("rlthf_reconciliations_total", platform=PLATFORM, outcome="ok") == 1
        wait_for(lambda: receiver.app.state.worker.state.startswith("finished"), timeout=30, what="the worker done")
    finally:
        receiver.stop()


def test_concurrent_and_repeated_deliveries_store_each_label_once(label_studio_env, small_workspace):
    ws = small_workspace
    ids = add_asked_iteration(ws.ledger, 50)
    receiver = ReceiverThread(ws.root, backends=[PLATFORM])
    configure(label_studio_env, ws, receiver, max_iterations=2)
    receiver.start()
    try:
        wait_for(lambda: state_of(ws, 1) == "pushed", timeout=120, what="the batch pushed")
        backend = label_studio_env.backend(ws)
        pushed = ws.ledger.pushed(PLATFORM, backend.target)
        with ThreadPoolExecutor(10) as pool:  # Label Studio delivers each webhook inside its request
            made = list(pool.map(lambda pid: label_studio_env.annotate(backend, pushed[pid], "A", annotator=1), ids))
        wait_for(lambda: len(platform_labels(ws)) == 50, timeout=60, what="50 labels by webhook")
        metrics = receiver.app.state.metrics
        assert metrics.value("rlthf_labels_stored_total", platform=PLATFORM, path="webhook") == 50

        # The same 50 deliveries again, each twice, all at once: nothing new is stored.
        secret = str(load_config(ws.root).label_studio.webhook_secret)
        server = label_studio_env.server
        bodies = []
        for annotation in made:
            task = httpx.get(f"{server.url}/api/tasks/{annotation['task']}", timeout=30,
                             headers=label_studio_env.headers(server.admin_token)).json()
            bodies.append(json.dumps({"action": "ANNOTATION_CREATED", "annotation": annotation,
                                      "task": {"id": task["id"], "data": task["data"]},
                                      "project": {"id": int(backend.target)}}).encode())

        def deliver(body: bytes) -> httpx.Response:
            return httpx.post(f"{receiver.url}/webhooks/{PLATFORM}", content=body, timeout=30,
                              headers={"content-type": "application/json", SECRET_HEADER: secret})

        with ThreadPoolExecutor(25) as pool:
            answers = list(pool.map(deliver, bodies + bodies))
        assert [r.status_code for r in answers] == [200] * 100
        assert sum(r.json()["stored"] for r in answers) == 0
        labels = platform_labels(ws)
        assert len(labels) == len({lab["external_id"] for lab in labels}) == 50
        assert sorted(lab["pair_id"] for lab in labels) == sorted(ids)
        wait_for(lambda: state_of(ws, 1) == "labeled", timeout=60, what="the batch labeled")
    finally:
        receiver.stop()


def _serve(ws: Workspace, port: int) -> subprocess.Popen:
    return serve_process(ws, "--backend", PLATFORM, "--port", str(port), log_name=f"serve-{port}.log")


def test_service_killed_mid_push_resumes_with_exactly_the_planned_tasks(label_studio_env, real_workspace):
    ws = real_workspace
    update_config_file(ws.root, "serve", **SERVE, max_iterations=2)
    add_asked_iteration(ws.ledger, 1000)
    with ws.ledger.engine.begin() as conn:  # as `rlthf select` leaves it
        conn.execute(L.iterations.update().where(L.iterations.c.id == 1).values(state="selected"))
    label_studio_env.configure(ws, name=fresh_name())
    backend = label_studio_env.backend(ws)
    port = free_port()
    proc = _serve(ws, port)
    try:
        wait_for(lambda: label_studio_env.remote_count(backend) > 0 or proc.poll() is not None, timeout=180,
                 every=0.05, what="the first tasks")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    partial, killed_in = label_studio_env.remote_count(backend), state_of(ws, 1)
    print(f"killed with {partial} of 1000 tasks on the server, iteration state '{killed_in}'")
    assert killed_in in ("pushing", "pushed"), killed_in  # "pushing" is recorded before the push
    proc = _serve(ws, port)
    try:
        wait_for(lambda: state_of(ws, 1) == "pushed", timeout=180, what=f"the push resumed ({partial} before)")
        assert label_studio_env.remote_count(backend) == 1000, f"{partial} before the restart"
        assert len(ws.ledger.pushed(PLATFORM, backend.target)) == 1000
        push = iteration_row(ws, 1)["stats"]["push"][PLATFORM]
        assert push["planned"] == 1000 and push["created"] + push["existing"] == 1000
        def waiting_for_all():
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                return None
            return "rlthf_iteration_pending_tasks 1000.0" in text

        wait_for(waiting_for_all, timeout=60, what="/metrics with 1000 pending tasks")
        health = get_json(f"http://127.0.0.1:{port}/health")
        assert health["status"] == "ok" and health["last_success"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
