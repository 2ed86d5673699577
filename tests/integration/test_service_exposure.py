"""Issue 23 against the real servers: a Label Studio webhook is a notification, read back
before anything is stored (an annotator who reads the secret header from Label Studio
cannot forge labels), `pull --full` removes labels Label Studio does not have, a malformed
result is a 400, Label Studio connects to /ml with Basic auth only, and deletions on
Label Studio and Argilla are never undone by a stale delivery."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import sqlalchemy as sa

from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.backends.label_studio import SECRET_HEADER, TEMPLATE
from rlthf_plugin.config import update_config_file
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop import sync
from rlthf_plugin.loop.tasks import asked_tasks
from rlthf_plugin.store import schema as S
from rlthf_plugin.workspace import Workspace

from .conftest import ReceiverThread, add_asked_iteration, wait_for, write_pandalm_sample

pytestmark = pytest.mark.integration

CHOICE = {"from_name": "preference", "to_name": "prompt", "type": "choices"}


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rows(ws, platform: str = "label-studio") -> dict[str, dict]:
    with ws.ledger.engine.connect() as conn:
        return {r["external_id"]: dict(r) for r in conn.execute(
            sa.select(S.human_labels).where(S.human_labels.c.platform == platform)).mappings()}


@pytest.fixture
def ls_service(label_studio_env, real_workspace):
    ids = add_asked_iteration(real_workspace.ledger, 3)
    receiver = ReceiverThread(real_workspace.root)
    label_studio_env.configure(real_workspace, name=fresh("expose"), webhook_url=f"{receiver.url}/webhooks/label-studio")
    receiver.start()
    backend = label_studio_env.backend(real_workspace)
    mapping = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1).mapping
    yield receiver, backend, ids, mapping
    receiver.stop()
    backend.close()


def test_an_annotator_who_reads_the_secret_cannot_forge_labels(ls_service, label_studio_env, real_workspace):
    receiver, backend, ids, mapping = ls_service
    env = label_studio_env
    annotator = env.headers(env.server.annotator_tokens[1])
    # Label Studio shows the webhook's headers, the secret included, to a project member.
    hooks = httpx.get(f"{env.server.url}/api/webhooks/", params={"project": backend.target}, headers=annotator,
                      timeout=30).json()
    secret = next(h["headers"][SECRET_HEADER] for h in hooks if SECRET_HEADER in (h.get("headers") or {}))
    url, headers = f"{receiver.url}/webhooks/label-studio", {SECRET_HEADER: secret, "content-type": "application/json"}
    task = {"id": int(mapping[ids[0]]), "data": {"pair_id": ids[0]}}

    forged = {"action": "ANNOTATION_CREATED", "task": task, "project": {"id": int(backend.target)},
              "annotation": {"id": 987654, "completed_by": 1, "created_username": "x mallory@evil.test, 1",
                             "result": [{**CHOICE, "value": {"choices": ["A"]}}], "updated_at": "2026-01-01T00:00:00Z"}}
    r = httpx.post(url, content=json.dumps(forged), headers=headers, timeout=30)
    assert r.status_code == 200 and r.json() == {"stored": 0}, r.text
    assert rows(real_workspace) == {}

    # A real annotation, with a forged body that changes its answer: Label Studio's version is stored.
    real = env.annotate(backend, mapping[ids[1]], "B", annotator=2)
    wait_for(lambda: str(real["id"]) in rows(real_workspace), what="the real annotation's webhook")
    lie = {**forged, "task": {"id": int(mapping[ids[1]]), "data": {"pair_id": ids[1]}},
           "annotation": {**forged["annotation"], "id": real["id"], "updated_at": "2030-01-01T00:00:00Z"}}
    assert httpx.post(url, content=json.dumps(lie), headers=headers, timeout=30).status_code == 200
    stored = rows(real_workspace)[str(real["id"])]
    assert stored["label"] == "B" and stored["annotator"] == "annotator2@rlthf.test" and not stored["deleted"]

    # A forged deletion of an annotation Label Studio still has deletes nothing.
    gone = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": real["id"]}], "project": {"id": 1}}
    assert httpx.post(url, content=json.dumps(gone), headers=headers, timeout=30).status_code == 200
    assert not rows(real_workspace)[str(real["id"])]["deleted"]

    # A malformed result is a bad request, not a 200 with nothing stored.
    bad = {**forged, "annotation": {**forged["annotation"], "result": [{**CHOICE, "value": {"choices": "A"}}]}}
    r = httpx.post(url, content=json.dumps(bad), headers=headers, timeout=30)
    assert r.status_code == 400 and "annotation.result" in r.json()["detail"]


def test_pull_full_removes_labels_label_studio_does_not_have(ls_service, label_studio_env, real_workspace):
    """A label an older receiver stored from a forged delivery (a made-up annotation id on a
    pushed pair) is marked deleted by the next full pull; real labels stay."""
    _, backend, ids, mapping = ls_service
    real = label_studio_env.annotate(backend, mapping[ids[0]], "A", annotator=1)
    wait_for(lambda: str(real["id"]) in rows(real_workspace), what="the real annotation's webhook")
    real_workspace.ledger.store_human_labels([{"pair_id": ids[1], "label": "A", "annotator": "mallory@evil.test",
                                              "platform": "label-studio", "external_id": "987655"}])
    assert ("mallory@evil.test", "A") in real_workspace.ledger.human_votes()[ids[1]]
    sync.pull(real_workspace.ledger, backend, full=True)
    stored = rows(real_workspace)
    assert stored["987655"]["deleted"] and not stored[str(real["id"])]["deleted"]
    assert ("mallory@evil.test", "A") not in real_workspace.ledger.human_votes().get(ids[1], [])


def test_a_deletion_on_label_studio_is_not_undone_by_a_stale_delivery(ls_service, label_studio_env, real_workspace):
    _, backend, ids, mapping = ls_service
    env = label_studio_env
    first = env.annotate(backend, mapping[ids[0]], "A", annotator=1)
    wait_for(lambda: str(first["id"]) in rows(real_workspace), what="the webhook")
    version = rows(real_workspace)[str(first["id"])]
    with httpx.Client(base_url=env.server.url, headers=env.headers(env.server.annotator_tokens[1])) as c:
        assert c.delete(f"/api/annotations/{first['id']}/").status_code == 204
    wait_for(lambda: rows(real_workspace)[str(first["id"])]["deleted"], what="the deletion webhook")
    # The creation delivered again with its original time (a retry, a racing pull): no revival.
    sync.store_labels(real_workspace.ledger, [HumanLabel(ids[0], "A", version["annotator"], "label-studio",
                                                         str(first["id"]), labeled_at=version["labeled_at"])])
    assert rows(real_workspace)[str(first["id"])]["deleted"]
    sync.pull(real_workspace.ledger, backend, full=True)
    assert rows(real_workspace)[str(first["id"])]["deleted"]


def test_a_deletion_on_argilla_is_not_undone_by_a_stale_delivery(argilla_env, argilla_server, real_workspace):
    from rlthf_plugin.backends.argilla import response_labels

    ids = add_asked_iteration(real_workspace.ledger, 2)
    receiver = ReceiverThread(real_workspace.root)
    argilla_env.configure(real_workspace, name=fresh("expose"), webhook_url=f"{receiver.url}/webhooks/argilla")
    receiver.start()
    backend = argilla_env.backend(real_workspace)
    try:
        mapping = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1).mapping
        with argilla_server.annotator(1) as annotator:
            r = annotator.post(f"/api/v1/records/{mapping[ids[0]]}/responses",
                               json={"values": {"label": {"value": "a"}}, "status": "submitted"})
            assert r.status_code == 201, r.text
            response = r.json()
            rid = str(response["id"])
            wait_for(lambda: rid in rows(real_workspace, "argilla"), timeout=90, what="Argilla's webhook")
            stored = rows(real_workspace, "argilla")[rid]
            r = annotator.delete(f"/api/v1/responses/{rid}")
            assert r.status_code == 200, r.text
        wait_for(lambda: rows(real_workspace, "argilla")[rid]["deleted"], timeout=90, what="the deletion webhook")
        # The creation again, as Argilla's webhook carried it (its updated_at): no revival.
        record = {"external_id": ids[0]}
        [again] = response_labels(record, [{**response, "user_id": response.get("user_id")}],
                                  {str(response.get("user_id")): stored["annotator"]})
        sync.store_labels(real_workspace.ledger, [again])
        assert rows(real_workspace, "argilla")[rid]["deleted"]
        sync.pull(real_workspace.ledger, backend, full=True)
        assert rows(real_workspace, "argilla")[rid]["deleted"]
    finally:
        receiver.stop()
        backend.close()


def test_label_studio_connects_to_the_ml_backend_with_basic_auth(label_studio_env, tmp_path, monkeypatch):
    env = label_studio_env
    monkeypatch.setenv("RLTHF_ML_BASIC_AUTH", "labelstudio:s3cret-pa55")
    sample = write_pandalm_sample(tmp_path / "sample.jsonl", 40)
    with Workspace.init(tmp_path / "ws") as ws:
        import_files(ws.ledger, [str(sample)])
        update_config_file(ws.root, "embedding", max_length=64)
        embeddings_before = _stored_vectors(ws)
    rows_ = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines()[:3]]
    data = [{k: r[k] for k in ("prompt", "response_a", "response_b")} for r in rows_]
    data.append({"prompt": "Name a prime number.", "response_a": "Seven is prime.", "response_b": "Banana."})
    receiver = ReceiverThread(tmp_path / "ws", ml_backend=True).start()
    try:
        with httpx.Client(base_url=env.server.url, timeout=180, headers=env.headers(env.server.admin_token)) as admin:
            pid = admin.post("/api/projects/", json={"title": fresh("ml-auth"),
                                                     "label_config": TEMPLATE.read_text(encoding="utf-8")}).json()["id"]
            admin.post(f"/api/projects/{pid}/import", json=[{**d, "reason": "ml auth test"} for d in data]).raise_for_status()
            assert httpx.get(f"{receiver.url}/ml/health", timeout=10).status_code == 401
            refused = admin.post("/api/ml", json={"url": f"{receiver.url}/ml", "project": pid, "title": "no auth"})
            assert refused.status_code >= 400 or refused.json().get("state") != "CO", refused.text
            wrong = admin.post("/api/ml", json={"url": f"{receiver.url}/ml", "project": pid, "title": "wrong",
                                                "auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio",
                                                "basic_auth_pass": "nope"})
            assert wrong.status_code >= 400 or wrong.json().get("state") != "CO", wrong.text
            for ml in admin.get("/api/ml", params={"project": pid}).json():
                admin.delete(f"/api/ml/{ml['id']}")
            r = admin.post("/api/ml", json={"url": f"{receiver.url}/ml", "project": pid, "title": "rlthf",
                                            "auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio",
                                            "basic_auth_pass": "s3cret-pa55"})
            assert r.status_code == 201 and r.json()["state"] == "CO", r.text
            r = admin.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                           json={"selectedItems": {"all": True, "excluded": []}})
            assert r.status_code == 200, r.text
            tasks = admin.get("/api/tasks/", params={"project": pid, "page_size": 100, "fields": "all"}).json()["tasks"]
    finally:
        receiver.stop()
    assert len(tasks) == len(data) and all(len(t["predictions"]) == 1 for t in tasks)
    with Workspace.open(tmp_path / "ws") as ws:
        assert _stored_vectors(ws) == embeddings_before


def _stored_vectors(ws) -> tuple[int, int]:
    """(the ledger's vector rows, bytes of the workspace's vector files): where vectors are written."""
    with ws.ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(S.embeddings)).scalar_one()
    files = ws.root / "vectors"
    return rows, sum(p.stat().st_size for p in files.rglob("*") if p.is_file()) if files.exists() else 0
