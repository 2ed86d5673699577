"""Label Studio specifics beyond the shared contract, on the real 1.23.2 server:
priority order through the Data Manager view, predictions hidden or shown, existing
projects checked, skips/comments/deletions, and the CLI generating the webhook secret."""

from __future__ import annotations

import os
import stat
import uuid

import httpx
import pytest
import sqlalchemy as sa

from rlthf_plugin.store import ledger as L
from rlthf_plugin.loop import sync
from rlthf_plugin.backends.label_studio import SECRET_HEADER, TEMPLATE
from rlthf_plugin.cli import main
from rlthf_plugin.config import load_config, secrets_path
from rlthf_plugin.errors import IncompatibleProjectError
from rlthf_plugin.loop.tasks import asked_tasks

from .conftest import ReceiverThread, add_asked_iteration, wait_for

pytestmark = pytest.mark.integration


def fresh_name(prefix: str = "ls") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api(env, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=env.server.url, timeout=30,
                        headers=env.headers(token or env.server.admin_token))


def test_next_serves_highest_priority_first(label_studio_env, real_workspace):
    env = label_studio_env
    # 150 distinct priorities 0..149: a text sort would serve "99" before "149".
    add_asked_iteration(real_workspace.ledger, 150, seed=3)
    env.configure(real_workspace, name=fresh_name("order"))
    backend = env.backend(real_workspace)
    sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1)
    assert backend.view_id is not None
    served = []
    with api(env, env.server.annotator_tokens[1]) as annotator:
        for _ in range(4):
            r = annotator.get(f"/api/projects/{backend.target}/next", params={"view": backend.view_id})
            assert r.status_code == 200, r.text
            task = r.json()
            served.append(task["data"]["priority"])
            assert not any(ch.isdigit() for ch in task["data"]["reason"])  # plain words, nothing that anchors
            env.annotate(backend, str(task["id"]), "A", annotator=1)
    assert served == [149.0, 148.0, 147.0, 146.0]


def _predictions(env, backend) -> list[dict]:
    with api(env) as admin:
        tasks = admin.get("/api/tasks/", params={"project": backend.target, "page_size": 1000,
                                                 "fields": "all"}).json()["tasks"]
    return [p for t in tasks for p in t.get("predictions") or []]


def test_predictions_hidden_by_default_and_shown_on_request(label_studio_env, real_workspace):
    env = label_studio_env
    add_asked_iteration(real_workspace.ledger, 20)
    tasks = asked_tasks(real_workspace.ledger)
    with_ai = [t for t in tasks if t.ai_label in ("A", "B", "tie")]
    assert with_ai, "the shipped pairs carry AI labels"

    env.configure(real_workspace, name=fresh_name("hidden"))
    hidden = env.backend(real_workspace)
    report = sync.push(real_workspace.ledger, hidden, tasks, iteration=1)
    assert report.predictions == 0 and _predictions(env, hidden) == []
    with api(env) as admin:
        assert admin.get(f"/api/projects/{hidden.target}/").json()["show_collab_predictions"] is False

    env.configure(real_workspace, name=fresh_name("shown"), show_predictions=True)
    shown = env.backend(real_workspace)
    # The same pairs on a second project: deliberate here (one vote per annotator still counts).
    report = sync.push(real_workspace.ledger, shown, tasks, iteration=1, allow_duplicate_targets=True)
    predictions = _predictions(env, shown)
    assert report.predictions == len(with_ai) == len(predictions)
    by_task = {p["task"]: p for p in predictions}
    for task in with_ai:
        p = by_task[int(report.mapping[task.pair.id])]
        assert p["model_version"] == "rlthf-iter1"
        assert p["result"][0]["value"]["choices"] == [task.ai_label]
        assert p["score"] is None  # no human label yet, so no calibration: never the raw margin
    with api(env) as admin:
        assert admin.get(f"/api/projects/{shown.target}/").json()["show_collab_predictions"] is True


def test_existing_project_is_checked(label_studio_env, real_workspace):
    env = label_studio_env
    env.configure(real_workspace, name=fresh_name("unused"))
    cfg = load_config(real_workspace.root)
    from rlthf_plugin.backends import open_backend

    with api(env) as admin:
        other = admin.post("/api/projects/", json={"title": fresh_name("sentiment"), "label_config": (
            '<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
            '<Choice value="pos"/><Choice value="neg"/></Choices></View>')}).json()
        ours = admin.post("/api/projects/", json={"title": fresh_name("ours"),
                                                  "label_config": TEMPLATE.read_text()}).json()
    with pytest.raises(IncompatibleProjectError) as err:
        open_backend("label-studio", cfg, project=other["id"]).ensure_project()
    message = str(err.value.message)
    # Everything missing at once: the texts, and the answer's choices.
    assert f"project {other['id']}" in message and 'the choice(s) A, B, tie in <Choices name="sentiment">' in message
    assert "showing $prompt" in message and "showing $response_b" in message
    backend = open_backend("label-studio", cfg, project=ours["id"])
    assert backend.ensure_project() == str(ours["id"])


