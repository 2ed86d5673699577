"""Issue 13 on the real servers: bad bodies get 400 (never 500), a failed Argilla store makes
Argilla retry and the retry succeeds, labels only move forward when deliveries and pulls
race or come back out of order, a discard is a skip, and reconcile repairs a lost deletion."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlthf_plugin.backends.label_studio import SECRET_HEADER
from rlthf_plugin.config import load_config
from rlthf_plugin.loop import sync
from rlthf_plugin.loop.tasks import asked_tasks
from rlthf_plugin.store import ledger as L

from .argilla_env import signed_headers as argilla_headers
from .conftest import ReceiverThread, add_asked_iteration, wait_for

pytestmark = pytest.mark.integration

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)
#: Arbitrary JSON, and JSON shaped like each platform's events with arbitrary parts.
ls_bodies = json_values | st.fixed_dictionaries(
    {"action": st.sampled_from(["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]),
     "task": json_values, "annotation": json_values, "annotations": json_values})
argilla_bodies = json_values | st.fixed_dictionaries(
    {"type": st.sampled_from(["response.created", "response.updated", "response.deleted", "record.completed"]),
     "version": st.integers(), "data": json_values})


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rejected(receiver: ReceiverThread, platform: str) -> float:
    text = httpx.get(f"{receiver.url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("rlthf_webhooks_rejected_total") and f'platform="{platform}"' in line
               and 'reason="auth"' not in line)


def labels_of(ws, platform: str) -> list[dict]:
    with ws.ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(L.human_labels).where(L.human_labels.c.platform == platform))
                .mappings()]


@pytest.fixture
def ls_receiver(label_studio_env, real_workspace):
    ids = add_asked_iteration(real_workspace.ledger, 3)
    receiver = ReceiverThread(real_workspace.root, ml_backend=False)
    label_studio_env.configure(real_workspace, name=fresh("faults"), webhook_url=f"{receiver.url}/webhooks/label-studio")
    receiver.start()
    backend = label_studio_env.backend(real_workspace)
    mapping = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1).mapping
    yield receiver, backend, ids, mapping
    receiver.stop()
    backend.close()


@pytest.fixture
def argilla_receiver(argilla_env, real_workspace):
    ids = add_asked_iteration(real_workspace.ledger, 3)
    receiver = ReceiverThread(real_workspace.root, ml_backend=False)
    argilla_env.configure(real_workspace, name=fresh("faults"), webhook_url=f"{receiver.url}/webhooks/argilla")
    receiver.start()
    backend = argilla_env.backend(real_workspace)
    mapping = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1).mapping
    secret = str(load_config(real_workspace.root).argilla.webhook_secret)
    yield receiver, backend, ids, mapping, secret
    receiver.stop()
    backend.close()


# -- bad bodies: 400 with a one-line reason, counted as rejected -------------------------------------------
def test_label_studio_bad_bodies_get_400(ls_receiver, real_workspace):
    receiver, _, ids, _ = ls_receiver
    url = f"{receiver.url}/webhooks/label-studio"
    headers = {SECRET_HEADER: str(load_config(real_workspace.root).label_studio.webhook_secret)}
    bodies = [b"[]", b"{not json", json.dumps({"action": "ANNOTATION_CREATED", "task": "x"}).encode(),
              json.dumps({"action": "ANNOTATION_CREATED", "task": {"data": {"pair_id": ids[0]}},
                          "annotation": {}}).encode(),
              json.dumps({"action": "ANNOTATIONS_DELETED", "annotations": "all"}).encode()]
    before = rejected(receiver, "label-studio")
    for body in bodies:
        r = httpx.post(url, content=body, headers=headers, timeout=10)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert "\n" not in r.json()["detail"] and "Traceback" not in r.text
    assert rejected(receiver, "label-studio") == before + len(bodies)


def test_argilla_bad_bodies_get_400(argilla_receiver):
    receiver, _, _, _, secret = argilla_receiver
    url = f"{receiver.url}/webhooks/argilla"
    bodies = [b"[]", b"{not json", b'"text"', json.dumps({"type": "response.created"}).encode(),
              json.dumps({"type": "response.created", "data": []}).encode(),
              json.dumps({"type": "record.completed", "data": {"dataset": {}}}).encode()]
    before = rejected(receiver, "argilla")
    for body in bodies:
        r = httpx.post(url, content=body, headers=argilla_headers(secret, body), timeout=10)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert "\n" not in r.json()["detail"]
    assert rejected(receiver, "argilla") == before + len(bodies)


@pytest.mark.parametrize("platform", ["label-studio", "argilla"])
def test_arbitrary_json_never_gets_500(platform, request, real_workspace):
    """Hypothesis throws arbitrary JSON (and event-shaped JSON) at the receiver, authenticated."""
    if platform == "label-studio":
        receiver = request.getfixturevalue("ls_receiver")[0]
        secret = str(load_config(real_workspace.root).label_studio.webhook_secret)

        def headers(body):
            return {SECRET_HEADER: secret}
        bodies = ls_bodies
    else:
        receiver, secret = request.getfixturevalue("argilla_receiver")[0], request.getfixturevalue("argilla_receiver")[4]

        def headers(body):
            return argilla_headers(secret, body)
        bodies = argilla_bodies
    url = f"{receiver.url}/webhooks/{platform}"

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(event=bodies)
    def check(event):
        body = json.dumps(event).encode()
        r = httpx.post(url, content=body, headers=headers(body), timeout=20)
        assert r.status_code in (200, 400), (event, r.status_code, r.text)
        if r.status_code == 400:
            assert "\n" not in r.json()["detail"]

    check()


# -- a failed Argilla store answers 5xx; the retry is stored, not refused as a replay -------------------------
@pytest.fixture
def failing_store_once(monkeypatch):
    """The ledger write of labels fails once (a locked or full disk), then works."""
    real, failures = L.Ledger.store_human_labels, []

    def fail_once(self, rows, **kwargs):
        if rows and not failures:
            failures.append(1)
            raise sa.exc.OperationalError("INSERT INTO human_labels", {}, Exception("disk I/O error (injected)"))
        return real(self, rows, **kwargs)

    monkeypatch.setattr(L.Ledger, "store_human_labels", fail_once)
    return failures


def test_failed_argilla_store_is_5xx_and_the_same_delivery_retried_is_stored(argilla_receiver, real_workspace,
                                                                             failing_store_once):
    """Standard Webhooks retries keep the message id: the retry must not be a replay."""
    receiver, backend, ids, mapping, secret = argilla_receiver
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    body = json.dumps({"type": "response.created", "version": 1, "timestamp": now, "data": {
        "id": str(uuid.uuid4()), "values": {"label": {"value": "b"}}, "status": "submitted",
        "record": {"id": mapping[ids[0]], "external_id": ids[0], "status": "pending", "fields": {},
                   "dataset": {"id": str(backend.dataset().id)}},
        "user": {"id": str(uuid.uuid4()), "username": "annotator1"}, "inserted_at": now, "updated_at": now}}).encode()
    headers = argilla_headers(secret, body)
    r = httpx.post(f"{receiver.url}/webhooks/argilla", content=body, headers=headers, timeout=10)
    assert r.status_code == 503 and "\n" not in r.json()["detail"], r.text
    assert not labels_of(real_workspace, "argilla")
    r = httpx.post(f"{receiver.url}/webhooks/argilla", content=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert [x["label"] for x in labels_of(real_workspace, "argilla")] == ["B"]
    r = httpx.post(f"{receiver.url}/webhooks/argilla", content=body, headers=headers, timeout=10)
    assert r.status_code == 401  # once stored, the same id again is a replay


def test_argillas_own_retry_after_a_failed_store_stores_the_label(argilla_receiver, argilla_env, real_workspace,
                                                                 failing_store_once):
    receiver, backend, ids, mapping, _ = argilla_receiver
    argilla_env.annotate(backend, mapping[ids[0]], "B", annotator=1)
    # Argilla retries after 10 s when the receiver answered 5xx.
    wait_for(lambda: [r for r in labels_of(real_workspace, "argilla") if r["pair_id"] == ids[0]], timeout=60,
             what="Argilla's retry to store the label")
    assert failing_store_once == [1]


# -- labels only move forward --------------------------------------------------------------------------------
def test_out_of_order_and_replayed_label_studio_events(ls_receiver, label_studio_env, real_workspace):
    receiver, backend, ids, mapping = ls_receiver
    env = label_studio_env
    first = env.annotate(backend, mapping[ids[0]], "A", annotator=1)
    wait_for(lambda: labels_of(real_workspace, "label-studio"), what="the first label")
    with httpx.Client(base_url=env.server.url, headers=env.headers(env.server.annotator_tokens[1])) as c:
        r = c.patch(f"/api/annotations/{first['id']}/", json={"result": [
            {"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": ["B"]}}]})
        assert r.status_code == 200, r.text
    wait_for(lambda: labels_of(real_workspace, "label-studio")[0]["label"] == "B", what="the update")
    # The creation event delivered again, late (an older state of the same annotation).
    old = {"action": "ANNOTATION_CREATED", "task": {"id": int(mapping[ids[0]]), "data": {"pair_id": ids[0]}},
           "annotation": first}
    secret = str(load_config(real_workspace.root).label_studio.webhook_secret)
    r = httpx.post(f"{receiver.url}/webhooks/label-studio", json=old, headers={SECRET_HEADER: secret}, timeout=10)
    assert r.status_code == 200
    assert labels_of(real_workspace, "label-studio")[0]["label"] == "B"
    # A pull racing it reads the current state: still B.
    sync.pull(real_workspace.ledger, backend, full=True)
    assert [(x["label"], x["deleted"]) for x in labels_of(real_workspace, "label-studio")] == [("B", False)]
    # Deleted on the platform; the old creation replayed again must not revive it.
    with httpx.Client(base_url=env.server.url, headers=env.headers(env.server.annotator_tokens[1])) as c:
        assert c.delete(f"/api/annotations/{first['id']}/").status_code == 204
    wait_for(lambda: labels_of(real_workspace, "label-studio")[0]["deleted"], what="the deletion")
    httpx.post(f"{receiver.url}/webhooks/label-studio", json=old, headers={SECRET_HEADER: secret}, timeout=10)
    assert labels_of(real_workspace, "label-studio")[0]["deleted"]


def test_out_of_order_argilla_events_and_pull_race(argilla_receiver, argilla_env, argilla_server, real_workspace):
    receiver, backend, ids, mapping, secret = argilla_receiver
    argilla_env.annotate(backend, mapping[ids[0]], "A", annotator=1)
    wait_for(lambda: labels_of(real_workspace, "argilla"), what="the first label")
    (stored,) = labels_of(real_workspace, "argilla")
    response_id = stored["external_id"]
    with argilla_server.annotator(1) as client:
        r = client.put(f"/api/v1/responses/{response_id}", json={"values": {"label": {"value": "b"}},
                                                                 "status": "submitted"})
        assert r.status_code == 200, r.text
    sync.pull(real_workspace.ledger, backend, full=True)
    assert labels_of(real_workspace, "argilla")[0]["label"] == "B"
    # The first response.created delivered again as a new message (Argilla re-sends at 10/60/180 s).
    ds_id = str(backend.dataset().id)
    old = {"type": "response.created", "version": 1, "timestamp": stored["labeled_at"].isoformat(),
           "data": {"id": response_id, "values": {"label": {"value": "a"}}, "status": "submitted",
                    "record": {"id": mapping[ids[0]], "external_id": ids[0], "dataset": {"id": ds_id}},
                    "user": {"id": "x", "username": "annotator1"},
                    "inserted_at": stored["labeled_at"].isoformat(), "updated_at": stored["labeled_at"].isoformat()}}
    body = json.dumps(old).encode()
    r = httpx.post(f"{receiver.url}/webhooks/argilla", content=body, headers=argilla_headers(secret, body), timeout=10)
    assert r.status_code == 200, r.text
    assert labels_of(real_workspace, "argilla")[0]["label"] == "B"


def test_argilla_discard_completes_the_task_as_a_skip(argilla_receiver, argilla_env, real_workspace):
    from rlthf_plugin.service.worker import label_counts

    receiver, backend, ids, mapping, _ = argilla_receiver
    argilla_env.annotate(backend, mapping[ids[1]], "A", annotator=2, status="discarded")
    wait_for(lambda: labels_of(real_workspace, "argilla"), what="the discard's delivery")
    (row,) = labels_of(real_workspace, "argilla")
    assert row["label"] == "skip" and not row["deleted"]
    assert label_counts(real_workspace.ledger, "argilla", [ids[1]]) == {ids[1]: 1}  # the batch can finish
    from rlthf_plugin.pairs import majority

    assert majority([row["label"]]).label is None  # never a preference


# -- reconcile repairs a lost Label Studio deletion ----------------------------------------------------------
def test_reconcile_repairs_a_lost_label_studio_deletion(label_studio_env, real_workspace):
    env = label_studio_env
    ids = add_asked_iteration(real_workspace.ledger, 2)
    env.configure(real_workspace, name=fresh("deletions"))  # no webhook: every deletion event is lost
    backend = env.backend(real_workspace)
    mapping = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1).mapping
    a = env.annotate(backend, mapping[ids[0]], "A", annotator=1)
    env.annotate(backend, mapping[ids[1]], "B", annotator=1)
    assert sync.pull(real_workspace.ledger, backend)[1] == 2
    with httpx.Client(base_url=env.server.url, headers=env.headers(env.server.annotator_tokens[1])) as c:
        assert c.delete(f"/api/annotations/{a['id']}/").status_code == 204
    sync.pull(real_workspace.ledger, backend)  # the incremental reconcile
    rows = {r["external_id"]: r["deleted"] for r in labels_of(real_workspace, "label-studio")}
    assert rows[str(a["id"])] is True and list(rows.values()).count(False) == 1


# -- clear one-line errors, exit 1, nothing written --------------------------------------------------------
def _push_cli(runner, ws, *args):
    from rlthf_plugin.cli import main

    return runner.invoke(main, ["-w", str(ws.root), "push", *args])


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    return text


def test_argilla_unknown_workspace_and_annotator_key_are_one_line_errors(argilla_env, argilla_server, real_workspace,
                                                                        runner):
    from rlthf_plugin.config import update_secrets_file

    from .argilla_env import ANNOTATORS

    add_asked_iteration(real_workspace.ledger, 3)
    name = fresh("errors")
    options = argilla_env.configure(real_workspace, name=name)
    text = _one_line_error(_push_cli(runner, real_workspace, "--backend", "argilla", *options,
                                     "--argilla-workspace", "nope"))
    assert "workspace 'nope' does not exist" in text
    update_secrets_file(real_workspace.root, "argilla", api_key=ANNOTATORS[0][1])
    text = _one_line_error(_push_cli(runner, real_workspace, "--backend", "argilla", *options))
    assert "annotator" in text and "owner" in text
    with argilla_server.owner() as owner:
        names = [d["name"] for d in owner.get("/api/v1/me/datasets").json()["items"]]
    assert name not in names  # nothing was created
    assert real_workspace.ledger.pushed("argilla", f"{argilla_server.url}#argilla/{name}") == {}


def test_label_studio_unknown_project_and_refused_key_are_one_line_errors(label_studio_env, real_workspace, runner):
    from rlthf_plugin.config import save_secret, secrets_path

    add_asked_iteration(real_workspace.ledger, 3)
    label_studio_env.configure(real_workspace, name=fresh("errors"))
    text = _one_line_error(_push_cli(runner, real_workspace, "--backend", "label-studio", "--project", "987654"))
    assert "987654" in text
    save_secret(secrets_path(real_workspace.root), "label_studio", "api_key", "not-a-key")
    text = _one_line_error(_push_cli(runner, real_workspace, "--backend", "label-studio", "--create", fresh("x")))
    assert "refused" in text