def test_skip_comment_update_and_delete_reach_the_ledger(label_studio_env, real_workspace):
    env = label_studio_env
    ids = add_asked_iteration(real_workspace.ledger, 3)
    receiver = ReceiverThread(real_workspace.root)
    env.configure(real_workspace, name=fresh_name("events"), webhook_url=f"{receiver.url}/webhooks/label-studio")
    receiver.start()
    try:
        backend = env.backend(real_workspace)
        mapping = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1).mapping
        skipped = env.annotate(backend, mapping[ids[0]], "A", annotator=1, cancelled=True)
        commented = env.annotate(backend, mapping[ids[1]], "tie", annotator=2, comment="both fine")

        def row(annotation):
            with real_workspace.ledger.engine.connect() as conn:
                return conn.execute(sa.select(L.human_labels).where(
                    L.human_labels.c.platform == "label-studio",
                    L.human_labels.c.external_id == str(annotation["id"]))).mappings().first()

        wait_for(lambda: row(skipped) and row(commented), what="both webhook deliveries")
        assert row(skipped)["label"] == "skip"
        assert row(commented)["label"] == "tie" and row(commented)["comment"] == "both fine"
        assert row(commented)["annotator"] == "annotator2@rlthf.test"
        with api(env, env.server.annotator_tokens[2]) as annotator:
            r = annotator.patch(f"/api/annotations/{commented['id']}/", json={"result": [
                {"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": ["B"]}}]})
            assert r.status_code == 200, r.text
            wait_for(lambda: row(commented)["label"] == "B", what="the update")
            assert annotator.delete(f"/api/annotations/{commented['id']}/").status_code == 204
        wait_for(lambda: row(commented)["deleted"], what="the deletion")
        # A pull agrees with the webhooks: the skip is read back, nothing is new.
        assert sync.pull(real_workspace.ledger, backend, full=True) == (1, 0)
    finally:
        receiver.stop()


def test_cli_push_generates_the_webhook_secret(label_studio_env, real_workspace, runner):
    env = label_studio_env
    add_asked_iteration(real_workspace.ledger, 5)
    name = fresh_name("cli")
    options = env.configure(real_workspace, name=name)
    hook = "http://127.0.0.1:9/webhooks/label-studio"
    result = runner.invoke(main, ["--workspace", str(real_workspace.root), "push", "--backend", "label-studio",
                                  *options, "--webhook-url", hook], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "5 created" in result.output
    path = secrets_path(real_workspace.root)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = str(load_config(real_workspace.root).label_studio.webhook_secret)
    assert len(secret) >= 32
    with api(env) as admin:
        project = next(p for p in admin.get("/api/projects/", params={"title": name}).json()["results"]
                       if p["title"] == name)
        hooks = [h for h in admin.get("/api/webhooks/", params={"project": project["id"]}).json() if h["url"] == hook]
    assert len(hooks) == 1 and hooks[0]["headers"] == {SECRET_HEADER: secret}
    assert set(hooks[0]["actions"]) == {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"}
    # A second push keeps the secret and the single webhook.
    again = runner.invoke(main, ["--workspace", str(real_workspace.root), "push", "--backend", "label-studio",
                                 *options, "--webhook-url", hook], catch_exceptions=False)
    assert again.exit_code == 0 and "0 created, 5 already there" in again.output
    assert str(load_config(real_workspace.root).label_studio.webhook_secret) == secret
    with api(env) as admin:
        assert len([h for h in admin.get("/api/webhooks/", params={"project": project["id"]}).json()
                    if h["url"] == hook]) == 1


def test_incremental_pull_lists_only_the_changed_tasks(label_studio_env, real_workspace):
    env = label_studio_env
    ids = add_asked_iteration(real_workspace.ledger, 4)
    env.configure(real_workspace, name=fresh_name("incremental"))
    backend = env.backend(real_workspace)
    mapping = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1).mapping
    env.annotate(backend, mapping[ids[0]], "A", annotator=1)
    assert sync.pull(real_workspace.ledger, backend) == (1, 1)  # no cursor yet: the export

    def no_export():
        raise AssertionError("an incremental pull must not download the project export")

    backend._exported_tasks = no_export
    listing = backend._listing

    def only_changed(query, **kw):
        assert "filter:tasks:updated_at" in query, "an incremental pull must list only the changed tasks"
        return listing(query, **kw)

    backend._listing = only_changed
    key = f"pull:{backend.platform}:{backend.target}"
    before = real_workspace.ledger.get_state(key)
    second = env.annotate(backend, mapping[ids[1]], "B", annotator=2)
    read, new = sync.pull(real_workspace.ledger, backend)
    assert new == 1 and read <= 2  # a task inside the cursor's overlap may be read again, never stored twice
    assert real_workspace.ledger.get_state(key) > before  # the cursor moved to the latest task stamp
    with api(env, env.server.annotator_tokens[2]) as annotator:
        r = annotator.patch(f"/api/annotations/{second['id']}/", json={"result": [
            {"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": ["A"]}}]})
        assert r.status_code == 200, r.text
    read, new = sync.pull(real_workspace.ledger, backend)
    assert new == 0 and 1 <= read <= 2
    with real_workspace.ledger.engine.connect() as conn:
        stored = conn.execute(sa.select(L.human_labels.c.label).where(
            L.human_labels.c.external_id == str(second["id"]))).scalar_one()
    assert stored == "A"  # the edit reached the ledger through the filtered listing
    skipped = env.annotate(backend, mapping[ids[2]], "A", annotator=1, cancelled=True)
    read, new = sync.pull(real_workspace.ledger, backend)
    assert new == 1  # a skip is listed too (the second filtered listing)
    with real_workspace.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(L.human_labels.c.label).where(
            L.human_labels.c.external_id == str(skipped["id"]))).scalar_one() == "skip"
